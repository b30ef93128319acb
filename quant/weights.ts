// Tensors from their stored encodings into what the kernels take, in WASM: ternary ones
// into int8 -1/0/1 and one scale, float ones into f32 (or kept in f16 / bf16); masters
// quantized again by a variant's weight quantizer. Bytes go
// from the file straight into kernel memory; nothing is staged in the JS heap.
// Every decoder counts invalid codes; the kernels take one scale per tensor, so block
// formats must carry the same scale in every block (all-zero blocks may carry 0).
import type { Kernels } from "../runtime/kernels.ts";
import type { Ptr } from "../runtime/ptr.ts";
import type { Checkpoint, LinearTensor, Span, TernaryTensor } from "../formats/checkpoint.ts";
import { FormatError } from "../core/errors.ts";
import { scaleCount, TENSOR_TYPES, type TensorType } from "../formats/tensor-types.ts";
import type { GroupScales } from "./bitlinear.ts";
import { WEIGHT_TERNARIZERS, type WeightTernarizer } from "./variants.ts";

/** Bytes per value of a float span. */
export const floatBytes = (span: Span) => (span.dtype ? 2 : 4);

/** Reads a span of the checkpoint's file into new kernel memory; returns its address. */
export async function readSpan(kernels: Kernels, ckpt: Checkpoint, span: Span): Promise<Ptr> {
  const ptr = kernels.allocBytes(span.length);
  await ckpt.source.read(span.offset, span.length, kernels.u8(ptr, span.length));
  return ptr;
}

/** Widens n f16 / bf16 values at src to f32 at dst. */
export function widen(kernels: Kernels, dtype: "f16" | "bf16", src: Ptr, n: number, dst: Ptr): void {
  (dtype === "f16" ? kernels.k.convertF16ToF32 : kernels.k.convertBF16ToF32)(src, n, dst);
}

/** Decodes `t` into int8 at `int8` (rows * cols bytes); returns the tensor's scale. */
export async function decodeTernary(kernels: Kernels, ckpt: Checkpoint, t: TernaryTensor, int8: Ptr): Promise<number> {
  const k = kernels.k, count = t.rows * t.cols;
  const mark = kernels.arena.mark();
  const fail = (detail: string) => new FormatError(ckpt.file, `${t.name}: ${detail}`);
  try {
    const src = await readSpan(kernels, ckpt, t.data);
    if (t.encoding === "absmean") {
      let f32 = src;
      if (t.data.dtype) widen(kernels, t.data.dtype, src, count, f32 = kernels.allocF32(count));
      const scale = k.ternarizeAbsmean(f32, count, int8);
      if (Number.isNaN(scale)) throw fail("master weights hold NaN or infinity");
      return scale;
    }
    const type: TensorType = TENSOR_TYPES[t.encoding], codec = type.ternary!;
    const n = scaleCount(type, count), scales = kernels.allocF32(n);
    const bad = k[codec.decode](src, count, int8, scales);
    if (bad > 0) throw fail(`${bad} ${type.name} codes ${codec.invalid}`);
    let scale = 0;
    if (codec.scales === "outside") scale = t.scale ?? 1;
    else {
      // The kernels take one scale per tensor: blocks must agree (all-zero blocks may carry 0).
      for (const d of kernels.f32(scales, n)) {
        if (d === 0) continue;
        if (scale !== 0 && d !== scale) throw fail(`block scales differ (${scale} and ${d}): only one scale per tensor is supported`);
        scale = d;
      }
    }
    return finiteScale(scale * (await outputScale(ckpt, t.outputScale)), fail);
  } finally {
    kernels.arena.release(mark);
  }
}

/**
 * Ternarizes a linear layer's weights again from float: fp32 / f16 / bf16 masters as they
 * are, ternary tensors dequantized (codes x scale) first. With `hadamardBlock`, each row is
 * first rotated by the block Walsh-Hadamard transform (W' = W H^T, so that W' (H x) = W x
 * before ternarization: H-BitLinear). Writes int8 codes at `int8` (-1 / +1 for "sign") and
 * returns the scale; with `groups`, quantizes each row's groups of columns on their own,
 * writes their scales there and returns 1.
 */
