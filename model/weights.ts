// Tensors from their stored encodings into what the kernels take, in WASM: ternary ones
// into int8 -1/0/1 and one scale, float ones into f32.
// Every decoder counts invalid codes; the kernels take one scale per tensor, so block
// formats must carry the same scale in every block (all-zero blocks may carry 0).
import type { Kernels } from "../runtime/kernels.ts";
import type { Checkpoint, Span, TernaryTensor } from "./checkpoint.ts";
import { FormatError } from "./errors.ts";

/** Decodes `t` into int8 at `int8` (rows * cols bytes); returns the tensor's scale. */
export function decodeTernary(kernels: Kernels, ckpt: Checkpoint, t: TernaryTensor, int8: number): number {
  const k = kernels.k, count = t.rows * t.cols;
  const mark = kernels.arena.mark();
  try {
    const src = kernels.put(ckpt.bytes.subarray(t.data.offset, t.data.offset + t.data.length));
    const fail = (detail: string) => new FormatError(ckpt.file, `${t.name}: ${detail}`);
    switch (t.encoding) {
      case "ternary-sm2": {
        const bad = k.decodeSignMagnitude2(src, count, t.msbFirst, int8);
        if (bad > 0) throw fail(`${bad} codes use the unassigned 2-bit pattern 10`);
        return t.scale;
      }
      case "hf-packed": {
        const bad = k.decodeHfPacked(src, t.rows, t.cols, int8);
        if (bad > 0) throw fail(`${bad} packed codes are 3 (valid: 0, 1, 2)`);
        return t.scale;
      }
      case "i2s": {
        const scale = kernels.allocF32(1);
        const bad = k.decodeI2S(src, count, int8, scale);
        if (bad > 0) throw fail(`${bad} I2_S codes are 3 (valid: 0, 1, 2)`);
        return finiteScale(kernels.f32(scale, 1)[0], fail);
      }
      case "tq1":
      case "tq2": {
        const blocks = count / 256, scales = kernels.allocF32(blocks);
        const bad = (t.encoding === "tq1" ? k.decodeTQ1 : k.decodeTQ2)(src, count, int8, scales);
        if (bad > 0) throw fail(`${bad} TQ2_0 codes are 3 (valid: 0, 1, 2)`); // TQ1_0 has no invalid codes
        let scale = 0;
        for (const d of kernels.f32(scales, blocks)) {
          if (d === 0) continue;
          if (scale !== 0 && d !== scale) throw fail(`block scales differ (${scale} and ${d}): only one scale per tensor is supported`);
          scale = d;
        }
        return finiteScale(scale, fail);
      }
    }
  } finally {
    kernels.arena.release(mark);
  }
}

function finiteScale(scale: number, fail: (detail: string) => Error): number {
  if (!Number.isFinite(scale)) throw fail(`scale is ${scale}, expected a finite number`);
  return scale;
}

/** Uploads a float tensor as f32 (converting f16 / bf16 in WASM); returns its address. */
export function uploadFloat(kernels: Kernels, ckpt: Checkpoint, span: Span): number {
  const raw = ckpt.bytes.subarray(span.offset, span.offset + span.length);
  if (!span.dtype) return kernels.put(raw);
  const n = span.length / 2, out = kernels.allocF32(n), mark = kernels.arena.mark();
  const convert = span.dtype === "f16" ? kernels.k.convertF16ToF32 : kernels.k.convertBF16ToF32;
  convert(kernels.put(raw), n, out);
  kernels.arena.release(mark);
  return out;
}
