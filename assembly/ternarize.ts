// Weight ternarization of float master weights:
//   W_t = RoundClip(W / gamma, -1, 1), W ~ gamma * W_t, with gamma (at least 1e-5)
// - absmean (BitNet b1.58): gamma = mean|W|;
// - median (BitNet b1.58 Reloaded): gamma = median|W| (the lower middle value for even n, as torch.median),
//   but the median of the non-zero |W| where more than half are exactly 0: the reference code
//   clamps a zero median to 1e-5, which turns every non-zero weight of an already-ternary
//   (b1.58) matrix into +-1 at scale 1e-5 and silences the layer;
// computed as the reference does: s = 1 / gamma, W_t = clip(round(W * s)), scale 1 / s.
// Rounding is to nearest, ties to even (f32.nearest, like torch.round).
import { binarizeSign } from "./binary";
import { selectMagnitude } from "./select";

/** Ternarizes n f32 values at src into int8 -1/0/1 at dst with gamma = mean|W|; returns the scale (NaN if any input is not finite). */
export function ternarizeAbsmean(src: usize, n: i32, dst: usize): f32 {
  let sum: f64 = 0;
  for (let i = 0; i < n; i++) sum += <f64> abs(load<f32>(src + (<usize> i << 2)));
  if (!isFinite(sum)) return NaN;
  return ternarizeWith(src, n, dst, <f32> (sum / <f64> n));
}

/** As ternarizeAbsmean with gamma = median|W|, or the median of the non-zero |W| when that is 0. */
export function ternarizeMedian(src: usize, n: i32, dst: usize): f32 {
  let zeros = 0;
  for (let i = 0; i < n; i++) {
    const w = load<f32>(src + (<usize> i << 2));
    if (!isFinite(w)) return NaN;
    if (w == 0) zeros++;
  }
  // Ranks zeros + 1.. are the non-zero magnitudes in order.
  const rank = zeros < (n + 1) >> 1 || zeros == n ? (n + 1) >> 1 : zeros + ((n - zeros + 1) >> 1);
  return ternarizeWith(src, n, dst, reinterpret<f32>(selectMagnitude(src, n, rank)));
}

function ternarizeWith(src: usize, n: i32, dst: usize, magnitude: f32): f32 {
  const gamma = max(magnitude, <f32> 1e-5);
  const s: f32 = <f32> 1 / gamma;
  for (let i = 0; i < n; i++) {
    const q = nearest(load<f32>(src + (<usize> i << 2)) * s);
    store<i8>(dst + i, <i8> (q > 1 ? 1 : q < -1 ? -1 : <i32> q));
  }
  return <f32> 1 / s;
}

/** Writes int8 values times `scale` as f32: dequantized weights. */
export function int8ToF32(src: usize, n: i32, scale: f32, dst: usize): void {
  for (let i = 0; i < n; i++) store<f32>(dst + (<usize> i << 2), <f32> load<i8>(src + i) * scale);
}

/** Writes int8 values times `scale` as bfloat16 (rounded to nearest even): dequantized master weights. */
export function int8ToBF16(src: usize, n: i32, scale: f32, dst: usize): void {
  for (let i = 0; i < n; i++) {
    const bits = reinterpret<u32>(<f32> load<i8>(src + i) * scale);
    store<u16>(dst + (<usize> i << 1), <u16> ((bits + 0x7fff + ((bits >> 16) & 1)) >> 16));
  }
}

/** How many of n int8 values are non-zero. */
export function countNonZeroI8(src: usize, n: i32): i32 {
  let count = 0;
  for (let i = 0; i < n; i++) if (load<i8>(src + i) != 0) count++;
  return count;
}

/**
 * Per group of `groupCols` input columns of each row (groupCols = cols: per output channel):
 * ternarizes (absmean, median) or binarizes (sign) each group of a [rows, cols] f32 matrix on
 * its own, writing its scale to scales[row, group]. Returns the number of groups whose
 * weights were not finite.
 */
export function quantizeGroups(src: usize, rows: i32, cols: i32, groupCols: i32, method: i32, dst: usize, scales: usize): i32 {
  let bad = 0;
  for (let i = 0; i < rows * (cols / groupCols); i++) {
    const at = <usize> i * groupCols, from = src + (at << 2), out = dst + at;
    const scale = method == 0 ? ternarizeAbsmean(from, groupCols, out) : method == 1 ? ternarizeMedian(from, groupCols, out) : binarizeSign(from, groupCols, out);
    if (isNaN(scale)) bad++;
    store<f32>(scales + (<usize> i << 2), scale);
  }
  return bad;
}
