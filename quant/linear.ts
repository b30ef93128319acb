// Linear layers as the forward pass sees them: `prepare` turns an f32 input [tokens, cols]
// into what the weights' kernel consumes (once for all layers sharing that input, e.g.
// q, k and v), `apply` writes y [tokens, rows].
import type { Kernels } from "../runtime/kernels.ts";

/** An input ready for one kind of linear layer. */
export interface PreparedInput {
  readonly tokens: number;
}

export interface Linear {
  readonly rows: number;
  readonly cols: number;
  prepare(x: number, tokens: number): PreparedInput;
  apply(input: PreparedInput, y: number): void;
}

interface F32Input extends PreparedInput {
  readonly x: number;
}

/** Full-precision weights [rows, cols] in kernel memory. */
export class F32Linear implements Linear {
  constructor(readonly kernels: Kernels, readonly w: number, readonly rows: number, readonly cols: number) {}

  prepare(x: number, tokens: number): F32Input {
    return { x, tokens };
  }

  apply(input: PreparedInput, y: number): void {
    const { x, tokens } = input as F32Input;
    if (tokens === 1) this.kernels.k.gemvF32(this.w, this.rows, this.cols, x, y);
    else this.kernels.k.gemmF32(this.w, this.rows, this.cols, x, tokens, y);
  }
}

/** f16 or bf16 weights [rows, cols] in kernel memory (an LM head kept in its stored precision). */
export class HalfLinear implements Linear {
  constructor(readonly kernels: Kernels, readonly w: number, readonly rows: number, readonly cols: number, readonly dtype: "f16" | "bf16") {}

  prepare(x: number, tokens: number): F32Input {
    return { x, tokens };
  }

  apply(input: PreparedInput, y: number): void {
    const { x, tokens } = input as F32Input;
    this.kernels.k.gemmHalf(this.w, this.rows, this.cols, x, tokens, y, this.dtype === "bf16");
  }
}
