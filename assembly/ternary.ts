// Ternary weights x int8 activations.
//
// Kernel layout ("4 rows per byte", built at load time by `packTernary`):
//   rows are padded to a multiple of 4 and columns to a multiple of 64;
//   for each group of 4 rows, for each 64-column block, 64 bytes: byte k holds column
//   block*64 + k, with the code (w + 1, in 0..2) of row 4g + r in bits 2r..2r+1.
// Why: one 16-byte load covers 16 columns of 4 rows, all against the same 16-byte
// activation vector, so each activation load serves four rows and each row needs one
// accumulator; codes are extracted by masking in place (see the kernels below), and the
// weights of a row group stream linearly. Codes are unsigned so relaxed SIMD's i8 x i7 dot
// can take them; the dot then counts every activation once too many, which subtracting
// sum(x) undoes. Activations are int8, zero padded to the padded width.
import { f32At, I16_CUMULATIVE_MASKS, LOW2_MASK, MID2_MASK, scratch, SCRATCH_BYTES } from "./memory";

function paddedRows(rows: i32): i32 {
  return (rows + 3) & ~3;
}
function blockCount(cols: i32): i32 {
  return (cols + 63) >> 6;
}

/** Bytes of a packed [rows, cols] matrix. */
export function ternaryPackedBytes(rows: i32, cols: i32): i32 {
  return paddedRows(rows) * blockCount(cols) * 16;
}

/** Widest input the GEMV / GEMM kernels take (the strict build's activation scratch). */
export function ternaryMaxCols(): i32 {
  return SCRATCH_BYTES >> 1; // 65536: the strict kernel's i32 sums hold to that width
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
  const one = i8x16.splat(1), two = i8x16.splat(2);
  for (let g = 0; g < paddedRows(rows) >> 2; g++) {
    let c = 0;
    // Whole row groups, 16 columns at a time: code r lands in bits 2r..2r+1 of each byte
    // (codes are below 4, so 16-bit shifts never carry into the next byte).
    if ((g << 2) + 3 < rows) {
      const row = src + <usize> (g << 2) * cols;
      for (; c + 16 <= cols; c += 16) {
        const c0 = i8x16.add(v128.load(row + c), one), c1 = i8x16.add(v128.load(row + cols + c), one);
        const c2 = i8x16.add(v128.load(row + 2 * cols + c), one), c3 = i8x16.add(v128.load(row + 3 * cols + c), one);
        const out = of4(c0, i16x8.shl(c1, 2), i16x8.shl(c2, 4), i16x8.shl(c3, 6));
        bad += <i32> popcnt(i8x16.bitmask(of4(i8x16.gt_u(c0, two), i8x16.gt_u(c1, two), i8x16.gt_u(c2, two), i8x16.gt_u(c3, two))));
        v128.store(dst + (<usize> (g * blocks) << 6) + c, out);
      }
    }
    for (; c < blocks << 6; c++) {
      let byte: u32 = 0;
      for (let i = 0; i < 4; i++) {
        const r = (g << 2) + i;
        let w: i32 = 0;
        if (r < rows && c < cols) w = <i32> load<i8>(src + <usize> r * cols + c);
        if (w < -1 || w > 1) {
          bad++;
          w = 0;
        }
        byte |= <u32> (w + 1) << (i << 1);
      }
      store<u8>(dst + (<usize> (g * blocks) << 6) + c, byte);
    }
  }
  return bad;
}

function of4(a: v128, b: v128, c: v128, d: v128): v128 {
  return v128.or(v128.or(a, b), v128.or(c, d));
}

/** The weight at (row, col) of a packed matrix, for tests and the scalar twin. */
function codeAt(w: usize, blocks: i32, r: i32, c: i32): i32 {
  return <i32> ((load<u8>(w + (<usize> ((r >> 2) * blocks) << 6) + c) >> ((r & 3) << 1)) & 3);
}

/** The weight (-1, 0 or 1) at (r, c) of a packed [rows, cols] matrix (for tests). */
export function ternaryAt(w: usize, _rows: i32, cols: i32, r: i32, c: i32): i32 {
  return codeAt(w, blockCount(cols), r, c) - 1;
}

