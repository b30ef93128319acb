// Ternary weights x int8 activations.
//
// Kernel layout ("rows4x64", built at load time by `packTernary`):
//   rows are padded to a multiple of 4 and columns to a multiple of 64;
//   for each group of 4 rows, for each 64-column block, 4 x 16 bytes (one slice per row);
//   byte j of a slice holds the codes (w + 1, in 0..2) of columns block*64 + j + 16*s
//   in bits 2s..2s+1 (s = 0..3).
// Why: one v128 load, three shifts and three masks give four vectors of 16 codes that
// line up with four contiguous 16-byte activation vectors, and the weights of a row group
// stream linearly. Codes are unsigned so relaxed SIMD's i8 x i7 dot can take them; the
// dot then counts every activation once too many, which subtracting sum(x) undoes.
// Activations are int8, padded with zeros to the padded width: padding never contributes.
import { LOW2_MASK, f32At } from "./memory";

@inline function paddedRows(rows: i32): i32 { return (rows + 3) & ~3; }
@inline function blockCount(cols: i32): i32 { return (cols + 63) >> 6; }

/** Bytes of a packed [rows, cols] matrix. */
export function ternaryPackedBytes(rows: i32, cols: i32): i32 {
  return paddedRows(rows) * blockCount(cols) * 16;
}

/**
 * Packs an int8 ternary matrix [rows, cols] (values -1, 0, 1) into the kernel layout.
 * Returns how many values were outside {-1, 0, 1} (then the result is not usable).
 */
export function packTernary(src: usize, rows: i32, cols: i32, dst: usize): i32 {
  const blocks = blockCount(cols);
  let bad = 0;
  for (let r = 0; r < paddedRows(rows); r++) {
    for (let b = 0; b < blocks; b++) {
      const slice = dst + ((<usize>((r >> 2) * blocks + b)) << 6) + (<usize>(r & 3) << 4);
      for (let j = 0; j < 16; j++) {
        let byte: u32 = 0;
        for (let s = 0; s < 4; s++) {
          const c = (b << 6) + j + (s << 4);
          let w: i32 = 0;
          if (r < rows && c < cols) w = <i32>load<i8>(src + <usize>r * cols + c);
          if (w < -1 || w > 1) { bad++; w = 0; }
          byte |= <u32>(w + 1) << (s << 1);
        }
        store<u8>(slice + j, byte);
      }
    }
  }
  return bad;
}

/** The weight at (row, col) of a packed matrix, for tests and the scalar twin. */
@inline function codeAt(w: usize, blocks: i32, r: i32, c: i32): i32 {
  const slice = w + ((<usize>((r >> 2) * blocks + (c >> 6))) << 6) + (<usize>(r & 3) << 4);
  const j = c & 15, s = (c & 63) >> 4;
  return <i32>((load<u8>(slice + j) >> (s << 1)) & 3);
}

export function ternaryAt(w: usize, rows: i32, cols: i32, r: i32, c: i32): i32 {
  return codeAt(w, blockCount(cols), r, c) - 1;
}

// Writes (dot - xSum) * scale for the (up to 4) live rows of a row group.
@inline function storeRows(y: usize, live: i32, a0: i32, a1: i32, a2: i32, a3: i32, xSum: i32, scale: f32): void {
  store<f32>(y, <f32>(a0 - xSum) * scale);
  if (live > 1) store<f32>(y, <f32>(a1 - xSum) * scale, 4);
  if (live > 2) store<f32>(y, <f32>(a2 - xSum) * scale, 8);
  if (live > 3) store<f32>(y, <f32>(a3 - xSum) * scale, 12);
}

@inline function hsum(v: v128): i32 {
  return i32x4.extract_lane(v, 0) + i32x4.extract_lane(v, 1) + i32x4.extract_lane(v, 2) + i32x4.extract_lane(v, 3);
}

