// The classifier (LM head) over an embedding table kept in its stored precision:
// f16 / bf16 weights times f32 activations, or int8 weights (one absmax scale per row)
// times int8 activations.
//
// Half weights are widened in registers from one 16-byte load of 8 values: as i32 lanes
// they hold the odd values in their high halves and the even ones in their low halves, so
// a shift puts the even ones up too, and the activations are laid out to match by
// `prepareHalfInput` ([x0 x2 x4 x6 x1 x3 x5 x7] per 8, in blocks of 16). An f16 placed in a lane's high half
// and shifted right by 3 (arithmetically, then masked) has its exponent and mantissa where
// an f32's go: the f32 read there is the f16 value times 2^-112, exact for normal and
// subnormal halves alike. Multiplying the activations by 2^112 instead of every weight
// leaves each product w * x exact to the same rounding (no overflow while |x| < 2^16;
// larger inputs rescale the weights in the loop). Sums run in sixteen lanes folded in a fixed
// order, so the SIMD kernel and its scalar twin agree bit for bit. Finite tables only
// (loaders reject inf / NaN halves).
import { f32At, scratch } from "./memory";

const TWO_POW_112: f32 = 5.192296858534828e33;
const F16_BITS: i32 = 0x8fffe000;
const HIGH_HALF: i32 = 0xffff0000;

/** Writes x [tokens, cols] regrouped for gemmHalf into out; returns 1 if the f16 weights must be rescaled in the loop. */
export function prepareHalfInput(x: usize, cols: i32, tokens: i32, out: usize, bf16: bool): i32 {
  const n = tokens * cols;
  let large = false;
  if (!bf16) { for (let i = 0; i < n; i++) large = large || Mathf.abs(load<f32>(f32At(x, i))) >= 65536; }
  const scale: f32 = bf16 || large ? 1 : TWO_POW_112;
  for (let t = 0; t < tokens; t++) {
    const src = f32At(x, t * cols), dst = f32At(out, t * cols);
    let k = 0;
    for (; k + 16 <= cols; k += 16) {
      for (let j = 0; j < 16; j++) store<f32>(f32At(dst, k + j), load<f32>(f32At(src, k + blockSource(j))) * scale);
    }
    for (; k < cols; k++) store<f32>(f32At(dst, k), load<f32>(f32At(src, k)) * scale);
  }
  return large ? 1 : 0;
}

// One weight as the SIMD lanes see it: bf16 exactly, f16 times 2^-112 (times 2^112 again when rescaled).
function halfAt(w: usize, k: i32, bf16: bool, rescale: bool): f32 {
  const high = <i32> load<u16>(w + (<usize> k << 1)) << 16;
  if (bf16) return reinterpret<f32>(high);
  const v = reinterpret<f32>((high >> 3) & F16_BITS);
  return rescale ? v * TWO_POW_112 : v;
}

// Where the j-th input of a regrouped block of 16 sits in the weights' own order.
function blockSource(j: i32): i32 {
  return (j & 8) + ((j & 3) << 1) + ((j >> 2) & 1);
}

// Sixteen lanes per row: even / odd values of the first 8 of a block, then of the second 8;
// the two halves are added lane by lane, then folded as (e0 + o0) + (e1 + o1) + ...
function dotHalf(w: usize, x: usize, n: i32, bf16: bool, rescale: bool, simd: bool): f32 {
  let k = 0;
  let even = f32x4.splat(0), odd = f32x4.splat(0);
  if (simd) {
    const bits = i32x4.splat(bf16 ? HIGH_HALF : F16_BITS), big = f32x4.splat(TWO_POW_112);
    let even2 = f32x4.splat(0), odd2 = f32x4.splat(0);
    for (; k + 16 <= n; k += 16) {
      const v = v128.load(w + (<usize> k << 1)), v2 = v128.load(w + (<usize> k << 1), 16);
      let we = i32x4.shl(v, 16), wo = v, we2 = i32x4.shl(v2, 16), wo2 = v2;
      if (bf16) {
        wo = v128.and(v, bits);
        wo2 = v128.and(v2, bits);
      } else {
        we = v128.and(i32x4.shr_s(we, 3), bits);
        wo = v128.and(i32x4.shr_s(wo, 3), bits);
        we2 = v128.and(i32x4.shr_s(we2, 3), bits);
        wo2 = v128.and(i32x4.shr_s(wo2, 3), bits);
        if (rescale) {
          we = f32x4.mul(we, big);
          wo = f32x4.mul(wo, big);
          we2 = f32x4.mul(we2, big);
          wo2 = f32x4.mul(wo2, big);
        }
      }
      // Four independent sums: one chain of adds would bound the loop by its latency.
      even = f32x4.add(even, f32x4.mul(we, v128.load(f32At(x, k))));
      odd = f32x4.add(odd, f32x4.mul(wo, v128.load(f32At(x, k + 4))));
      even2 = f32x4.add(even2, f32x4.mul(we2, v128.load(f32At(x, k + 8))));
      odd2 = f32x4.add(odd2, f32x4.mul(wo2, v128.load(f32At(x, k + 12))));
    }
    even = f32x4.add(even, even2);
    odd = f32x4.add(odd, odd2);
  } else {
    for (let j = 0; j < 16; j++) store<f32>(f32At(scratch, j), 0);
    for (; k + 16 <= n; k += 16) {
      for (let j = 0; j < 16; j++) {
        const lane = f32At(scratch, j);
        store<f32>(lane, load<f32>(lane) + halfAt(w, k + blockSource(j), bf16, rescale) * load<f32>(f32At(x, k + j)));
      }
    }
    even = f32x4.add(v128.load(scratch), v128.load(scratch, 32));
    odd = f32x4.add(v128.load(scratch, 16), v128.load(scratch, 48));
  }
  let s = (f32x4.extract_lane(even, 0) + f32x4.extract_lane(odd, 0)) + (f32x4.extract_lane(even, 1) + f32x4.extract_lane(odd, 1)) +
    (f32x4.extract_lane(even, 2) + f32x4.extract_lane(odd, 2)) + (f32x4.extract_lane(even, 3) + f32x4.extract_lane(odd, 3));
  for (; k < n; k++) s += halfAt(w, k, bf16, rescale) * load<f32>(f32At(x, k));
  return s;
}