// Writes (first group) or adds (dots - xSum) * scale for the (up to 4) live rows of a row
// group; lane i of dots is row i's integer code . x.
function storeRows(y: usize, live: i32, dots: v128, xSum: i32, scale: v128, first: bool): void {
  const v = f32x4.mul(f32x4.convert_i32x4_s(i32x4.sub(dots, i32x4.splat(xSum))), scale);
  if (live == 4) {
    v128.store(y, first ? v : f32x4.add(v128.load(y), v));
    return;
  }
  storeLane(y, f32x4.extract_lane(v, 0), first);
  if (live > 1) storeLane(y + 4, f32x4.extract_lane(v, 1), first);
  if (live > 2) storeLane(y + 8, f32x4.extract_lane(v, 2), first);
}

function storeLane(at: usize, v: f32, first: bool): void {
  store<f32>(at, first ? v : load<f32>(at) + v);
}

function hsum(v: v128): i32 {
  return i32x4.extract_lane(v, 0) + i32x4.extract_lane(v, 1) + i32x4.extract_lane(v, 2) + i32x4.extract_lane(v, 3);
}

function lanes(a: i32, b: i32, c: i32, d: i32): v128 {
  return i32x4.replace_lane(i32x4.replace_lane(i32x4.replace_lane(i32x4.splat(a), 1, b), 2, c), 3, d);
}

// Relaxed SIMD: codes . x with the i8 x u7 dot-add (one VNNI instruction where the CPU
// has it), so unpacking the codes is what costs. Masking in place (p & 3, p & 12, and the
// same after one i16 shift by 4) takes five operations per 16-byte load; rows 1 and 3 come
// out multiplied by 4, and their sums are divided by 4 (exactly) at the end.
// Each 32 columns start from zero and are added to the accumulators afterwards, so the
// loop-carried chains are adds, not dot-adds (whose latency would bound the loop).
function dotRows(p: v128, x: v128, m3: v128, m12: v128, d: v128, row: i32): v128 {
  const fields = row < 2 ? p : i16x8.shr_u(p, 4);
  return i32x4.relaxed_dot_i8x16_i7x16_add_s(x, v128.and(fields, (row & 1) == 0 ? m3 : m12), d);
}

// The four rows' code . x over columns [c0, c1) (multiples of 32) of a row group.
function rowDotsRelaxed(wg: usize, x: usize, c0: i32, c1: i32): v128 {
  const m3 = v128.load(LOW2_MASK), m12 = v128.load(MID2_MASK);
  const wEnd = wg + <usize> c1;
  let a0 = i32x4.splat(0), a1 = i32x4.splat(0), a2 = i32x4.splat(0), a3 = i32x4.splat(0);
  let xb = x + <usize> c0;
  for (let wb = wg + <usize> c0; wb < wEnd; wb += 32, xb += 32) {
    const p = v128.load(wb), q = v128.load(wb, 16), x0 = v128.load(xb), x1 = v128.load(xb, 16);
    const z = i32x4.splat(0);
    a0 = i32x4.add(a0, dotRows(q, x1, m3, m12, dotRows(p, x0, m3, m12, z, 0), 0));
    a1 = i32x4.add(a1, dotRows(q, x1, m3, m12, dotRows(p, x0, m3, m12, z, 1), 1));
    a2 = i32x4.add(a2, dotRows(q, x1, m3, m12, dotRows(p, x0, m3, m12, z, 2), 2));
    a3 = i32x4.add(a3, dotRows(q, x1, m3, m12, dotRows(p, x0, m3, m12, z, 3), 3));
  }
  return lanes(hsum(a0), hsum(a1) >> 2, hsum(a2), hsum(a3) >> 2);
}

