// Hugging Face transformers BitNet packed weights: uint8 [rows / 4, cols]; weight row
// i * (rows / 4) + p sits in bits 2i..2i+1 of packed[p] as the code w + 1.
import { codeOf, invalidCount, resetInvalid, storeCode } from "./ternary-codes";

/** Decodes a [rows / 4, cols] packed tensor (rows a multiple of 4) to int8 [rows, cols];
 *  returns how many codes were invalid (3). */
export function decodeHfPacked(src: usize, rows: i32, cols: i32, dst: usize): i32 {
  const quarter = rows >> 2;
  resetInvalid();
  for (let r = 0; r < rows; r++) {
    const i = r / quarter, p = r % quarter;
    for (let c = 0; c < cols; c++) storeCode(dst + <usize>r * cols + c, (<u32>load<u8>(src + <usize>p * cols + c) >> (i << 1)) & 3);
  }
  return invalidCount();
}

/** The inverse of decodeHfPacked; returns how many values were not -1, 0 or 1. */
export function encodeHfPacked(src: usize, rows: i32, cols: i32, dst: usize): i32 {
  const quarter = rows >> 2;
  resetInvalid();
  for (let p = 0; p < quarter; p++) {
    for (let c = 0; c < cols; c++) {
      let byte: u32 = 0;
      for (let i = 0; i < 4; i++) byte |= codeOf(src + <usize>(i * quarter + p) * cols + c) << (i << 1);
      store<u8>(dst + <usize>p * cols + c, byte);
    }
  }
  return invalidCount();
}
