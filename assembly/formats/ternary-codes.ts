// Shared by the 2-bit formats: a ternary value w is stored as the code w + 1 (0, 1, 2).
// Decoders and encoders count what is out of range here, and return the count.

let invalid = 0;

/** Starts counting invalid codes or values for one decode / encode call. */
@inline export function resetInvalid(): void {
  invalid = 0;
}

/** How many invalid codes or values were seen since resetInvalid(). */
@inline export function invalidCount(): i32 {
  return invalid;
}

/** Stores the value of a 2-bit code (3 is invalid: stored as 0 and counted). */
@inline export function storeCode(dst: usize, code: u32): void {
  if (code == 3) invalid++;
  store<i8>(dst, code == 3 ? 0 : <i8>(<i32>code - 1));
}

/** The code of an int8 ternary value (a value outside -1..1 is stored as 0 and counted). */
@inline export function codeOf(src: usize): u32 {
  const w = <i32>load<i8>(src);
  if (w < -1 || w > 1) {
    invalid++;
    return 1;
  }
  return <u32>(w + 1);
}
