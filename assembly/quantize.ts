// Per-token activation quantization into integers the ternary kernels multiply exactly:
// - int8 absmax (BitNet b1.58): Q = RoundClip(x * L / max|x|, -128, 127), multiplier max|x| / L,
//   with L = 127 (b1.58) or 128 (the b1.58 Reloaded reference code, whose maximum clips to 127);
// - int4 absmean (BitNet a4.8): beta = mean|x|, Q = RoundClip(sqrt(7) * x / beta, -8, 7),
//   multiplier beta / sqrt(7) (int4 values travel in int8 lanes).
// Rounding is to nearest, ties to even (f32.nearest, like numpy and torch).
import { f32At } from "./memory";

function absmax(x: usize, n: i32, simd: bool): f32 {
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

function absmean(x: usize, n: i32): f32 {
  let sum: f32 = 0;
  for (let k = 0; k < n; k++) sum += abs(load<f32>(f32At(x, k)));
  return sum / <f32> n; // NaN if any input is NaN or infinite
}

const SQRT7: f32 = 2.6457513110645907;

function quantizeValue(v: f32, inv: f32, lo: i32, hi: i32): i32 {
  const q = nearest(v * inv);
  return q > <f32> hi ? hi : q < <f32> lo ? lo : <i32> q;
}

// Quantizes one row; returns sum(Q) and stores the multiplier at `scale`.
function quantizeRow(x: usize, n: i32, q: usize, nPad: i32, scale: usize, int4: bool, levels: f32, simd: bool): i32 {
  let inv: f32;
  if (int4) {
    const beta = absmean(x, n);
    inv = beta > 0 ? SQRT7 / beta : beta == beta ? 0 : NaN;
    store<f32>(scale, beta / SQRT7);
  } else {
    const m = absmax(x, n, simd);
    inv = m > 0 ? levels / m : 0;
    store<f32>(scale, m / levels);
  }
  const lo = int4 ? -8 : -128, hi = int4 ? 7 : 127;
  let k = 0, sum = 0;
  if (simd) {
    const vinv = f32x4.splat(inv), vlo = i32x4.splat(lo), vhi = i32x4.splat(hi);
    let vsum = i32x4.splat(0);
    for (; k + 16 <= n; k += 16) {
      const a = clamp4(i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(f32At(x, k)), vinv))), vlo, vhi);
      const b = clamp4(i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(f32At(x, k + 4)), vinv))), vlo, vhi);
      const c = clamp4(i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(f32At(x, k + 8)), vinv))), vlo, vhi);
      const d = clamp4(i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(f32At(x, k + 12)), vinv))), vlo, vhi);
      v128.store(q + k, i8x16.narrow_i16x8_s(i16x8.narrow_i32x4_s(a, b), i16x8.narrow_i32x4_s(c, d)));
      vsum = i32x4.add(vsum, i32x4.add(i32x4.add(a, b), i32x4.add(c, d)));
    }
    sum = i32x4.extract_lane(vsum, 0) + i32x4.extract_lane(vsum, 1) + i32x4.extract_lane(vsum, 2) + i32x4.extract_lane(vsum, 3);
  }
  for (; k < n; k++) {
    const v = quantizeValue(load<f32>(f32At(x, k)), inv, lo, hi);
    store<i8>(q + k, <i8> v);
    sum += v;
  }
  memory.fill(q + n, 0, nPad - n);
  return sum;
}

function clamp4(v: v128, lo: v128, hi: v128): v128 {
  return i32x4.min_s(i32x4.max_s(v, lo), hi);
}

function quantizeImpl(x: usize, n: i32, tokens: i32, q: usize, nPad: i32, scales: usize, sums: usize, int4: bool, levels: f32, simd: bool): i32 {
  let bad = 0;
  for (let t = 0; t < tokens; t++) {
    const scale = f32At(scales, t);
    const sum = quantizeRow(f32At(x, t * n), n, q + <usize> t * nPad, nPad, scale, int4, levels, simd);
    store<i32>(sums + (<usize> t << 2), sum);
    const s = load<f32>(scale);
    if (s != s || s == Infinity) bad++;
  }
  return bad;
}

/**
 * Quantizes `tokens` rows of x [tokens, n] into q [tokens, nPad] (zero padded) with
 * Q = RoundClip(x * levels / max|x|, -128, 127) (levels 127, or 128 as b1.58 Reloaded),
 * writing each row's multiplier max|x| / levels to scales and sum(Q) to sums.
 * Returns how many rows held NaN or infinity (their output is not usable).
 */
export function quantizeAbsmaxI8(x: usize, n: i32, tokens: i32, q: usize, nPad: i32, scales: usize, sums: usize, levels: f32): i32 {
  return quantizeImpl(x, n, tokens, q, nPad, scales, sums, false, levels, true);
}
/** Scalar twin of quantizeAbsmaxI8. */
export function quantizeAbsmaxI8Scalar(x: usize, n: i32, tokens: i32, q: usize, nPad: i32, scales: usize, sums: usize, levels: f32): i32 {
  return quantizeImpl(x, n, tokens, q, nPad, scales, sums, false, levels, false);
}

/** As quantizeAbsmaxI8, with int4 absmean (a4.8): multipliers mean|x| / sqrt(7), values in -8..7. */
export function quantizeAbsmeanI4(x: usize, n: i32, tokens: i32, q: usize, nPad: i32, scales: usize, sums: usize): i32 {
  return quantizeImpl(x, n, tokens, q, nPad, scales, sums, true, 0, true);
}
/** Scalar twin of quantizeAbsmeanI4. */
export function quantizeAbsmeanI4Scalar(x: usize, n: i32, tokens: i32, q: usize, nPad: i32, scales: usize, sums: usize): i32 {
  return quantizeImpl(x, n, tokens, q, nPad, scales, sums, true, 0, false);
}