// Strict SIMD has no 8-bit dot product; its widest multiply-add is i32x4.dot_i16x8_s
// (pmaddwd). Seen as i16 lanes, a 16-byte load holds even columns in its low bytes and
// odd columns in its high bytes, so the activations are first re-laid out as i16
// (splitActivations): per 16 columns, the 8 even then the 8 odd ones. Cumulative masks
// (3, 15, 63, 255) give S_k = sum over rows r <= k of 4^r * codes_r, one pmaddwd pair each
// (the odd bytes' S_3 needs no mask at all); row r is (S_r - S_{r-1}) / 4^r, exactly.
// |S_k products| <= 170 * 128 per column, so i32 sums hold for 2^16 columns (ternaryMaxCols).
function splitActivations(x: usize, cols: i32, dst: usize): void {
  for (let c = 0; c < cols; c += 2) {
    const out = dst + (<usize> (c >> 4) << 5) + (<usize> ((c & 15) >> 1) << 1);
    store<i16>(out, <i16> load<i8>(x + c));
    store<i16>(out, <i16> load<i8>(x + c + 1), 16);
  }
}

function dotPair(even: v128, odd: v128, xe: v128, xo: v128, acc: v128): v128 {
  return i32x4.add(acc, i32x4.add(i32x4.dot_i16x8_s(even, xe), i32x4.dot_i16x8_s(odd, xo)));
}

function rowDotsStrict(wg: usize, xs: usize, c0: i32, c1: i32): v128 {
  const m0 = v128.load(I16_CUMULATIVE_MASKS), m1 = v128.load(I16_CUMULATIVE_MASKS, 16);
  const m2 = v128.load(I16_CUMULATIVE_MASKS, 32), m3 = v128.load(I16_CUMULATIVE_MASKS, 48);
  let s0 = i32x4.splat(0), s1 = i32x4.splat(0), s2 = i32x4.splat(0), s3 = i32x4.splat(0);
  const wEnd = wg + <usize> c1;
  let xb = xs + (<usize> c0 << 1);
  for (let wb = wg + <usize> c0; wb < wEnd; wb += 16, xb += 32) {
    const p = v128.load(wb), r = i16x8.shr_u(p, 8), xe = v128.load(xb), xo = v128.load(xb, 16);
    s0 = dotPair(v128.and(p, m0), v128.and(r, m0), xe, xo, s0);
    s1 = dotPair(v128.and(p, m1), v128.and(r, m1), xe, xo, s1);
    s2 = dotPair(v128.and(p, m2), v128.and(r, m2), xe, xo, s2);
    s3 = dotPair(v128.and(p, m3), r, xe, xo, s3);
  }
  const t0 = hsum(s0), t1 = hsum(s1), t2 = hsum(s2), t3 = hsum(s3);
  return lanes(t0, (t1 - t0) >> 2, (t2 - t1) >> 4, (t3 - t2) >> 6);
}

// One row group (4 rows from r0) against one token: the rows' scaled dots, group by group.
// x: int8 activations; xs: the same split for the strict kernel (unused by the relaxed
// one); xSums: i32 [groups], the sum of x over each group.
function rowGroup(
  wg: usize,
  stride: i32,
  x: usize,
  xs: usize,
  xSums: usize,
  y: usize,
  r0: i32,
  rows: i32,
  groups: i32,
  groupCols: i32,
  scales: usize,
  wScale: f32,
  xScale: f32,
): void {
  const live = min(4, rows - r0);
  for (let g = 0; g < groups; g++) {
    const c0 = g * groupCols, c1 = g == groups - 1 ? stride : c0 + groupCols; // the last group runs over the zero padding
    const dots = ASC_FEATURE_RELAXED_SIMD ? rowDotsRelaxed(wg, x, c0, c1) : rowDotsStrict(wg, xs, c0, c1);
    const scale = scales == 0 ? f32x4.splat(xScale * wScale) : rowScales(scales, r0, rows, g, groups, xScale);
    storeRows(y, live, dots, load<i32>(xSums + (<usize> g << 2)), scale, g == 0);
  }
}

// xScale times the group scales of rows r0..r0+3 (the last live row's repeated past the end).
function rowScales(scales: usize, r0: i32, rows: i32, g: i32, groups: i32, xScale: f32): v128 {
  let v = f32x4.splat(groupScale(scales, r0, rows, g, groups));
  v = f32x4.replace_lane(v, 1, groupScale(scales, r0 + 1, rows, g, groups));
  v = f32x4.replace_lane(v, 2, groupScale(scales, r0 + 2, rows, g, groups));
  v = f32x4.replace_lane(v, 3, groupScale(scales, r0 + 3, rows, g, groups));
  return f32x4.mul(f32x4.splat(xScale), v);
}