export async function reternarize(
  kernels: Kernels,
  ckpt: Checkpoint,
  t: LinearTensor,
  ternarizer: WeightTernarizer,
  int8: Ptr,
  hadamardBlock = 0,
  groups?: GroupScales,
): Promise<number> {
  const k = kernels.k, count = t.rows * t.cols, mark = kernels.arena.mark();
  try {
    const master = await masterWeights(kernels, ckpt, t, hadamardBlock);
    if (groups) {
      const bad = k.quantizeGroups(master, t.rows, t.cols, groups.groupCols, WEIGHT_TERNARIZERS.indexOf(ternarizer), int8, groups.scales);
      if (bad > 0) throw new FormatError(ckpt.file, `${t.name}: ${bad} groups of ${groups.groupCols} weights hold NaN or infinity`);
      return 1;
    }
    const quantize = ternarizer === "sign" ? k.binarizeSign : ternarizer === "median" ? k.ternarizeMedian : k.ternarizeAbsmean;
    const scale = quantize(master, count, int8);
    if (Number.isNaN(scale)) throw new FormatError(ckpt.file, `${t.name}: weights hold NaN or infinity`);
    return scale;
  } finally {
    kernels.arena.release(mark);
  }
}

/** A linear layer's weights as f32 in new kernel memory: float masters as they are, ternary tensors dequantized (codes x scale); rotated by the block Hadamard transform with hadamardBlock. */
async function masterWeights(kernels: Kernels, ckpt: Checkpoint, t: LinearTensor, hadamardBlock: number): Promise<Ptr> {
  const k = kernels.k, count = t.rows * t.cols;
  let master: Ptr;
  if (t.encoding === "f32" || t.encoding === "absmean") master = await uploadFloat(kernels, ckpt, t.data);
  else {
    master = kernels.allocF32(count);
    const mark = kernels.arena.mark(), codes = kernels.allocBytes(count);
    k.int8ToF32(codes, count, await decodeTernary(kernels, ckpt, t, codes), master);
    kernels.arena.release(mark);
  }
  if (hadamardBlock) k.hadamardBlocks(master, t.cols, t.rows, hadamardBlock);
  return master;
}

/** FBI-LLM's binarized weights (assembly/binary.ts binarizeFBI) of a linear layer, f32 [rows, cols] in new kernel memory. */
export async function fbiWeights(kernels: Kernels, ckpt: Checkpoint, t: LinearTensor, hadamardBlock = 0): Promise<Ptr> {
  const w = await masterWeights(kernels, ckpt, t, hadamardBlock);
  if (kernels.k.binarizeFBI(w, t.rows, t.cols) > 0) throw new FormatError(ckpt.file, `${t.name}: weights hold NaN or infinity`);
  return w;
}

/** The value of a separate one-value f32 scale tensor (1 when there is none). */
async function outputScale(ckpt: Checkpoint, span: Span | undefined): Promise<number> {
  if (!span) return 1;
  const bytes = await ckpt.source.read(span.offset, 4, new Uint8Array(4));
  return new DataView(bytes.buffer).getFloat32(0, true);
}

function finiteScale(scale: number, fail: (detail: string) => Error): number {
  if (!Number.isFinite(scale)) throw fail(`scale is ${scale}, expected a finite number`);
  return scale;
}

/** Throws a FormatError naming the tensor when any of its `n` f32 values at `ptr` is NaN or infinite. */
export function checkFinite(kernels: Kernels, ptr: Ptr, n: number, file: string, what: string): void {
  const bad = kernels.k.countNonFiniteF32(ptr, n);
  if (bad > 0) throw new FormatError(file, `${what}: ${bad} of its ${n} values are infinite or NaN (the allowNonFinite option loads them anyway)`);
}

/** Uploads a float tensor as f32 (converting f16 / bf16 in WASM); returns its address. */
export async function uploadFloat(kernels: Kernels, ckpt: Checkpoint, span: Span): Promise<Ptr> {
  if (!span.dtype) return readSpan(kernels, ckpt, span);
  const n = span.length / 2, out = kernels.allocF32(n), mark = kernels.arena.mark();
  widen(kernels, span.dtype, await readSpan(kernels, ckpt, span), n, out);
  kernels.arena.release(mark);
  return out;
}
