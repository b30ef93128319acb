// 1-bit (sign) weights x int8 activations, for binarized BitLinears (the original BitNet,
// FBI-LLM): W_b = Sign(W - mean(W)) in {-1, +1}, scale beta = mean|W|.
//
// Kernel layout ("8 rows per byte", built by `packSign`): rows padded to a multiple of 8,
// columns to 64; for each group of 8 rows, byte k holds column k with bit r set when row
// 8g + r is +1. Half the bytes of the ternary layout. With S_r the sum of the activations
// at the set bits of row r, W_b[r] . x = 2 S_r - sum(x).
// Relaxed build: bit r is masked in place (p & 2^r for rows 0-3, (p >> 4) & 2^(r-4) for rows
// 4-7, so every mask stays below 128, as the i8 x i7 dot-add requires) and dotted with x:
// row r's sum comes out times 2^r or 2^(r-4), divided exactly at the end. Strict build: bit
// r becomes a byte mask (shift it to the sign, arithmetic shift back), selects x, and
// pairwise extending adds sum it. Integer sums: both builds and the scalar twin are exact.

function paddedRows8(rows: i32): i32 {
  return (rows + 7) & ~7;
}
function paddedCols64(cols: i32): i32 {
  return (cols + 63) & ~63;
}

/** Bytes of a packed [rows, cols] sign matrix. */
export function signPackedBytes(rows: i32, cols: i32): i32 {
  return (paddedRows8(rows) >> 3) * paddedCols64(cols);
}

/** Packs an int8 matrix of -1 / +1 [rows, cols]; returns how many values were neither (then unusable). */
export function packSign(src: usize, rows: i32, cols: i32, dst: usize): i32 {
  const stride = paddedCols64(cols);
  let bad = 0;
  for (let g = 0; g < paddedRows8(rows) >> 3; g++) {
    for (let c = 0; c < stride; c++) {
      let byte: u32 = 0;
      for (let i = 0; i < 8; i++) {
        const r = (g << 3) + i;
        if (r >= rows || c >= cols) continue; // padding: -1, against zero activations
        const w = <i32> load<i8>(src + <usize> r * cols + c);
        if (w != 1 && w != -1) bad++;
        if (w == 1) byte |= 1 << i;
      }
      store<u8>(dst + <usize> g * stride + c, byte);
    }
  }
  return bad;
}

/** W_b = Sign(W - mean(W)) as int8 at dst, the paper's Sign: +1 above the mean, -1 at or below it; returns beta = mean|W| (NaN if any weight is not finite). */
export function binarizeSign(src: usize, n: i32, dst: usize): f32 {
  let sum: f64 = 0, sumAbs: f64 = 0;
  for (let i = 0; i < n; i++) {
    const w = <f64> load<f32>(src + (<usize> i << 2));
    sum += w;
    sumAbs += abs(w);
  }
  if (!isFinite(sumAbs)) return NaN;
  const alpha = <f32> (sum / <f64> n);
  for (let i = 0; i < n; i++) store<i8>(dst + i, load<f32>(src + (<usize> i << 2)) > alpha ? 1 : -1);
  return <f32> (sumAbs / <f64> n);
}

/**
 * FBI-LLM's binarized weights, in place on f32 W [rows, cols]: per input column j,
 * W^[i, j] = alpha_j * sign(W[i, j]) + beta_j with beta_j = mean_i W[i, j] and
 * alpha_j = mean_i |W[i, j] - beta_j| (its reference code's initialisation; sign(0) = 0 as
 * torch.sign). Returns how many columns held NaN or infinity.
 */
