// Linear layers as the forward pass sees them: `prepare` turns an f32 input [tokens, cols]
// into what the weights' kernel consumes (once for all layers sharing that input, e.g.
// q, k and v), `apply` writes y [tokens, rows].
import type { Kernels } from "../runtime/kernels.ts";
import type { Ptr } from "../runtime/ptr.ts";
import type { ActivationQuantizer } from "./activations.ts";

/** An input ready for one kind of linear layer. */
export interface PreparedInput {
  /** Tokens (rows) in the input. */
  readonly tokens: number;
}

/** A linear layer y = W x over kernel memory: prepare the input once, apply it to any layer sharing it. */
export interface Linear {
  /** Output width. */
  readonly rows: number;
  /** Input width. */
  readonly cols: number;
  /** Turns f32 inputs [tokens, cols] at x into what this layer's kernel consumes. */
  prepare(x: Ptr, tokens: number): PreparedInput;
  /** Writes y [tokens, rows] for a prepared input. */
  apply(input: PreparedInput, y: Ptr): void;
  /** As apply for the row groups (rows 4g..4g+3) listed at `list` (i32, `count` of them) only, the other rows 0; absent where the kernel computes every row. */
  applyRowGroups?(input: PreparedInput, y: Ptr, list: Ptr, count: number): void;
}

/** An f32 input as it is, at address x. */
export interface F32Input extends PreparedInput {
  /** Address of the input [tokens, cols]. */
  readonly x: Ptr;
}

/** Full-precision weights [rows, cols] in kernel memory. */
export class F32Linear implements Linear {
  /**
   * f32 weights [rows, cols] at address w: full precision, or FBI-LLM's binarized weights
   * dequantized ("fbi"). With `norm` (a quantizer's buffers), each input row is first scaled
   * as bitllama's BitLinear does (x / (||x|| sqrt(cols))), for FBI weights in its place.
   */
  constructor(
    readonly kernels: Kernels,
    readonly w: Ptr,
    readonly rows: number,
    readonly cols: number,
    readonly weights: "fp32" | "fbi" = "fp32",
    readonly norm?: ActivationQuantizer,
  ) {}

  /** The f32 input as it is (l2-normalised when the layer normalises its input). */
  prepare(x: Ptr, tokens: number): F32Input {
    return { x: this.norm ? this.norm.l2Normalize(x, this.cols, tokens) : x, tokens };
  }

  /** y = W x (f32 GEMV or GEMM). */
  apply(input: PreparedInput, y: Ptr): void {
    const { x, tokens } = input as F32Input;
    if (tokens === 1) this.kernels.k.gemvF32(this.w, this.rows, this.cols, x, y);
    else this.kernels.k.gemmF32(this.w, this.rows, this.cols, x, tokens, y);
  }
}

/** An input regrouped for the half-precision kernel, with the flag it needs. */
export interface HalfInput extends PreparedInput {
  /** Address of the regrouped input [tokens, cols]. */
  readonly x: Ptr;
  /** Whether the f16 weights are rescaled in the loop (inputs of 2^16 or more). */
  readonly rescale: boolean;
}

/** f16 or bf16 weights [rows, cols] in kernel memory (an LM head kept in its stored precision). */
export class HalfLinear implements Linear {
  readonly #input: Ptr;

  /** Weights at w; inputs of up to maxTokens rows. */
  constructor(readonly kernels: Kernels, readonly w: Ptr, readonly rows: number, readonly cols: number, readonly dtype: "f16" | "bf16", readonly maxTokens: number) {
    this.#input = kernels.allocF32(maxTokens * cols);
  }

  /** The input regrouped as the kernel reads it. */
  prepare(x: Ptr, tokens: number): HalfInput {
    if (tokens > this.maxTokens) throw new RangeError(`HalfLinear: ${tokens} tokens, room for ${this.maxTokens}`);
    const rescale = this.kernels.k.prepareHalfInput(x, this.cols, tokens, this.#input, this.dtype === "bf16") !== 0;
    return { x: this.#input, tokens, rescale };
  }

  /** y = W x with the weights widened in registers. */
  apply(input: PreparedInput, y: Ptr): void {
    const { x, tokens, rescale } = input as HalfInput;
    this.kernels.k.gemmHalf(this.w, this.rows, this.cols, x, tokens, y, this.dtype === "bf16", rescale);
  }
}
