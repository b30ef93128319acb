// Ternary BitLinear weights for inputs sparsified by top-K (Q-Sparse), in the
// column-blocked layout of assembly/sparse.ts: each token reads only the weight columns of
// its kept activations. It pays off only at high sparsity (docs/benchmarks.md), so the
// model uses it where measured faster: SPARSE_KERNEL_MIN_SPARSITY.
import { packInt8 } from "./pack.ts";
import type { Kernels, SimdLevel } from "../runtime/kernels.ts";
import { offset, type Ptr } from "../runtime/ptr.ts";
import type { ActivationQuantizer, Int8Input } from "./activations.ts";
import type { Linear, PreparedInput } from "./linear.ts";

/** The top-K sparsity from which the sparse kernel beats the dense one, per build (measured). */
export const SPARSE_KERNEL_MIN_SPARSITY: Record<SimdLevel, number> = { strict: 0.75, relaxed: Infinity };

export class SparseTernaryLinear implements Linear {
  readonly #kept: Ptr;
  /** Input columns met so far, and how many of them were non-zero (read). */
  readonly columns = { total: 0, read: 0 };

  constructor(
    readonly kernels: Kernels,
    readonly quantizer: ActivationQuantizer,
    readonly packed: Ptr,
    readonly rows: number,
    readonly cols: number,
    readonly scale: number,
    readonly l2Norm: boolean,
  ) {
    this.#kept = kernels.allocBytes(cols * 4);
  }

  static async fromInt8(
    kernels: Kernels,
    quantizer: ActivationQuantizer,
    rows: number,
    cols: number,
    l2Norm: boolean,
    what: string,
    decode: (int8: Ptr) => Promise<number>,
  ): Promise<SparseTernaryLinear> {
    const packing = { bytes: kernels.k.ternaryColumnsBytes, pack: kernels.k.packTernaryColumns, values: "-1, 0 or +1" };
    const { packed, scale } = await packInt8(kernels, packing, rows, cols, what, decode);
    return new SparseTernaryLinear(kernels, quantizer, packed, rows, cols, scale, l2Norm);
  }

  prepare(x: Ptr, tokens: number): Int8Input {
    return this.quantizer.quantize(x, this.cols, tokens, this.l2Norm);
  }

  apply(input: PreparedInput, y: Ptr): void {
    const { q, scales, tokens, cols } = input as Int8Input;
    const k = this.kernels.k, stride = this.quantizer.stride(cols), xScales = this.kernels.f32(scales, tokens);
    for (let t = 0; t < tokens; t++) {
      const x = offset(q, t * stride), count = k.nonZeroColumns(x, cols, this.#kept);
      this.columns.total += cols;
      this.columns.read += count;
      k.ternaryGemvSparse(this.packed, this.rows, this.cols, x, this.#kept, count, this.scale, xScales[t], offset(y, t * this.rows * 4));
    }
  }
}