export function binarizeFBI(w: usize, rows: i32, cols: i32): i32 {
  let bad = 0;
  for (let j = 0; j < cols; j++) {
    let sum: f64 = 0;
    for (let i = 0; i < rows; i++) sum += <f64> load<f32>(w + ((<usize> i * cols + j) << 2));
    const beta = <f32> (sum / <f64> rows);
    let deviation: f64 = 0;
    for (let i = 0; i < rows; i++) deviation += <f64> abs(load<f32>(w + ((<usize> i * cols + j) << 2)) - beta);
    const alpha = <f32> (deviation / <f64> rows);
    if (!isFinite(alpha) || !isFinite(beta)) bad++;
    for (let i = 0; i < rows; i++) {
      const at = w + ((<usize> i * cols + j) << 2), v = load<f32>(at);
      store<f32>(at, (v > 0 ? alpha : v < 0 ? -alpha : 0) + beta);
    }
  }
  return bad;
}

// y = (2 S - sum(x)) * scale for row i of a group, if the row exists; written for the
// first column group, added for the next ones.
function storeRow(out: usize, i: i32, live: i32, selected: i32, xSum: i32, scale: f32, first: bool): void {
  if (i >= live) return;
  const at = out + (<usize> i << 2), v = <f32> ((selected << 1) - xSum) * scale;
  store<f32>(at, first ? v : load<f32>(at) + v);
}

function hsum(v: v128): i32 {
  return i32x4.extract_lane(v, 0) + i32x4.extract_lane(v, 1) + i32x4.extract_lane(v, 2) + i32x4.extract_lane(v, 3);
}

// Sum of the activations where bit `r` of each weight byte is set, added to acc (relaxed:
// times 2^(r & 3); `high` holds the bytes shifted right by 4).
function selectedSum(acc: v128, bytes: v128, high: v128, x: v128, r: i32): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return i32x4.relaxed_dot_i8x16_i7x16_add_s(x, v128.and(r < 4 ? bytes : high, i32x4.splat(0x01010101 << (r & 3))), acc);
  const mask = i8x16.shr_s(i8x16.shl(bytes, 7 - r), 7);
  return i32x4.add(acc, i32x4.extadd_pairwise_i16x8_s(i16x8.extadd_pairwise_i8x16_s(v128.and(x, mask))));
}

// A row's selected sum from its accumulator (undoing the relaxed build's 2^(r & 3)).
function rowSum(acc: v128, r: i32): i32 {
  return ASC_FEATURE_RELAXED_SIMD ? hsum(acc) >> (r & 3) : hsum(acc);
}

// xScale times row r's scale for column group g: the per-tensor wScale, or scales[r, g].
function scaleOf(scales: usize, wScale: f32, xScale: f32, r: i32, g: i32, groups: i32): f32 {
  return xScale * (scales == 0 ? wScale : load<f32>(scales + (<usize> (r * groups + g) << 2)));
}