// sum over 64 columns of codes(p) . x[0..64), accumulated into an i32x4 (relaxed SIMD).
@inline function dotSliceRelaxed(p: v128, m: v128, x0: v128, x1: v128, x2: v128, x3: v128, acc: v128): v128 {
  acc = i32x4.relaxed_dot_i8x16_i7x16_add_s(x0, v128.and(p, m), acc);
  acc = i32x4.relaxed_dot_i8x16_i7x16_add_s(x1, v128.and(i8x16.shr_u(p, 2), m), acc);
  acc = i32x4.relaxed_dot_i8x16_i7x16_add_s(x2, v128.and(i8x16.shr_u(p, 4), m), acc);
  return i32x4.relaxed_dot_i8x16_i7x16_add_s(x3, i8x16.shr_u(p, 6), acc);
}

// The same with strict SIMD, into i16 lanes: each call adds 8 products of |.| <= 256
// per lane, so the caller widens to i32 at least every 15 calls.
@inline function mulAdd16(x: v128, c: v128, acc: v128): v128 {
  return i16x8.add(acc, i16x8.add(i16x8.extmul_low_i8x16_s(x, c), i16x8.extmul_high_i8x16_s(x, c)));
}
@inline function dotSliceStrict(p: v128, m: v128, x0: v128, x1: v128, x2: v128, x3: v128, acc: v128): v128 {
  acc = mulAdd16(x0, v128.and(p, m), acc);
  acc = mulAdd16(x1, v128.and(i8x16.shr_u(p, 2), m), acc);
  acc = mulAdd16(x2, v128.and(i8x16.shr_u(p, 4), m), acc);
  return mulAdd16(x3, i8x16.shr_u(p, 6), acc);
}

const STRICT_FLUSH = 8; // blocks between i16 -> i32 widenings (limit 15)

// One row group (4 rows) against one int8 activation row.
@inline function rowGroup(wg: usize, blocks: i32, x: usize, xSum: i32, scale: f32, y: usize, live: i32): void {
  const m = v128.load(LOW2_MASK);
  let a0 = i32x4.splat(0), a1 = i32x4.splat(0), a2 = i32x4.splat(0), a3 = i32x4.splat(0);
  if (ASC_FEATURE_RELAXED_SIMD) {
    for (let b = 0; b < blocks; b++) {
      const xb = x + (<usize>b << 6), wb = wg + (<usize>b << 6);
      const x0 = v128.load(xb), x1 = v128.load(xb, 16), x2 = v128.load(xb, 32), x3 = v128.load(xb, 48);
      a0 = dotSliceRelaxed(v128.load(wb), m, x0, x1, x2, x3, a0);
      a1 = dotSliceRelaxed(v128.load(wb, 16), m, x0, x1, x2, x3, a1);
      a2 = dotSliceRelaxed(v128.load(wb, 32), m, x0, x1, x2, x3, a2);
      a3 = dotSliceRelaxed(v128.load(wb, 48), m, x0, x1, x2, x3, a3);
    }
  } else {
    for (let b0 = 0; b0 < blocks; b0 += STRICT_FLUSH) {
      const end = min(blocks, b0 + STRICT_FLUSH);
      let s0 = i16x8.splat(0), s1 = i16x8.splat(0), s2 = i16x8.splat(0), s3 = i16x8.splat(0);
      for (let b = b0; b < end; b++) {
        const xb = x + (<usize>b << 6), wb = wg + (<usize>b << 6);
        const x0 = v128.load(xb), x1 = v128.load(xb, 16), x2 = v128.load(xb, 32), x3 = v128.load(xb, 48);
        s0 = dotSliceStrict(v128.load(wb), m, x0, x1, x2, x3, s0);
        s1 = dotSliceStrict(v128.load(wb, 16), m, x0, x1, x2, x3, s1);
        s2 = dotSliceStrict(v128.load(wb, 32), m, x0, x1, x2, x3, s2);
        s3 = dotSliceStrict(v128.load(wb, 48), m, x0, x1, x2, x3, s3);
      }
      a0 = i32x4.add(a0, i32x4.extadd_pairwise_i16x8_s(s0));
      a1 = i32x4.add(a1, i32x4.extadd_pairwise_i16x8_s(s1));
      a2 = i32x4.add(a2, i32x4.extadd_pairwise_i16x8_s(s2));
      a3 = i32x4.add(a3, i32x4.extadd_pairwise_i16x8_s(s3));
    }
  }
  storeRows(y, live, hsum(a0), hsum(a1), hsum(a2), hsum(a3), xSum, scale);
}

