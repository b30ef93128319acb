// Ternary weights x sparse int8 activations (Q-Sparse's top-K): a column-blocked layout
// lets the kernel read only the weight columns of the kept (non-zero) activations.
//
// Layout (`packTernaryColumns`): rows padded to 64; for each block of 64 rows and each
// column c, 16 bytes: byte j holds the codes (w + 1) of rows 64b + j, +16, +32, +48 in bits
// 0-1, 2-3, 4-5, 6-7. Per kept column the kernel unpacks 64 rows and adds x_c * w into
// i16 accumulators (flushed to i32 before they can overflow), so its work grows with the
// number of kept columns instead of all of them: docs/benchmarks.md says where that wins.
import { f32At } from "./memory";

function paddedRows64(rows: i32): i32 {
  return (rows + 63) & ~63;
}

/** Bytes of a [rows, cols] ternary matrix in the column-blocked layout. */
export function ternaryColumnsBytes(rows: i32, cols: i32): i32 {
  return (paddedRows64(rows) >> 2) * cols;
}

/** Packs an int8 ternary matrix [rows, cols] column-blocked; returns how many values were not -1, 0 or 1. */
export function packTernaryColumns(src: usize, rows: i32, cols: i32, dst: usize): i32 {
  let bad = 0;
  for (let b = 0; b < paddedRows64(rows) >> 6; b++) {
    for (let c = 0; c < cols; c++) {
      for (let j = 0; j < 16; j++) {
        let byte: u32 = 0;
        for (let s = 0; s < 4; s++) {
          const r = (b << 6) + j + (s << 4);
          let w: i32 = 0;
          if (r < rows) w = <i32> load<i8>(src + <usize> r * cols + c);
          if (w < -1 || w > 1) {
            bad++;
            w = 0;
          }
          byte |= <u32> (w + 1) << (s << 1);
        }
        store<u8>(dst + ((<usize> b * cols + c) << 4) + j, byte);
      }
    }
  }
  return bad;
}

// x * (codes - 1) for the low or high 8 of 16 rows (one 2-bit plane of a 16-byte group), as i16.
function planeLow(codes: v128, x: v128): v128 {
  return i16x8.extmul_low_i8x16_s(i8x16.sub(codes, i8x16.splat(1)), x);
}
function planeHigh(codes: v128, x: v128): v128 {
  return i16x8.extmul_high_i8x16_s(i8x16.sub(codes, i8x16.splat(1)), x);
}

/**
 * y[r] = (W[r] . x) * wScale * xScale over the non-zero entries of x only. `kept` lists
 * their column indices (i32, `count` of them, as the top-K selection leaves them).
 */
