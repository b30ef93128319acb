// Per-token activation quantization at the input of each BitLinear, with the optional
// parameter-free input norm of bitllama's BitLinear and the variants of the BitNet papers:
// int8 absmax (b1.58), int4 absmean (a4.8), each optionally after an online Hadamard
// transform (BitNet v2's H-BitLinear) and top-K sparsification (Q-Sparse). All of it runs
// in WASM (assembly/quantize.ts, assembly/hadamard.ts, assembly/sparsify.ts). One
// buffer set per quantizer serves every BitLinear that uses it: inputs are prepared and
// consumed in turn, never two at once.
import { NonFiniteError, OptionError } from "../core/errors.ts";
import type { Kernels } from "../runtime/kernels.ts";
import { NULL_PTR, type Ptr } from "../runtime/ptr.ts";
import type { PreparedInput } from "./linear.ts";

/** Columns rounded up to the ternary kernels' 64-wide blocks. */
export function paddedCols(cols: number): number {
  return Math.ceil(cols / 64) * 64;
}

/** How one BitLinear input is quantized: integer format, and the fraction of entries zeroed first. */
export interface ActivationSpec {
  /** Integer format of the quantized values. */
  format: "int8" | "int4";
  /** Q-Sparse top-K: the fraction S in [0, 1) of entries with the smallest |x| set to 0 per token. */
  sparsity: number;
  /** Block Q-Sparse (N:M): top-K within each block of this many consecutive values (S of each block zeroed) instead of the whole row. */
  sparsityBlock?: number;
  /** After top-K, scale each row back to its L2 norm before sparsification (Q-Sparse's "re-scale the tensor by its L2 norm"). */
  rescaleL2?: boolean;
  /** int8 absmax levels: Q = RoundClip(x * levels / max|x|, -128, 127); 127 (default) or 128 (the b1.58 Reloaded reference code). */
  levels?: 127 | 128;
  /** Normalise each input row first with a LayerNorm without affine (eps 1e-5), as the b1.58 Reloaded reference code; replaces the architecture's own BitLinear norm. */
  norm?: "layer";
  /** H-BitLinear: rotate each input by the normalised Walsh-Hadamard transform over blocks of
   *  this many values ("auto": the largest power of two dividing the width) before the rest. */
  hadamard?: number | "auto";
}

/** The Hadamard block size for an input of `width` values; a block that does not divide it is an OptionError. */
export function hadamardBlock(block: number | "auto", width: number): number {
  if (block === "auto") return width & -width; // the largest power of two dividing width
  if (!Number.isInteger(block) || block < 1 || (block & (block - 1)) !== 0 || width % block !== 0) {
    throw new OptionError("variant", `Hadamard block ${block} must be a power of two dividing the input width ${width}`);
  }
  return block;
}

export const INT8_ABSMAX: ActivationSpec = { format: "int8", sparsity: 0 };

/** The LayerNorm epsilon of spec.norm = "layer" (torch's default, as the Reloaded reference code leaves it). */
export const LAYER_NORM_EPS = 1e-5;

/** A quantized input in kernel memory. */
export interface Int8Input extends PreparedInput {
  /** int8 [tokens, paddedCols(cols)] (int4 values too) */
  readonly q: Ptr;
  /** f32 [tokens]: the multiplier of each row (max|x| / 127, or mean|x| / sqrt(7)) */
  readonly scales: Ptr;
  /** i32 [tokens]: sum of each row of q */
  readonly sums: Ptr;
  /** Width of each row. */
  readonly cols: number;
}

/** Quantizes BitLinear inputs in WASM with one buffer set (see ActivationSpec). */
export class ActivationQuantizer {
  readonly #normed: Ptr;
  readonly #sparse: Ptr;
  readonly #rotated: Ptr;
  readonly #q: Ptr;
  readonly #scales: Ptr;
  readonly #sums: Ptr;

  /** Buffers for up to maxTokens rows of up to maxCols values. */
  constructor(readonly kernels: Kernels, readonly maxTokens: number, readonly maxCols: number, readonly spec: ActivationSpec = INT8_ABSMAX) {
    this.#normed = kernels.allocF32(maxTokens * maxCols); // bitllama's l2 norm or a LayerNorm
    this.#sparse = spec.sparsity > 0 ? kernels.allocF32(maxTokens * maxCols) : NULL_PTR;
    this.#rotated = spec.hadamard ? kernels.allocF32(maxTokens * maxCols) : NULL_PTR;
    this.#q = kernels.allocBytes(maxTokens * paddedCols(maxCols));
    this.#scales = kernels.allocF32(maxTokens);
    this.#sums = kernels.allocF32(maxTokens);
  }

  /** Bytes between the quantized rows of an input of `cols` columns. */
  stride(cols: number): number {
    return paddedCols(cols);
  }

  /** x [tokens, cols] scaled to x / (||x|| * sqrt(cols)) per row (bitllama's BitLinear norm), in this quantizer's buffer; returns its address. */
  l2Normalize(x: Ptr, cols: number, tokens: number): Ptr {
    this.kernels.k.l2Norm(this.#normed, x, cols, tokens);
    return this.#normed;
  }

  /** Quantizes x [tokens, cols]; with `l2Norm`, first scales each row to x / (||x|| * sqrt(cols)) (a LayerNorm instead when the spec says so). */
  quantize(x: Ptr, cols: number, tokens: number, l2Norm: boolean): Int8Input {
    const k = this.kernels.k, spec = this.spec;
    let src = x;
    if (spec.norm === "layer") {
      k.layerNorm(this.#normed, x, cols, tokens, LAYER_NORM_EPS);
      src = this.#normed;
    } else if (l2Norm) src = this.l2Normalize(x, cols, tokens);
    if (this.spec.hadamard) {
      this.kernels.u8(this.#rotated, cols * tokens * 4).set(this.kernels.u8(src, cols * tokens * 4));
      k.hadamardBlocks(this.#rotated, cols, tokens, hadamardBlock(this.spec.hadamard, cols));
      src = this.#rotated;
    }
    if (spec.sparsity > 0) {
      // Block Q-Sparse: each block of M values is a row of its own.
      const block = spec.sparsityBlock ?? cols;
      if (cols % block !== 0) throw new OptionError("variant", `top-K blocks of ${block} values do not divide the input width ${cols}`);
      k.sparsifyTopK(src, block, (tokens * cols) / block, Math.floor(spec.sparsity * block), this.#sparse);
      if (spec.rescaleL2) k.rescaleL2(src, this.#sparse, cols, tokens);
      src = this.#sparse;
    }
    const bad = spec.format === "int4"
      ? k.quantizeAbsmeanI4(src, cols, tokens, this.#q, paddedCols(cols), this.#scales, this.#sums)
      : k.quantizeAbsmaxI8(src, cols, tokens, this.#q, paddedCols(cols), this.#scales, this.#sums, spec.levels ?? 127);
    if (bad > 0) throw new NonFiniteError(`BitLinear input: ${bad} of ${tokens} rows hold NaN or infinity`);
    return { q: this.#q, scales: this.#scales, sums: this.#sums, cols, tokens };
  }
}