/**
 * y[r] = (W[r] . x) * wScale * xScale for one token.
 * x: int8 [paddedCols] (zero padded); xSum: sum of x; y: f32 [rows].
 */
export function ternaryGemv(w: usize, rows: i32, cols: i32, x: usize, xSum: i32, wScale: f32, xScale: f32, y: usize): void {
  const blocks = blockCount(cols), scale = wScale * xScale;
  for (let g = 0; g < paddedRows(rows) >> 2; g++) {
    rowGroup(w + (<usize>(g * blocks) << 6), blocks, x, xSum, scale, f32At(y, g << 2), min(4, rows - (g << 2)));
  }
}

/**
 * Y[t, r] = (W[r] . X[t]) * wScale * xScales[t] for `tokens` tokens.
 * X: int8 [tokens, paddedCols]; xSums: i32 [tokens]; xScales: f32 [tokens]; Y: f32 [tokens, rows].
 * Row groups outside, tokens inside: a row group's weights stay in L1 for all tokens.
 */
export function ternaryGemm(w: usize, rows: i32, cols: i32, x: usize, xSums: usize, xScales: usize, tokens: i32, wScale: f32, y: usize): void {
  const blocks = blockCount(cols), stride = blocks << 6;
  for (let g = 0; g < paddedRows(rows) >> 2; g++) {
    const wg = w + (<usize>(g * blocks) << 6), live = min(4, rows - (g << 2));
    for (let t = 0; t < tokens; t++) {
      const scale = wScale * load<f32>(f32At(xScales, t));
      rowGroup(wg, blocks, x + <usize>t * stride, load<i32>(xSums + (<usize>t << 2)), scale, f32At(y, t * rows + (g << 2)), live);
    }
  }
}

/** Scalar twin of ternaryGemm: the same integers and the same final rounding. */
export function ternaryGemmScalar(w: usize, rows: i32, cols: i32, x: usize, xSums: usize, xScales: usize, tokens: i32, wScale: f32, y: usize): void {
  const blocks = blockCount(cols), stride = blocks << 6;
  for (let t = 0; t < tokens; t++) {
    const xt = x + <usize>t * stride, scale = wScale * load<f32>(f32At(xScales, t));
    for (let r = 0; r < rows; r++) {
      let acc = 0;
      for (let c = 0; c < cols; c++) acc += (codeAt(w, blocks, r, c) - 1) * <i32>load<i8>(xt + c);
      store<f32>(f32At(y, t * rows + r), <f32>acc * scale);
    }
  }
}

/**
 * Decodes 2-bit ternary codes 00 = 0, 01 = +1, 11 = -1 (bitllama "ak42") into int8.
 * msbFirst: the first value of a byte sits in bits 7-6 (else in bits 1-0).
 * Returns how many codes were the unused pattern 10.
 */
export function decodeSignMagnitude2(src: usize, count: i32, msbFirst: bool, dst: usize): i32 {
  let bad = 0;
  for (let i = 0; i < count; i++) {
    const shift = msbFirst ? 6 - ((i & 3) << 1) : (i & 3) << 1;
    const code = (<i32>load<u8>(src + (<usize>i >> 2)) >> shift) & 3;
    if (code == 2) bad++;
    store<i8>(dst + i, <i8>(code == 1 ? 1 : code == 3 ? -1 : 0));
  }
  return bad;
}
