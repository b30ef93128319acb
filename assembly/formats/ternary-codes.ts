// Shared by the 2-bit formats: a ternary value w is stored as the code w + 1 (0, 1, 2).
// Decoders and encoders count what is out of range here, and return the count.

let invalid = 0;

/** Starts counting invalid codes or values for one decode / encode call. */
export function resetInvalid(): void {
  invalid = 0;
}

/** How many invalid codes or values were seen since resetInvalid(). */
export function invalidCount(): i32 {
  return invalid;
}

/** Stores the value of a 2-bit code (3 is invalid: stored as 0 and counted). */
export function storeCode(dst: usize, code: u32): void {
  if (code == 3) invalid++;
  store<i8>(dst, code == 3 ? 0 : <i8> (<i32> code - 1));
}

/** The code of an int8 ternary value (a value outside -1..1 is stored as 0 and counted). */
export function codeOf(src: usize): u32 {
  const w = <i32> load<i8>(src);
  if (w < -1 || w > 1) {
    invalid++;
    return 1;
  }
  return <u32> (w + 1);
}

/**
 * Decodes 16 bytes that each hold 4 codes of values 32 apart (I2_S, TQ2_0): plane s goes
 * to dst + 32 s, taken from bits 6-2s (`highFirst`, I2_S) or 2s (TQ2_0). Invalid codes are
 * stored as 0, as storeCode does; returns how many there were.
 */
export function decodePlanes16(bytes: v128, dst: usize, highFirst: bool): i32 {
  const three = i8x16.splat(3), one = i8x16.splat(1);
  let bad = 0;
  for (let s = 0; s < 4; s++) {
    const code = v128.and(i8x16.shr_u(bytes, highFirst ? 6 - (s << 1) : s << 1), three);
    const invalid = i8x16.eq(code, three);
    v128.store(dst + (s << 5), v128.andnot(i8x16.sub(code, one), invalid));
    bad += <i32> popcnt(i8x16.bitmask(invalid));
  }
  return bad;
}
