// The classifier (LM head) over an embedding table kept in its stored precision:
// f16 / bf16 weights times f32 activations, or int8 weights (one absmax scale per row)
// times int8 activations. Sums run in four lanes folded as ((l0 + l1) + l2) + l3, as in
// float.ts, so the SIMD kernels and their scalar twins agree bit for bit.
import { dot } from "./float";
import { f16ToF32 } from "./formats/fp16";
import { f32At, scratch, SCRATCH_BYTES } from "./memory";

const TWO_POW_112: f32 = 5.192296858534828e33;

// Four f16 or bf16 values (zero-extended u16 lanes) as f32. For f16 the exponent and
// mantissa are shifted into f32 position and rescaled by 2^112, which is exact for normal
// and subnormal halves alike; finite inputs only (loaders reject inf / NaN tables).
@inline function halfToF32x4(h: v128, bf16: bool): v128 {
  if (bf16) return i32x4.shl(h, 16);
  const magnitude = f32x4.mul(i32x4.shl(v128.and(h, i32x4.splat(0x7fff)), 13), f32x4.splat(TWO_POW_112));
  return v128.or(magnitude, i32x4.shl(v128.and(h, i32x4.splat(0x8000)), 16));
}

@inline function halfAt(w: usize, k: i32, bf16: bool): f32 {
  const h = <u32>load<u16>(w + (<usize>k << 1));
  return bf16 ? reinterpret<f32>(h << 16) : f16ToF32(h);
}

@inline function dotHalf(w: usize, x: usize, n: i32, bf16: bool, simd: bool): f32 {
  let k = 0;
  let l0: f32 = 0, l1: f32 = 0, l2: f32 = 0, l3: f32 = 0;
  if (simd) {
    let acc = f32x4.splat(0);
    for (; k + 4 <= n; k += 4) {
      const wv = halfToF32x4(v128.load16x4_u(w + (<usize>k << 1)), bf16);
      acc = f32x4.add(acc, f32x4.mul(wv, v128.load(f32At(x, k))));
    }
    l0 = f32x4.extract_lane(acc, 0);
    l1 = f32x4.extract_lane(acc, 1);
    l2 = f32x4.extract_lane(acc, 2);
    l3 = f32x4.extract_lane(acc, 3);
  } else {
    for (; k + 4 <= n; k += 4) {
      l0 += halfAt(w, k, bf16) * load<f32>(f32At(x, k));
      l1 += halfAt(w, k + 1, bf16) * load<f32>(f32At(x, k + 1));
      l2 += halfAt(w, k + 2, bf16) * load<f32>(f32At(x, k + 2));
      l3 += halfAt(w, k + 3, bf16) * load<f32>(f32At(x, k + 3));
    }
  }
  let s = l0 + l1 + l2 + l3;
  for (; k < n; k++) s += halfAt(w, k, bf16) * load<f32>(f32At(x, k));
  return s;
}

// Y[t, r] = sum_k W[r, k] X[t, k] with W [rows, cols] in f16 / bf16. For several tokens a
// row is widened once into scratch and reused by every token (the same products in the
// same order as the fused single-token path, hence the same bits).
@inline function gemmHalfImpl(w: usize, rows: i32, cols: i32, x: usize, tokens: i32, y: usize, bf16: bool, simd: bool): void {
  const widen = tokens > 1 && cols * 4 <= SCRATCH_BYTES;
  for (let r = 0; r < rows; r++) {
    const wr = w + (<usize>r * <usize>cols << 1);
    if (widen) {
      for (let k = 0; k < cols; k++) store<f32>(f32At(scratch, k), halfAt(wr, k, bf16));
      for (let t = 0; t < tokens; t++) store<f32>(f32At(y, t * rows + r), dot(scratch, f32At(x, t * cols), cols, simd));
    } else {
      for (let t = 0; t < tokens; t++) store<f32>(f32At(y, t * rows + r), dotHalf(wr, f32At(x, t * cols), cols, bf16, simd));
    }
  }
}

export function gemmHalf(w: usize, rows: i32, cols: i32, x: usize, tokens: i32, y: usize, bf16: bool): void {
  gemmHalfImpl(w, rows, cols, x, tokens, y, bf16, true);
}
export function gemmHalfScalar(w: usize, rows: i32, cols: i32, x: usize, tokens: i32, y: usize, bf16: bool): void {
  gemmHalfImpl(w, rows, cols, x, tokens, y, bf16, false);
}

@inline function dotI8(w: usize, x: usize, n: i32, simd: bool): i32 {
  let k = 0, s = 0;
  if (simd) {
    let acc = i32x4.splat(0);
    for (; k + 16 <= n; k += 16) {
      const wv = v128.load(w + k), xv = v128.load(x + k);
      acc = i32x4.add(acc, i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(wv), i16x8.extend_low_i8x16_s(xv)));
      acc = i32x4.add(acc, i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(wv), i16x8.extend_high_i8x16_s(xv)));
    }
    s = i32x4.extract_lane(acc, 0) + i32x4.extract_lane(acc, 1) + i32x4.extract_lane(acc, 2) + i32x4.extract_lane(acc, 3);
  }
  for (; k < n; k++) s += <i32>load<i8>(w + k) * <i32>load<i8>(x + k);
  return s;
}

// Y[t, r] = wScale[r] * xScale[t] * sum_k Wq[r, k] Xq[t, k]; W is int8 [rows, cols], X is
// int8 [tokens, xStride] (the activation quantizer's padded rows). Integer sums are exact,
// so SIMD and scalar agree whatever the order.
@inline function gemmI8Impl(w: usize, wScales: usize, rows: i32, cols: i32, x: usize, xStride: i32, xScales: usize, tokens: i32, y: usize, simd: bool): void {
  for (let r = 0; r < rows; r++) {
    const wr = w + <usize>r * <usize>cols, ws = load<f32>(f32At(wScales, r));
    for (let t = 0; t < tokens; t++) {
      const sum = dotI8(wr, x + <usize>t * <usize>xStride, cols, simd);
      store<f32>(f32At(y, t * rows + r), <f32>sum * ws * load<f32>(f32At(xScales, t)));
    }
  }
}

export function gemmI8(w: usize, wScales: usize, rows: i32, cols: i32, x: usize, xStride: i32, xScales: usize, tokens: i32, y: usize): void {
  gemmI8Impl(w, wScales, rows, cols, x, xStride, xScales, tokens, y, true);
}
export function gemmI8Scalar(w: usize, wScales: usize, rows: i32, cols: i32, x: usize, xStride: i32, xScales: usize, tokens: i32, y: usize): void {
  gemmI8Impl(w, wScales, rows, cols, x, xStride, xScales, tokens, y, false);
}

/** How many of n f16 / bf16 values are infinite or NaN (all exponent bits set). */
export function countNonFiniteHalf(src: usize, n: i32, bf16: bool): i32 {
  const exp: u32 = bf16 ? 0x7f80 : 0x7c00;
  let bad = 0;
  for (let i = 0; i < n; i++) if ((<u32>load<u16>(src + (<usize>i << 1)) & exp) == exp) bad++;
  return bad;
}