// Column groups as in ternary.ts: `groups` groups of `groupCols` columns (one for a per-tensor
// scale), the last running over the zero padding; xSums: i32 [tokens, groups].
function signGemmImpl(
  w: usize,
  rows: i32,
  cols: i32,
  x: usize,
  xSums: usize,
  xScales: usize,
  tokens: i32,
  groups: i32,
  groupCols: i32,
  scales: usize,
  wScale: f32,
  y: usize,
  simd: bool,
): void {
  const stride = paddedCols64(cols);
  for (let rg = 0; rg < paddedRows8(rows) >> 3; rg++) {
    const wg = w + <usize> rg * stride, live = min(8, rows - (rg << 3)), r0 = rg << 3;
    for (let t = 0; t < tokens; t++) {
      const xt = x + <usize> t * stride, xScale = load<f32>(xScales + (<usize> t << 2));
      const out = y + (<usize> (t * rows + r0) << 2);
      for (let g = 0; g < groups; g++) {
        const c0 = g * groupCols, c1 = g == groups - 1 ? stride : c0 + groupCols, first = g == 0;
        const xSum = load<i32>(xSums + (<usize> (t * groups + g) << 2));
        if (simd) {
          let a0 = i32x4.splat(0), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
          for (let c = c0; c < c1; c += 16) {
            const bytes = v128.load(wg + c), xv = v128.load(xt + c), high = i8x16.shr_u(bytes, 4);
            a0 = selectedSum(a0, bytes, high, xv, 0);
            a1 = selectedSum(a1, bytes, high, xv, 1);
            a2 = selectedSum(a2, bytes, high, xv, 2);
            a3 = selectedSum(a3, bytes, high, xv, 3);
            a4 = selectedSum(a4, bytes, high, xv, 4);
            a5 = selectedSum(a5, bytes, high, xv, 5);
            a6 = selectedSum(a6, bytes, high, xv, 6);
            a7 = selectedSum(a7, bytes, high, xv, 7);
          }
          storeRow(out, 0, live, rowSum(a0, 0), xSum, scaleOf(scales, wScale, xScale, r0, g, groups), first);
          storeRow(out, 1, live, rowSum(a1, 1), xSum, scaleOf(scales, wScale, xScale, min(r0 + 1, rows - 1), g, groups), first);
          storeRow(out, 2, live, rowSum(a2, 2), xSum, scaleOf(scales, wScale, xScale, min(r0 + 2, rows - 1), g, groups), first);
          storeRow(out, 3, live, rowSum(a3, 3), xSum, scaleOf(scales, wScale, xScale, min(r0 + 3, rows - 1), g, groups), first);
          storeRow(out, 4, live, rowSum(a4, 4), xSum, scaleOf(scales, wScale, xScale, min(r0 + 4, rows - 1), g, groups), first);
          storeRow(out, 5, live, rowSum(a5, 5), xSum, scaleOf(scales, wScale, xScale, min(r0 + 5, rows - 1), g, groups), first);
          storeRow(out, 6, live, rowSum(a6, 6), xSum, scaleOf(scales, wScale, xScale, min(r0 + 6, rows - 1), g, groups), first);
          storeRow(out, 7, live, rowSum(a7, 7), xSum, scaleOf(scales, wScale, xScale, min(r0 + 7, rows - 1), g, groups), first);
        } else {
          for (let i = 0; i < live; i++) {
            let s = 0;
            for (let c = c0; c < min(c1, cols); c++) if ((load<u8>(wg + c) >> i) & 1) s += <i32> load<i8>(xt + c);
            storeRow(out, i, live, s, xSum, scaleOf(scales, wScale, xScale, r0 + i, g, groups), first);
          }
        }
      }
    }
  }
}

/**
 * Y[t, r] = (W_b[r] . X[t]) * wScale * xScales[t]. X: int8 [tokens, paddedCols] (zero
 * padded); xSums: i32 [tokens]; xScales: f32 [tokens]; Y: f32 [tokens, rows].
 */
export function signGemm(w: usize, rows: i32, cols: i32, x: usize, xSums: usize, xScales: usize, tokens: i32, wScale: f32, y: usize): void {
  signGemmImpl(w, rows, cols, x, xSums, xScales, tokens, 1, cols, 0, wScale, y, true);
}
/** Scalar twin of signGemm. */
export function signGemmScalar(w: usize, rows: i32, cols: i32, x: usize, xSums: usize, xScales: usize, tokens: i32, wScale: f32, y: usize): void {
  signGemmImpl(w, rows, cols, x, xSums, xScales, tokens, 1, cols, 0, wScale, y, false);
}

/** Per-group scales, as ternaryGemmGrouped: xGroupSums i32 [tokens, cols / groupCols], scales f32 [rows, groups]. */
export function signGemmGrouped(w: usize, rows: i32, cols: i32, x: usize, xGroupSums: usize, xScales: usize, tokens: i32, groupCols: i32, scales: usize, y: usize): void {
  signGemmImpl(w, rows, cols, x, xGroupSums, xScales, tokens, cols / groupCols, groupCols, scales, 1, y, true);
}
/** Scalar twin of signGemmGrouped. */
export function signGemmGroupedScalar(w: usize, rows: i32, cols: i32, x: usize, xGroupSums: usize, xScales: usize, tokens: i32, groupCols: i32, scales: usize, y: usize): void {
  signGemmImpl(w, rows, cols, x, xGroupSums, xScales, tokens, cols / groupCols, groupCols, scales, 1, y, false);
}