function groupScale(scales: usize, r: i32, rows: i32, g: i32, groups: i32): f32 {
  return load<f32>(scales + (<usize> (min(r, rows - 1) * groups + g) << 2));
}

// Groups of `groupCols` columns and their scales: the common body of the GEMV and GEMMs.
// Row groups outside, tokens inside: a row group's weights stay in L1 for all tokens (the
// strict build takes the tokens in chunks whose split activations fit its scratch). With a
// list (i32 row-group indices, `listed` of them), only those row groups are computed.
function gemm(
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
  list: usize = 0,
  listed: i32 = 0,
): void {
  const blocks = blockCount(cols), stride = blocks << 6, count = list ? listed : paddedRows(rows) >> 2;
  const chunk = ASC_FEATURE_RELAXED_SIMD ? tokens : max(1, SCRATCH_BYTES / (stride << 1));
  for (let t0 = 0; t0 < tokens; t0 += chunk) {
    const t1 = min(tokens, t0 + chunk);
    if (!ASC_FEATURE_RELAXED_SIMD) {
      for (let t = t0; t < t1; t++) splitActivations(x + <usize> t * stride, stride, scratch + (<usize> (t - t0) * stride << 1));
    }
    for (let i = 0; i < count; i++) {
      const g = list ? load<i32>(list + (<usize> i << 2)) : i, wg = w + (<usize> (g * blocks) << 6);
      for (let t = t0; t < t1; t++) {
        const xs = scratch + (<usize> (t - t0) * stride << 1), xScale = load<f32>(f32At(xScales, t));
        rowGroup(
          wg,
          stride,
          x + <usize> t * stride,
          xs,
          xSums + (<usize> (t * groups) << 2),
          f32At(y, t * rows + (g << 2)),
          g << 2,
          rows,
          groups,
          groupCols,
          scales,
          wScale,
          xScale,
        );
      }
    }
  }
}

/**
 * Y[t, r] = (W[r] . X[t]) * wScale * xScales[t] for `tokens` tokens.
 * X: int8 [tokens, paddedCols]; xSums: i32 [tokens]; xScales: f32 [tokens]; Y: f32 [tokens, rows].
 */
export function ternaryGemm(w: usize, rows: i32, cols: i32, x: usize, xSums: usize, xScales: usize, tokens: i32, wScale: f32, y: usize): void {
  gemm(w, rows, cols, x, xSums, xScales, tokens, 1, cols, 0, wScale, y);
}

/**
 * Per-group weight scales: Y[t, r] = sum over groups g, in order, of
 * (W[r, g] . X[t, g]) * (xScales[t] * scales[r, g]), for groups of `groupCols` columns
 * (dividing cols; a multiple of 32 unless it is cols itself: one scale per output channel).
 * xGroupSums: i32 [tokens, groups], the sums of X over each group (sumGroups); scales: f32 [rows, groups].
 */
export function ternaryGemmGrouped(w: usize, rows: i32, cols: i32, x: usize, xGroupSums: usize, xScales: usize, tokens: i32, groupCols: i32, scales: usize, y: usize): void {
  gemm(w, rows, cols, x, xGroupSums, xScales, tokens, cols / groupCols, groupCols, scales, 1, y);
}

/**
 * As ternaryGemm for the row groups (rows 4g..4g+3) listed in `list` (i32, `count` of them,
 * ascending) only; the other rows of Y are 0. The up projection of a ReLU^2 FFN needs only
 * the rows whose gate is non-zero (BitNet a4.8).
 */
export function ternaryGemmRowGroups(w: usize, rows: i32, cols: i32, x: usize, xSums: usize, xScales: usize, tokens: i32, wScale: f32, list: usize, count: i32, y: usize): void {
  memory.fill(y, 0, <usize> (tokens * rows) << 2);
  gemm(w, rows, cols, x, xSums, xScales, tokens, 1, cols, 0, wScale, y, list, count);
}

