// Binarized BitLinear weights (the original BitNet's Sign(W - mean W), scale beta = mean|W|)
// in the 1-bit kernel layout (assembly/binary.ts): y = (W_b . Q(x)) * beta * activationScale.
import { packInt8 } from "./pack.ts";
import type { Kernels } from "../runtime/kernels.ts";
import type { ActivationQuantizer, Int8Input } from "./activations.ts";
import type { Linear, PreparedInput } from "./linear.ts";

export class SignLinear implements Linear {
  constructor(
    readonly kernels: Kernels,
    readonly quantizer: ActivationQuantizer,
    readonly packed: number,
    readonly rows: number,
    readonly cols: number,
    readonly scale: number,
    readonly l2Norm: boolean,
    /** Per-output-channel scales f32 [rows] multiplying the output (0: the one scale above). */
    readonly rowScales = 0,
  ) {}

  /** Packs a -1 / +1 matrix that `decode` writes as int8 at the scratch address it is given (returning beta). */
  static async fromInt8(
    kernels: Kernels, quantizer: ActivationQuantizer, rows: number, cols: number, l2Norm: boolean,
    what: string, decode: (int8: number) => Promise<number>, rowScales = 0,
  ): Promise<SignLinear> {
    const packing = { bytes: kernels.k.signPackedBytes, pack: kernels.k.packSign, values: "-1 or +1" };
    const { packed, scale } = await packInt8(kernels, packing, rows, cols, what, decode);
    return new SignLinear(kernels, quantizer, packed, rows, cols, scale, l2Norm, rowScales);
  }

  prepare(x: number, tokens: number): Int8Input {
    return this.quantizer.quantize(x, this.cols, tokens, this.l2Norm);
  }

  apply(input: PreparedInput, y: number): void {
    const { q, scales, sums, tokens } = input as Int8Input;
    this.kernels.k.signGemm(this.packed, this.rows, this.cols, q, sums, scales, tokens, this.scale, y);
    if (this.rowScales) this.kernels.k.scaleRows(y, this.rowScales, this.rows, tokens);
  }
}
