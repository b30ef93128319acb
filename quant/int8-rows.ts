// An int8 LM head: the embedding table quantized per row with absmax (one f32 scale per
// vocabulary entry), multiplied with int8 absmax activations. Half the bytes of an f16
// head, the largest single read of a decoded token; its cost in perplexity is measured
// in docs/benchmarks.md.
import { NonFiniteError } from "../core/errors.ts";
import type { Kernels } from "../runtime/kernels.ts";
import { offset, type Ptr } from "../runtime/ptr.ts";
import type { ActivationQuantizer, Int8Input } from "./activations.ts";
import type { Linear, PreparedInput } from "./linear.ts";

/** Rows quantized per slice of this many values (bounds the f32 staging buffer). */
const SLICE_VALUES = 1 << 20;

export class Int8RowsLinear implements Linear {
  constructor(
    readonly kernels: Kernels,
    readonly quantizer: ActivationQuantizer,
    readonly w: Ptr,
    readonly wScales: Ptr,
    readonly rows: number,
    readonly cols: number,
  ) {}

  /**
   * Quantizes a float table [rows, cols] into new kernel memory. `widenRows(first, count, dst)`
   * writes rows first..first+count-1 as f32 at dst.
   */
  static fromRows(
    kernels: Kernels,
    quantizer: ActivationQuantizer,
    rows: number,
    cols: number,
    what: string,
    widenRows: (first: number, count: number, dst: Ptr) => void,
  ): Int8RowsLinear {
    const w = kernels.allocBytes(rows * cols), wScales = kernels.allocF32(rows);
    const mark = kernels.arena.mark();
    try {
      const slice = Math.max(1, Math.floor(SLICE_VALUES / cols));
      const f32 = kernels.allocF32(slice * cols), sums = kernels.allocF32(slice);
      for (let first = 0; first < rows; first += slice) {
        const count = Math.min(slice, rows - first);
        widenRows(first, count, f32);
        const bad = kernels.k.quantizeAbsmaxI8(f32, cols, count, offset(w, first * cols), cols, offset(wScales, first * 4), sums, 127);
        if (bad > 0) throw new NonFiniteError(`${what}: ${bad} rows hold NaN or infinity`);
      }
    } finally {
      kernels.arena.release(mark);
    }
    return new Int8RowsLinear(kernels, quantizer, w, wScales, rows, cols);
  }

  prepare(x: Ptr, tokens: number): Int8Input {
    return this.quantizer.quantize(x, this.cols, tokens, false);
  }

  apply(input: PreparedInput, y: Ptr): void {
    const { q, scales, tokens, cols } = input as Int8Input;
    const stride = this.quantizer.stride(cols);
    this.kernels.k.gemmI8(this.w, this.wScales, this.rows, this.cols, q, stride, scales, tokens, y);
  }
}
