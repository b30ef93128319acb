// Per-token int8 absmax activation quantization (BitNet b1.58), with the optional
// parameter-free input norm of bitllama's BitLinear. One buffer per model serves every
// BitLinear: inputs are prepared and consumed in turn, never two at once.
import { NonFiniteError } from "../model/errors.ts";
import type { Kernels } from "../runtime/kernels.ts";
import type { PreparedInput } from "./linear.ts";

/** Columns rounded up to the ternary kernels' 64-wide blocks. */
export function paddedCols(cols: number): number {
  return Math.ceil(cols / 64) * 64;
}

export interface Int8Input extends PreparedInput {
  /** int8 [tokens, paddedCols(cols)] */
  readonly q: number;
  /** f32 [tokens]: max|x| / 127 */
  readonly scales: number;
  /** i32 [tokens]: sum of each row of q */
  readonly sums: number;
  readonly cols: number;
}

export class AbsmaxInt8Quantizer {
  readonly #normed: number;
  readonly #q: number;
  readonly #scales: number;
  readonly #sums: number;

  constructor(readonly kernels: Kernels, readonly maxTokens: number, readonly maxCols: number) {
    this.#normed = kernels.allocF32(maxTokens * maxCols);
    this.#q = kernels.allocBytes(maxTokens * paddedCols(maxCols));
    this.#scales = kernels.allocF32(maxTokens);
    this.#sums = kernels.allocF32(maxTokens);
  }

  /** Bytes between the quantized rows of an input of `cols` columns. */
  stride(cols: number): number {
    return paddedCols(cols);
  }

  /** Quantizes x [tokens, cols]; with `l2Norm`, first scales each row to x / (||x|| * sqrt(cols)). */
  quantize(x: number, cols: number, tokens: number, l2Norm: boolean): Int8Input {
    const k = this.kernels.k;
    let src = x;
    if (l2Norm) {
      k.l2Norm(this.#normed, x, cols, tokens);
      src = this.#normed;
    }
    const bad = k.quantizeAbsmaxI8(src, cols, tokens, this.#q, paddedCols(cols), this.#scales, this.#sums);
    if (bad > 0) throw new NonFiniteError(`BitLinear input: ${bad} of ${tokens} rows hold NaN or infinity`);
    return { q: this.#q, scales: this.#scales, sums: this.#sums, cols, tokens };
  }
}
