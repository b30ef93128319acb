// Per-token int8 absmax activation quantization (BitNet b1.58):
//   Q = RoundClip(x * 127 / max|x|, -128, 127), dequantization multiplier max|x| / 127.
// Rounding is to nearest, ties to even (f32.nearest, like numpy and torch).
import { f32At } from "./memory";

@inline function absmax(x: usize, n: i32, simd: bool): f32 {
  let k = 0;
  let m: f32 = 0;
  if (simd) {
    let v = f32x4.splat(0);
    for (; k + 4 <= n; k += 4) v = f32x4.max(v, f32x4.abs(v128.load(f32At(x, k))));
    m = max(max(f32x4.extract_lane(v, 0), f32x4.extract_lane(v, 1)), max(f32x4.extract_lane(v, 2), f32x4.extract_lane(v, 3)));
  }
  for (; k < n; k++) m = max(m, abs(load<f32>(f32At(x, k))));
  return m; // NaN if any input is NaN (f32.max propagates it)
}

@inline function quantizeValue(v: f32, inv: f32): i32 {
  const q = nearest(v * inv);
  return q > 127 ? 127 : q < -128 ? -128 : <i32>q;
}

// Quantizes one row; returns sum(Q) and stores the multiplier at `scale`.
@inline function quantizeRow(x: usize, n: i32, q: usize, nPad: i32, scale: usize, simd: bool): i32 {
  const m = absmax(x, n, simd);
  const inv: f32 = m > 0 ? <f32>127 / m : 0;
  store<f32>(scale, m / 127);
  let k = 0, sum = 0;
  if (simd) {
    const vinv = f32x4.splat(inv);
    let vsum = i32x4.splat(0);
    for (; k + 16 <= n; k += 16) {
      const a = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(f32At(x, k)), vinv)));
      const b = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(f32At(x, k + 4)), vinv)));
      const c = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(f32At(x, k + 8)), vinv)));
      const d = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(f32At(x, k + 12)), vinv)));
      v128.store(q + k, i8x16.narrow_i16x8_s(i16x8.narrow_i32x4_s(a, b), i16x8.narrow_i32x4_s(c, d)));
      vsum = i32x4.add(vsum, i32x4.add(i32x4.add(a, b), i32x4.add(c, d)));
    }
    sum = i32x4.extract_lane(vsum, 0) + i32x4.extract_lane(vsum, 1) + i32x4.extract_lane(vsum, 2) + i32x4.extract_lane(vsum, 3);
  }
  for (; k < n; k++) {
    const v = quantizeValue(load<f32>(f32At(x, k)), inv);
    store<i8>(q + k, <i8>v);
    sum += v;
  }
  memory.fill(q + n, 0, nPad - n);
  return sum;
}

@inline function quantizeImpl(x: usize, n: i32, tokens: i32, q: usize, nPad: i32, scales: usize, sums: usize, simd: bool): i32 {
  let bad = 0;
  for (let t = 0; t < tokens; t++) {
    const scale = f32At(scales, t);
    const sum = quantizeRow(f32At(x, t * n), n, q + <usize>t * nPad, nPad, scale, simd);
    store<i32>(sums + (<usize>t << 2), sum);
    const s = load<f32>(scale);
    if (s != s || s == Infinity) bad++;
  }
  return bad;
}

/**
 * Quantizes `tokens` rows of x [tokens, n] into q [tokens, nPad] (zero padded),
 * writing each row's multiplier max|x|/127 to scales and sum(Q) to sums.
 * Returns how many rows held NaN or infinity (their output is not usable).
 */
export function quantizeAbsmaxI8(x: usize, n: i32, tokens: i32, q: usize, nPad: i32, scales: usize, sums: usize): i32 {
  return quantizeImpl(x, n, tokens, q, nPad, scales, sums, true);
}
export function quantizeAbsmaxI8Scalar(x: usize, n: i32, tokens: i32, q: usize, nPad: i32, scales: usize, sums: usize): i32 {
  return quantizeImpl(x, n, tokens, q, nPad, scales, sums, false);
}
