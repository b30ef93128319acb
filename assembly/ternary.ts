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
import { I16_FIELD_MASKS, LOW2_MASK, MID2_MASK, SCRATCH, SCRATCH_BYTES, f32At } from "./memory";

@inline function paddedRows(rows: i32): i32 { return (rows + 3) & ~3; }
@inline function blockCount(cols: i32): i32 { return (cols + 63) >> 6; }

/** Bytes of a packed [rows, cols] matrix. */
export function ternaryPackedBytes(rows: i32, cols: i32): i32 {
  return paddedRows(rows) * blockCount(cols) * 16;
}

/** Widest input the GEMV / GEMM kernels take (the strict build's activation scratch). */
export function ternaryMaxCols(): i32 {
  return SCRATCH_BYTES >> 1; // 65536 (i32 sums of the strict kernel hold to 2^17)
}

/**
 * Packs an int8 ternary matrix [rows, cols] (values -1, 0, 1) into the kernel layout.
 * Returns how many values were outside {-1, 0, 1} (then the result is not usable),
 * or -1 when cols exceeds ternaryMaxCols().
 */
export function packTernary(src: usize, rows: i32, cols: i32, dst: usize): i32 {
  if (cols > ternaryMaxCols()) return -1;
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

// Relaxed SIMD: codes . x with the i8 x u7 dot-add (one VNNI instruction where the CPU
// has it), so unpacking the codes is what costs. Masking in place instead of shifting
// leaves the codes of sub-blocks 1 and 3 multiplied by 4: they go to a second
// accumulator that is divided by 4 (exactly) at the end. Five unpack operations per
// 64 weights instead of seven.
// Each pair of dots starts from zero and is added to the accumulator afterwards, so the
// loop-carried chain is one add, not two dot-adds (whose latency would bound the loop).
@inline function dotEvenSubBlocks(p: v128, m3: v128, x0: v128, x2: v128, acc: v128): v128 {
  const d = i32x4.relaxed_dot_i8x16_i7x16_add_s(x0, v128.and(p, m3), i32x4.splat(0));
  return i32x4.add(acc, i32x4.relaxed_dot_i8x16_i7x16_add_s(x2, v128.and(i16x8.shr_u(p, 4), m3), d));
}
@inline function dotOddSubBlocksTimes4(p: v128, m12: v128, x1: v128, x3: v128, acc: v128): v128 {
  const d = i32x4.relaxed_dot_i8x16_i7x16_add_s(x1, v128.and(p, m12), i32x4.splat(0));
  return i32x4.add(acc, i32x4.relaxed_dot_i8x16_i7x16_add_s(x3, v128.and(i16x8.shr_u(p, 4), m12), d));
}

@inline function rowGroupRelaxed(wg: usize, blocks: i32, x: usize, xSum: i32, scale: f32, y: usize, live: i32): void {
  const m3 = v128.load(LOW2_MASK), m12 = v128.load(MID2_MASK);
  const wEnd = wg + (<usize>blocks << 6);
  let a0 = i32x4.splat(0), a1 = i32x4.splat(0), a2 = i32x4.splat(0), a3 = i32x4.splat(0);
  // Two rows at a time (two accumulators each fill the registers); the second pair
  // re-reads the row group's weights, by then in L1.
  for (let pair = 0; pair < 2; pair++) {
    let e0 = i32x4.splat(0), e1 = i32x4.splat(0), o0 = i32x4.splat(0), o1 = i32x4.splat(0);
    let xb = x;
    for (let wb = wg + (<usize>pair << 5); wb < wEnd; wb += 64, xb += 64) {
      const x0 = v128.load(xb), x1 = v128.load(xb, 16), x2 = v128.load(xb, 32), x3 = v128.load(xb, 48);
      const p0 = v128.load(wb), p1 = v128.load(wb, 16);
      e0 = dotEvenSubBlocks(p0, m3, x0, x2, e0);
      o0 = dotOddSubBlocksTimes4(p0, m12, x1, x3, o0);
      e1 = dotEvenSubBlocks(p1, m3, x0, x2, e1);
      o1 = dotOddSubBlocksTimes4(p1, m12, x1, x3, o1);
    }
    const r0 = i32x4.add(e0, i32x4.shr_s(o0, 2)), r1 = i32x4.add(e1, i32x4.shr_s(o1, 2));
    if (pair == 0) { a0 = r0; a1 = r1; } else { a2 = r0; a3 = r1; }
  }
  storeRows(y, live, hsum(a0), hsum(a1), hsum(a2), hsum(a3), xSum, scale);
}

// Strict SIMD has no 8-bit dot product; its widest multiply-add is i32x4.dot_i16x8_s
// (pmaddwd). Seen as i16 lanes, a slice's low bytes hold the codes of even columns and
// its high bytes those of odd columns, so the activations are first re-laid out as i16
// (splitActivations): per 64-column block, for each sub-block s, 8 even then 8 odd
// columns. Fields are masked in place, which multiplies sub-block s's codes by 4^s; its
// activations are stored multiplied by 4^(3-s), so every product carries the same
// factor 64, removed once per row. |product| <= 64 * 2 * 128, so i32 sums hold for
// 2^17 columns: ternaryMaxCols() is below that.
@inline function splitActivations(x: usize, blocks: i32, dst: usize): void {
  for (let b = 0; b < blocks; b++) {
    for (let s = 0; s < 4; s++) {
      const src = x + (<usize>b << 6) + (<usize>s << 4), out = dst + (<usize>b << 7) + (<usize>s << 5);
      const shift = (3 - s) << 1;
      for (let l = 0; l < 8; l++) {
        store<i16>(out + (<usize>l << 1), <i16>(<i32>load<i8>(src + (l << 1)) << shift));
        store<i16>(out + 16 + (<usize>l << 1), <i16>(<i32>load<i8>(src + (l << 1) + 1) << shift));
      }
    }
  }
}

@inline function dotField(p: v128, r: v128, m: v128, xs: usize): v128 {
  return i32x4.add(i32x4.dot_i16x8_s(v128.and(p, m), v128.load(xs)), i32x4.dot_i16x8_s(v128.and(r, m), v128.load(xs, 16)));
}

// 64 x codes . x of one slice, added to acc (summed as a tree: short dependency chains).
@inline function dotSliceStrict(p: v128, f0: v128, f1: v128, f2: v128, f3: v128, xs: usize, acc: v128): v128 {
  const r = i16x8.shr_u(p, 8);
  const lo = i32x4.add(dotField(p, r, f0, xs), dotField(p, r, f1, xs + 32));
  const hi = i32x4.add(dotField(p, r, f2, xs + 64), dotField(p, r, f3, xs + 96));
  return i32x4.add(acc, i32x4.add(lo, hi));
}

@inline function rowGroupStrict(wg: usize, blocks: i32, xs: usize, xSum: i32, scale: f32, y: usize, live: i32): void {
  const f0 = v128.load(I16_FIELD_MASKS), f1 = v128.load(I16_FIELD_MASKS, 16);
  const f2 = v128.load(I16_FIELD_MASKS, 32), f3 = v128.load(I16_FIELD_MASKS, 48);
  let a0 = i32x4.splat(0), a1 = i32x4.splat(0), a2 = i32x4.splat(0), a3 = i32x4.splat(0);
  const wEnd = wg + (<usize>blocks << 6);
  let xb = xs;
  for (let wb = wg; wb < wEnd; wb += 64, xb += 128) {
    a0 = dotSliceStrict(v128.load(wb), f0, f1, f2, f3, xb, a0);
    a1 = dotSliceStrict(v128.load(wb, 16), f0, f1, f2, f3, xb, a1);
    a2 = dotSliceStrict(v128.load(wb, 32), f0, f1, f2, f3, xb, a2);
    a3 = dotSliceStrict(v128.load(wb, 48), f0, f1, f2, f3, xb, a3);
  }
  storeRows(y, live, hsum(a0) >> 6, hsum(a1) >> 6, hsum(a2) >> 6, hsum(a3) >> 6, xSum, scale);
}

// One row group (4 rows) against one token. x: int8 activations; xs: the same split
// for the strict kernel (unused by the relaxed one).
@inline function rowGroup(wg: usize, blocks: i32, x: usize, xs: usize, xSum: i32, scale: f32, y: usize, live: i32): void {
  if (ASC_FEATURE_RELAXED_SIMD) rowGroupRelaxed(wg, blocks, x, xSum, scale, y, live);
  else rowGroupStrict(wg, blocks, xs, xSum, scale, y, live);
}

/**
 * y[r] = (W[r] . x) * wScale * xScale for one token.
 * x: int8 [paddedCols] (zero padded); xSum: sum of x; y: f32 [rows].
 */
export function ternaryGemv(w: usize, rows: i32, cols: i32, x: usize, xSum: i32, wScale: f32, xScale: f32, y: usize): void {
  const blocks = blockCount(cols), scale = wScale * xScale;
  if (!ASC_FEATURE_RELAXED_SIMD) splitActivations(x, blocks, SCRATCH);
  for (let g = 0; g < paddedRows(rows) >> 2; g++) {
    rowGroup(w + (<usize>(g * blocks) << 6), blocks, x, SCRATCH, xSum, scale, f32At(y, g << 2), min(4, rows - (g << 2)));
  }
}

/**
 * Y[t, r] = (W[r] . X[t]) * wScale * xScales[t] for `tokens` tokens.
 * X: int8 [tokens, paddedCols]; xSums: i32 [tokens]; xScales: f32 [tokens]; Y: f32 [tokens, rows].
 * Row groups outside, tokens inside: a row group's weights stay in L1 for all tokens
 * (the strict build takes the tokens in chunks whose split activations fit its scratch).
 */
export function ternaryGemm(w: usize, rows: i32, cols: i32, x: usize, xSums: usize, xScales: usize, tokens: i32, wScale: f32, y: usize): void {
  const blocks = blockCount(cols), stride = blocks << 6;
  const chunk = ASC_FEATURE_RELAXED_SIMD ? tokens : max(1, SCRATCH_BYTES / (stride << 1));
  for (let t0 = 0; t0 < tokens; t0 += chunk) {
    const t1 = min(tokens, t0 + chunk);
    if (!ASC_FEATURE_RELAXED_SIMD) {
      for (let t = t0; t < t1; t++) splitActivations(x + <usize>t * stride, blocks, SCRATCH + (<usize>(t - t0) * stride << 1));
    }
    for (let g = 0; g < paddedRows(rows) >> 2; g++) {
      const wg = w + (<usize>(g * blocks) << 6), live = min(4, rows - (g << 2));
      for (let t = t0; t < t1; t++) {
        const scale = wScale * load<f32>(f32At(xScales, t));
        const xs = SCRATCH + (<usize>(t - t0) * stride << 1);
        rowGroup(wg, blocks, x + <usize>t * stride, xs, load<i32>(xSums + (<usize>t << 2)), scale, f32At(y, t * rows + (g << 2)), live);
      }
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
