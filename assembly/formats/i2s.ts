// Microsoft bitnet.cpp I2_S (x86 layout): the whole tensor as one run of 128-value blocks
// of 32 bytes; byte j of a block holds values j, j+32, j+64, j+96 in bits 7-6, 5-4, 3-2,
// 1-0 as codes w + 1; then one f32 scale (a multiplier), padded to 32 bytes.
import { codeOf, decodePlanes16, invalidCount, resetInvalid } from "./ternary-codes";

/** Decodes `count` values to int8 codes and the tensor's scale to scales[0]; returns the number of invalid codes (3).
 *  16 bytes at a time: the values at j, j+32, j+64, j+96 of a block are one shift apart. */
export function decodeI2S(src: usize, count: i32, codes: usize, scales: usize): i32 {
  let bad = 0;
  for (let b = 0; b < count >> 7; b++) {
    for (let h = 0; h < 2; h++) bad += decodePlanes16(v128.load(src + (<usize> b << 5) + (h << 4)), codes + (<usize> b << 7) + (h << 4), true);
  }
  store<f32>(scales, load<f32>(src + (count >> 2)));
  return bad;
}

/** Encodes `count` int8 ternary codes and the scale scales[0] (the inverse of decodeI2S);
 *  returns how many values were not -1, 0 or 1. */
export function encodeI2S(codes: usize, count: i32, scales: usize, dst: usize): i32 {
  resetInvalid();
  for (let b = 0; b < count >> 7; b++) {
    for (let j = 0; j < 32; j++) {
      let byte: u32 = 0;
      for (let s = 0; s < 4; s++) byte |= codeOf(codes + (b << 7) + j + (s << 5)) << (6 - (s << 1));
      store<u8>(dst + (<usize> b << 5) + j, byte);
    }
  }
  const tail = dst + (count >> 2);
  store<f32>(tail, load<f32>(scales));
  memory.fill(tail + 4, 0, 28);
  return invalidCount();
}
