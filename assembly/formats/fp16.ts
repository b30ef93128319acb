// IEEE half precision <-> f32, round to nearest even (as F16C and ggml's GGML_FP32_TO_FP16).

/** One IEEE half (its bits) as f32: exact for every half, subnormals and NaN payloads included. */
export function f16ToF32(h: u32): f32 {
  const sign = (h & 0x8000) << 16, exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
  if (exp == 0) {
    const v = <f32> mant * <f32> 5.960464477539063e-8; // 2^-24: zero and subnormals
    return sign ? -v : v;
  }
  if (exp == 31) return reinterpret<f32>(sign | 0x7f800000 | (mant << 13));
  return reinterpret<f32>(sign | ((exp + 112) << 23) | (mant << 13));
}

/** One f32 as IEEE half bits, rounded to nearest even (overflow to infinity, NaN kept NaN). */
export function f32ToF16(f: f32): u32 {
  const x = reinterpret<u32>(f);
  const sign = (x >> 16) & 0x8000;
  let mant = x & 0x7fffff;
  const e = <i32> ((x >> 23) & 0xff) - 112; // biased for half
  if (e == 143) return sign | 0x7c00 | (mant ? 0x200 : 0); // inf, NaN
  if (e >= 31) return sign | 0x7c00; // overflow
  if (e <= 0) {
    if (e < -10) return sign; // underflow to zero
    mant |= 0x800000;
    const shift = <u32> (14 - e);
    let h = mant >> shift;
    const rem = mant & ((1 << shift) - 1), half = <u32> 1 << (shift - 1);
    if (rem > half || (rem == half && (h & 1))) h++;
    return sign | h;
  }
  let h = (<u32> e << 10) | (mant >> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem == 0x1000 && (h & 1))) h++; // may carry into the exponent: correct
  return sign | h;
}

/** Converts n f16 values at src to f32 at dst. */
export function convertF16ToF32(src: usize, n: i32, dst: usize): void {
  for (let i = 0; i < n; i++) store<f32>(dst + (<usize> i << 2), f16ToF32(load<u16>(src + (<usize> i << 1))));
}

/** Converts n bfloat16 values at src to f32 at dst (bf16 is the top half of an f32). */
export function convertBF16ToF32(src: usize, n: i32, dst: usize): void {
  for (let i = 0; i < n; i++) store<u32>(dst + (<usize> i << 2), <u32> load<u16>(src + (<usize> i << 1)) << 16);
}
