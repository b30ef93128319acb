// A quantized KV cache (BitNet a4.8 and v2: 8-, 4- and 3-bit keys and values): each token's
// key and value rows are quantized per head to signed codes in -L..L, L = 2^(bits-1) - 1,
// with one absmax scale (max|x| / L), and packed so a head of n codes takes n * bits / 8
// bytes. The head is split into equal parts, and byte j of each plane holds the j-th code of
// every part, so one 16-byte load unpacks 16 consecutive codes of each part:
// - 8 bits: one code per byte;
// - 4 bits: two parts of n / 2; byte j holds code j + 8 (bits 0-3) and code n/2 + j + 8 (bits 4-7);
// - 3 bits: eight parts of m = n / 8, as u = code + 4 in 0..7; the low two bits of parts 0-3
//   go to bytes 0..m-1 (bits 0-1, 2-3, 4-5, 6-7), of parts 4-7 to bytes m..2m-1, and bit 2 of
//   part i to bit i of bytes 2m..3m-1 (eight codes in three bytes).
// Attention (attention.ts) unpacks one head row at a time into f32 and reads it as it reads
// an f32 cache.
import { f32At } from "./memory";

/** Bytes of one head's codes: headSize values at `bits` (8, 4 or 3; 3 needs headSize % 8 == 0, 4 an even headSize). */
export function kvHeadBytes(headSize: i32, bits: i32): i32 {
  return (headSize * bits) >> 3;
}

function packCode(head: usize, n: i32, bits: i32, i: i32, code: i32): void {
  if (bits == 8) {
    store<i8>(head + i, <i8> code);
  } else if (bits == 4) {
    const m = n >> 1, u = <u8> (code + 8);
    if (i < m) store<u8>(head + i, u);
    else store<u8>(head + i - m, load<u8>(head + i - m) | (u << 4));
  } else {
    const m = n >> 3, part = i / m, j = i - part * m, u = <u8> (code + 4);
    const low = head + (part < 4 ? j : m + j);
    store<u8>(low, load<u8>(low) | ((u & 3) << (<u8> ((part & 3) << 1))));
    store<u8>(head + 2 * m + j, load<u8>(head + 2 * m + j) | ((u >> 2) << <u8> part));
  }
}

/**
 * Quantizes rows [tokens, heads * headSize] into packed codes (rows of heads * kvHeadBytes
 * bytes from `codes`) and scales [tokens, heads]; returns how many head rows hold NaN or infinity.
 */
export function quantizeKV(src: usize, tokens: i32, heads: i32, headSize: i32, bits: i32, codes: usize, scales: usize): i32 {
  const levels = <f32> ((1 << (bits - 1)) - 1), headBytes = kvHeadBytes(headSize, bits);
  let bad = 0;
  for (let t = 0; t < tokens; t++) {
    for (let h = 0; h < heads; h++) {
      const x = f32At(src, (t * heads + h) * headSize), head = codes + <usize> (t * heads + h) * headBytes;
      let m: f32 = 0;
      for (let i = 0; i < headSize; i++) m = max(m, abs(load<f32>(f32At(x, i))));
      if (m != m || m == Infinity) bad++;
      const inv: f32 = m > 0 ? levels / m : 0;
      store<f32>(f32At(scales, t * heads + h), m / levels);
      memory.fill(head, 0, headBytes);
      for (let i = 0; i < headSize; i++) {
        const q = nearest(load<f32>(f32At(x, i)) * inv);
        packCode(head, headSize, bits, i, <i32> (q > levels ? levels : q < -levels ? -levels : q));
      }
    }
  }
  return bad;
}

// 16 int8 codes as f32 at dst[0..16).
function storeCodes(dst: usize, c: v128): void {
  const lo = i16x8.extend_low_i8x16_s(c), hi = i16x8.extend_high_i8x16_s(c);
  v128.store(dst, f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(lo)));
  v128.store(dst, f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(lo)), 16);
  v128.store(dst, f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(hi)), 32);
  v128.store(dst, f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(hi)), 48);
}

function codeAt(head: usize, n: i32, bits: i32, i: i32): i32 {
  if (bits == 8) return <i32> load<i8>(head + i);
  if (bits == 4) {
    const m = n >> 1;
    return i < m ? <i32> (load<u8>(head + i) & 15) - 8 : <i32> (load<u8>(head + i - m) >> 4) - 8;
  }
  const m = n >> 3, part = i / m, j = i - part * m;
  const low = (<i32> load<u8>(head + (part < 4 ? j : m + j)) >> ((part & 3) << 1)) & 3;
  const high = (<i32> load<u8>(head + 2 * m + j) >> part) & 1;
  return (low | (high << 2)) - 4;
}

/** Unpacks one head's n codes at `head` into f32 at dst (exact small integers, so SIMD and scalar agree). */
export function unpackKVHead(head: usize, n: i32, bits: i32, dst: usize, simd: bool): void {
  let j = 0;
  if (simd && bits == 8) {
    for (; j + 16 <= n; j += 16) storeCodes(f32At(dst, j), v128.load(head + j));
  } else if (simd && bits == 4) {
    const m = n >> 1, low4 = i8x16.splat(15), eight = i8x16.splat(8);
    for (; j + 16 <= m; j += 16) {
      const v = v128.load(head + j);
      storeCodes(f32At(dst, j), i8x16.sub(v128.and(v, low4), eight));
      storeCodes(f32At(dst, m + j), i8x16.sub(i8x16.shr_u(v, 4), eight));
    }
    if (j == m) j = n;
  } else if (simd && bits == 3) {
    const m = n >> 3, three = i8x16.splat(3), one = i8x16.splat(1), four = i8x16.splat(4);
    for (; j + 16 <= m; j += 16) {
      const l0 = v128.load(head + j), l1 = v128.load(head + m + j), h = v128.load(head + 2 * m + j);
      for (let part = 0; part < 8; part++) {
        const low = v128.and(i8x16.shr_u(part < 4 ? l0 : l1, (part & 3) << 1), three);
        const high = i8x16.shl(v128.and(i8x16.shr_u(h, part), one), 2);
        storeCodes(f32At(dst, part * m + j), i8x16.sub(v128.or(low, high), four));
      }
    }
    if (j == m) j = n;
  }
  if (j == n) return;
  for (let i = 0; i < n; i++) store<f32>(f32At(dst, i), <f32> codeAt(head, n, bits, i)); // parts too short for a vector
}