/** Scalar twin of ternaryGemmRowGroups. */
export function ternaryGemmRowGroupsScalar(
  w: usize,
  rows: i32,
  cols: i32,
  x: usize,
  _xSums: usize,
  xScales: usize,
  tokens: i32,
  wScale: f32,
  list: usize,
  count: i32,
  y: usize,
): void {
  memory.fill(y, 0, <usize> (tokens * rows) << 2);
  gemmScalar(w, rows, cols, x, xScales, tokens, cols, 0, wScale, y, list, count);
}

// The scalar twin: the same integers, scales and order of additions (over the listed row groups only, with a list).
function gemmScalar(
  w: usize,
  rows: i32,
  cols: i32,
  x: usize,
  xScales: usize,
  tokens: i32,
  groupCols: i32,
  scales: usize,
  wScale: f32,
  y: usize,
  list: usize = 0,
  listed: i32 = 0,
): void {
  const blocks = blockCount(cols), stride = blocks << 6, groups = cols / groupCols;
  for (let t = 0; t < tokens; t++) {
    const xt = x + <usize> t * stride, xScale = load<f32>(f32At(xScales, t));
    for (let r = 0; r < rows; r++) {
      if (list && !listedGroup(list, listed, r >> 2)) continue;
      let out: f32 = 0;
      for (let g = 0; g < groups; g++) {
        let acc = 0;
        for (let c = g * groupCols; c < (g + 1) * groupCols; c++) acc += (codeAt(w, blocks, r, c) - 1) * <i32> load<i8>(xt + c);
        const v = <f32> acc * (xScale * (scales == 0 ? wScale : load<f32>(f32At(scales, r * groups + g))));
        out = g == 0 ? v : out + v;
      }
      store<f32>(f32At(y, t * rows + r), out);
    }
  }
}

/** Scalar twin of ternaryGemm (it needs no column sums: it adds the signed weights directly). */
export function ternaryGemmScalar(w: usize, rows: i32, cols: i32, x: usize, _xSums: usize, xScales: usize, tokens: i32, wScale: f32, y: usize): void {
  gemmScalar(w, rows, cols, x, xScales, tokens, cols, 0, wScale, y);
}

/** Scalar twin of ternaryGemmGrouped. */
export function ternaryGemmGroupedScalar(w: usize, rows: i32, cols: i32, x: usize, _xGroupSums: usize, xScales: usize, tokens: i32, groupCols: i32, scales: usize, y: usize): void {
  gemmScalar(w, rows, cols, x, xScales, tokens, groupCols, scales, 1, y);
}

/** Sums of int8 X [tokens, stride] over each group of `groupCols` of its `cols` columns: out i32 [tokens, cols / groupCols]. */
export function sumGroups(x: usize, stride: i32, cols: i32, tokens: i32, groupCols: i32, out: usize): void {
  const groups = cols / groupCols;
  for (let t = 0; t < tokens; t++) {
    for (let g = 0; g < groups; g++) {
      let sum = 0;
      for (let c = g * groupCols; c < (g + 1) * groupCols; c++) sum += <i32> load<i8>(x + <usize> t * stride + c);
      store<i32>(out + (<usize> (t * groups + g) << 2), sum);
    }
  }
}

function listedGroup(list: usize, count: i32, g: i32): bool {
  for (let i = 0; i < count; i++) if (load<i32>(list + (<usize> i << 2)) == g) return true;
  return false;
}

/** The row groups (4 rows each) of x [tokens, rows] holding a non-zero value in any token, ascending into list (i32); returns their count. */
export function nonZeroRowGroups(x: usize, rows: i32, tokens: i32, list: usize): i32 {
  let count = 0;
  for (let g = 0; g < paddedRows(rows) >> 2; g++) {
    let any = false;
    for (let t = 0; t < tokens && !any; t++) {
      for (let r = g << 2; r < min(rows, (g << 2) + 4); r++) if (load<f32>(f32At(x, t * rows + r)) != 0) any = true;
    }
    if (!any) continue;
    store<i32>(list + (<usize> count << 2), g);
    count++;
  }
  return count;
}