export function ternaryGemvSparse(w: usize, rows: i32, cols: i32, x: usize, kept: usize, count: i32, wScale: f32, xScale: f32, y: usize): void {
  const scale = wScale * xScale, three = i8x16.splat(3);
  for (let b = 0; b < paddedRows64(rows) >> 6; b++) {
    const block = w + ((<usize> b * cols) << 4);
    let s0 = i32x4.splat(0), s1 = s0, s2 = s0, s3 = s0, s4 = s0, s5 = s0, s6 = s0, s7 = s0, s8 = s0, s9 = s0, s10 = s0, s11 = s0, s12 = s0, s13 = s0, s14 = s0, s15 = s0;
    for (let k0 = 0; k0 < count; k0 += 255) { // 255 columns of |x| <= 128 fit an i16 lane
      let a0 = i16x8.splat(0), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
      for (let k = k0; k < min(count, k0 + 255); k++) {
        const c = load<i32>(kept + (<usize> k << 2));
        const p = v128.load(block + (<usize> c << 4)), xv = i8x16.splat(load<i8>(x + c));
        const q0 = v128.and(p, three), q1 = v128.and(i8x16.shr_u(p, 2), three), q2 = v128.and(i8x16.shr_u(p, 4), three), q3 = i8x16.shr_u(p, 6);
        a0 = i16x8.add(a0, planeLow(q0, xv));
        a1 = i16x8.add(a1, planeHigh(q0, xv));
        a2 = i16x8.add(a2, planeLow(q1, xv));
        a3 = i16x8.add(a3, planeHigh(q1, xv));
        a4 = i16x8.add(a4, planeLow(q2, xv));
        a5 = i16x8.add(a5, planeHigh(q2, xv));
        a6 = i16x8.add(a6, planeLow(q3, xv));
        a7 = i16x8.add(a7, planeHigh(q3, xv));
      }
      s0 = i32x4.add(s0, i32x4.extend_low_i16x8_s(a0));
      s1 = i32x4.add(s1, i32x4.extend_high_i16x8_s(a0));
      s2 = i32x4.add(s2, i32x4.extend_low_i16x8_s(a1));
      s3 = i32x4.add(s3, i32x4.extend_high_i16x8_s(a1));
      s4 = i32x4.add(s4, i32x4.extend_low_i16x8_s(a2));
      s5 = i32x4.add(s5, i32x4.extend_high_i16x8_s(a2));
      s6 = i32x4.add(s6, i32x4.extend_low_i16x8_s(a3));
      s7 = i32x4.add(s7, i32x4.extend_high_i16x8_s(a3));
      s8 = i32x4.add(s8, i32x4.extend_low_i16x8_s(a4));
      s9 = i32x4.add(s9, i32x4.extend_high_i16x8_s(a4));
      s10 = i32x4.add(s10, i32x4.extend_low_i16x8_s(a5));
      s11 = i32x4.add(s11, i32x4.extend_high_i16x8_s(a5));
      s12 = i32x4.add(s12, i32x4.extend_low_i16x8_s(a6));
      s13 = i32x4.add(s13, i32x4.extend_high_i16x8_s(a6));
      s14 = i32x4.add(s14, i32x4.extend_low_i16x8_s(a7));
      s15 = i32x4.add(s15, i32x4.extend_high_i16x8_s(a7));
    }
    // Lanes in row order: plane s covers rows 16s..16s+15 of the block.
    const out = f32At(y, b << 6), live = min(64, rows - (b << 6));
    storeLanes(out, 0, live, s0, scale);
    storeLanes(out, 4, live, s1, scale);
    storeLanes(out, 8, live, s2, scale);
    storeLanes(out, 12, live, s3, scale);
    storeLanes(out, 16, live, s4, scale);
    storeLanes(out, 20, live, s5, scale);
    storeLanes(out, 24, live, s6, scale);
    storeLanes(out, 28, live, s7, scale);
    storeLanes(out, 32, live, s8, scale);
    storeLanes(out, 36, live, s9, scale);
    storeLanes(out, 40, live, s10, scale);
    storeLanes(out, 44, live, s11, scale);
    storeLanes(out, 48, live, s12, scale);
    storeLanes(out, 52, live, s13, scale);
    storeLanes(out, 56, live, s14, scale);
    storeLanes(out, 60, live, s15, scale);
  }
}

function storeLanes(out: usize, first: i32, live: i32, v: v128, scale: f32): void {
  if (first < live) store<f32>(f32At(out, first), <f32> i32x4.extract_lane(v, 0) * scale);
  if (first + 1 < live) store<f32>(f32At(out, first + 1), <f32> i32x4.extract_lane(v, 1) * scale);
  if (first + 2 < live) store<f32>(f32At(out, first + 2), <f32> i32x4.extract_lane(v, 2) * scale);
  if (first + 3 < live) store<f32>(f32At(out, first + 3), <f32> i32x4.extract_lane(v, 3) * scale);
}

/** Scalar twin: the same integers over the kept columns. */
export function ternaryGemvSparseScalar(w: usize, rows: i32, cols: i32, x: usize, kept: usize, count: i32, wScale: f32, xScale: f32, y: usize): void {
  const scale = wScale * xScale;
  for (let r = 0; r < rows; r++) {
    const block = w + ((<usize> (r >> 6) * cols) << 4), j = r & 15, shift = ((r & 63) >> 4) << 1;
    let acc = 0;
    for (let k = 0; k < count; k++) {
      const c = load<i32>(kept + (<usize> k << 2));
      acc += (<i32> ((load<u8>(block + (<usize> c << 4) + j) >> shift) & 3) - 1) * <i32> load<i8>(x + c);
    }
    store<f32>(f32At(y, r), <f32> acc * scale);
  }
}

/** The indices of the non-zero entries of int8 x[0..n) into kept (i32); returns their count. */
export function nonZeroColumns(x: usize, n: i32, kept: usize): i32 {
  let count = 0;
  for (let c = 0; c < n; c++) {
    if (load<i8>(x + c) == 0) continue;
    store<i32>(kept + (<usize> count << 2), c);
    count++;
  }
  return count;
}
