// Dense BitLinear weights against int8 activations, in one of two kernel layouts:
// ternary (2-bit codes, assembly/ternary.ts) or 1-bit sign weights (the original BitNet's
// Sign(W - mean W), assembly/binary.ts, half the bytes).
// y = (W . Q(x)) * weightScale * activationScale, with one weight scale per tensor, or one
// per output row and group of input columns (GroupScales: per channel is one group).
import { packInt8 } from "./pack.ts";
import type { Kernels } from "../runtime/kernels.ts";
import { NULL_PTR, type Ptr } from "../runtime/ptr.ts";
import type { ActivationQuantizer, Int8Input } from "./activations.ts";
import type { Linear, PreparedInput } from "./linear.ts";

/** Kernel layout of BitLinear weights: 2-bit ternary or 1-bit sign. */
export type BitWeights = "ternary" | "sign";

/** Weight scales per row and group of `groupCols` input columns: f32 [rows, cols / groupCols] at `scales`. */
export interface GroupScales {
  /** Columns per group. */
  readonly groupCols: number;
  /** Address of the scales f32 [rows, cols / groupCols]. */
  readonly scales: Ptr;
}

function kernelsOf(kernels: Kernels, weights: BitWeights) {
  const k = kernels.k;
  return weights === "ternary"
    ? { bytes: k.ternaryPackedBytes, pack: k.packTernary, values: "-1, 0 or +1", gemm: k.ternaryGemm, grouped: k.ternaryGemmGrouped }
    : { bytes: k.signPackedBytes, pack: k.packSign, values: "-1 or +1", gemm: k.signGemm, grouped: k.signGemmGrouped };
}

/** A dense BitLinear: packed ternary or sign weights against int8 activations. */
export class BitLinear implements Linear {
  /** i32 [maxTokens, groups]: the activations' sums per column group (several groups only). */
  readonly #groupSums: Ptr;
  readonly #run: ReturnType<typeof kernelsOf>;

  /** Weights already packed at `packed` (see fromInt8). */
  constructor(
    readonly kernels: Kernels,
    readonly quantizer: ActivationQuantizer,
    readonly weights: BitWeights,
    /** Address of the packed weights. */
    readonly packed: Ptr,
    readonly rows: number,
    readonly cols: number,
    /** Multiplier of the weights (mean |W| of the master weights in b1.58); 1 with group scales. */
    readonly scale: number,
    /** Normalise each input row to x / (||x|| * sqrt(cols)) first (bitllama's BitLinear). */
    readonly l2Norm: boolean,
    readonly groups?: GroupScales,
  ) {
    this.#run = kernelsOf(kernels, weights);
    const count = groups ? cols / groups.groupCols : 1;
    this.#groupSums = count > 1 ? kernels.allocBytes(quantizer.maxTokens * count * 4) : NULL_PTR;
  }

  /**
   * Packs a matrix [rows, cols] into new kernel memory. `decode` writes it as int8 (-1/0/1,
   * or -1/+1 for sign weights) at the scratch address it is given and returns its scale;
   * scratch is freed afterwards. `what` names the tensor in errors.
   */
  static async fromInt8(
    kernels: Kernels,
    quantizer: ActivationQuantizer,
    rows: number,
    cols: number,
    l2Norm: boolean,
    what: string,
    decode: (int8: Ptr) => Promise<number>,
    options: { weights?: BitWeights; groups?: GroupScales } = {},
  ): Promise<BitLinear> {
    const weights = options.weights ?? "ternary";
    const { packed, scale } = await packInt8(kernels, kernelsOf(kernels, weights), rows, cols, what, decode);
    return new BitLinear(kernels, quantizer, weights, packed, rows, cols, scale, l2Norm, options.groups);
  }

  /** Quantizes the input (l2-normalised first for bitllama). */
  prepare(x: Ptr, tokens: number): Int8Input {
    return this.quantizer.quantize(x, this.cols, tokens, this.l2Norm);
  }

  /** Rows of the listed row groups only (ternary weights with one scale per tensor; others compute every row). */
  applyRowGroups(input: PreparedInput, y: Ptr, list: Ptr, count: number): void {
    if (this.weights !== "ternary" || this.groups) return this.apply(input, y);
    const { q, scales, sums, tokens } = input as Int8Input;
    this.kernels.k.ternaryGemmRowGroups(this.packed, this.rows, this.cols, q, sums, scales, tokens, this.scale, list, count, y);
  }

  /** y = (W . Q(x)) * scales. */
  apply(input: PreparedInput, y: Ptr): void {
    const { q, scales, sums, tokens } = input as Int8Input;
    const run = this.#run;
    if (!this.groups) return run.gemm(this.packed, this.rows, this.cols, q, sums, scales, tokens, this.scale, y);
    const { groupCols } = this.groups;
    let groupSums = sums; // one group: the row sums are the group sums
    if (this.#groupSums) this.kernels.k.sumGroups(q, this.quantizer.stride(this.cols), this.cols, tokens, groupCols, groupSums = this.#groupSums);
    run.grouped(this.packed, this.rows, this.cols, q, groupSums, scales, tokens, groupCols, this.groups.scales, y);
  }
}