// Y[t, r] = sum_k W[r, k] X[t, k] with W [rows, cols] in f16 / bf16 and X as prepareHalfInput
// wrote it (`rescale` is what it returned). Each row is read once for all tokens.
function gemmHalfImpl(w: usize, rows: i32, cols: i32, x: usize, tokens: i32, y: usize, bf16: bool, rescale: bool, simd: bool): void {
  for (let r = 0; r < rows; r++) {
    const wr = w + (<usize> r * <usize> cols << 1);
    for (let t = 0; t < tokens; t++) store<f32>(f32At(y, t * rows + r), dotHalf(wr, f32At(x, t * cols), cols, bf16, rescale, simd));
  }
}

// One loop per weight form (f16 / f16 rescaled / bf16), the form a constant in each: with the
// flags as runtime arguments the f16 head took 47 ms instead of 31 (2B4T head, Node 20).
function gemmHalfForms(w: usize, rows: i32, cols: i32, x: usize, tokens: i32, y: usize, bf16: bool, rescale: bool, simd: bool): void {
  if (bf16) gemmHalfImpl(w, rows, cols, x, tokens, y, true, false, simd);
  else if (rescale) gemmHalfImpl(w, rows, cols, x, tokens, y, false, true, simd);
  else gemmHalfImpl(w, rows, cols, x, tokens, y, false, false, simd);
}

/**
 * Y = X W^T for f16 or bf16 weights W [rows, cols] (an LM head in its stored precision):
 * Y f32 [tokens, rows]; X [tokens, cols] as prepareHalfInput wrote it, `rescale` what it returned.
 */
export function gemmHalf(w: usize, rows: i32, cols: i32, x: usize, tokens: i32, y: usize, bf16: bool, rescale: bool): void {
  gemmHalfForms(w, rows, cols, x, tokens, y, bf16, rescale, true);
}
/** Scalar twin of gemmHalf. */
export function gemmHalfScalar(w: usize, rows: i32, cols: i32, x: usize, tokens: i32, y: usize, bf16: bool, rescale: bool): void {
  gemmHalfForms(w, rows, cols, x, tokens, y, bf16, rescale, false);
}

function dotI8(w: usize, x: usize, n: i32, simd: bool): i32 {
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
  for (; k < n; k++) s += <i32> load<i8>(w + k) * <i32> load<i8>(x + k);
  return s;
}

// Y[t, r] = wScale[r] * xScale[t] * sum_k Wq[r, k] Xq[t, k]; W is int8 [rows, cols], X is
// int8 [tokens, xStride] (the activation quantizer's padded rows). Integer sums are exact,
// so SIMD and scalar agree whatever the order.
function gemmI8Impl(w: usize, wScales: usize, rows: i32, cols: i32, x: usize, xStride: i32, xScales: usize, tokens: i32, y: usize, simd: bool): void {
  for (let r = 0; r < rows; r++) {
    const wr = w + <usize> r * <usize> cols, ws = load<f32>(f32At(wScales, r));
    for (let t = 0; t < tokens; t++) {
      const sum = dotI8(wr, x + <usize> t * <usize> xStride, cols, simd);
      store<f32>(f32At(y, t * rows + r), <f32> sum * ws * load<f32>(f32At(xScales, t)));
    }
  }
}

/**
 * Y = X W^T for int8 rows W [rows, cols] with f32 scales wScales [rows] against int8
 * activations X [tokens, xStride] with scales xScales [tokens] (the int8 LM head): Y f32 [tokens, rows].
 */
export function gemmI8(w: usize, wScales: usize, rows: i32, cols: i32, x: usize, xStride: i32, xScales: usize, tokens: i32, y: usize): void {
  gemmI8Impl(w, wScales, rows, cols, x, xStride, xScales, tokens, y, true);
}
/** Scalar twin of gemmI8. */
export function gemmI8Scalar(w: usize, wScales: usize, rows: i32, cols: i32, x: usize, xStride: i32, xScales: usize, tokens: i32, y: usize): void {
  gemmI8Impl(w, wScales, rows, cols, x, xStride, xScales, tokens, y, false);
}

/** How many of n f32 values are infinite or NaN (all exponent bits set). */
export function countNonFiniteF32(src: usize, n: i32): i32 {
  let bad = 0;
  for (let i = 0; i < n; i++) if ((load<u32>(src + (<usize> i << 2)) & 0x7f800000) == 0x7f800000) bad++;
  return bad;
}

/** How many of n f16 / bf16 values are infinite or NaN (all exponent bits set). */
export function countNonFiniteHalf(src: usize, n: i32, bf16: bool): i32 {
  const exp: u32 = bf16 ? 0x7f80 : 0x7c00;
  let bad = 0;
  for (let i = 0; i < n; i++) if ((<u32> load<u16>(src + (<usize> i << 1)) & exp) == exp) bad++;
  return bad;
}
