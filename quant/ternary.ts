// Ternary BitLinear weights in the kernels' packed layout (see assembly/ternary.ts),
// y = (W_ternary . Q(x)) * weightScale * activationScale.
import { packInt8 } from "./pack.ts";
import type { Kernels } from "../runtime/kernels.ts";
import type { ActivationQuantizer, Int8Input } from "./activations.ts";
import type { Linear, PreparedInput } from "./linear.ts";

export class TernaryLinear implements Linear {
  constructor(
    readonly kernels: Kernels,
    readonly quantizer: ActivationQuantizer,
    /** Address of the packed weights. */
    readonly packed: number,
    readonly rows: number,
    readonly cols: number,
    /** Multiplier of the ternary values (mean |W| of the master weights in b1.58). */
    readonly scale: number,
    /** Normalise each input row to x / (||x|| * sqrt(cols)) first (bitllama's BitLinear). */
    readonly l2Norm: boolean,
    /** Per-output-channel scales f32 [rows] multiplying the output (0: the one scale above). */
    readonly rowScales = 0,
  ) {}

  /**
   * Packs a ternary matrix [rows, cols] into new kernel memory. `decode` writes the matrix
   * as int8 -1/0/1 at the scratch address it is given and returns the matrix's scale;
   * scratch is freed afterwards. `what` names the tensor in errors.
   */
  static async fromInt8(
    kernels: Kernels, quantizer: ActivationQuantizer, rows: number, cols: number, l2Norm: boolean,
    what: string, decode: (int8: number) => Promise<number>, rowScales = 0,
  ): Promise<TernaryLinear> {
    const packing = { bytes: kernels.k.ternaryPackedBytes, pack: kernels.k.packTernary, values: "-1, 0 or +1" };
    const { packed, scale } = await packInt8(kernels, packing, rows, cols, what, decode);
    return new TernaryLinear(kernels, quantizer, packed, rows, cols, scale, l2Norm, rowScales);
  }

  prepare(x: number, tokens: number): Int8Input {
    return this.quantizer.quantize(x, this.cols, tokens, this.l2Norm);
  }

  apply(input: PreparedInput, y: number): void {
    const { q, scales, sums, tokens } = input as Int8Input;
    const k = this.kernels.k;
    if (tokens === 1) {
      k.ternaryGemv(this.packed, this.rows, this.cols, q, this.kernels.i32(sums, 1)[0], this.scale, this.kernels.f32(scales, 1)[0], y);
    } else {
      k.ternaryGemm(this.packed, this.rows, this.cols, q, sums, scales, tokens, this.scale, y);
    }
    if (this.rowScales) k.scaleRows(y, this.rowScales, this.rows, tokens);
  }
}
