// Hugging Face transformers BitNet packed weights: uint8 [rows / 4, cols]; weight row
// i * (rows / 4) + p sits in bits 2i..2i+1 of packed[p] as the code w + 1. In row-major
// order that is: byte j holds values j + i * count / 4, so the count alone fixes the layout
// (rows a multiple of 4). The scale (1 / weight_scale) is a tensor of its own: `scales` is unused.
import { codeOf, invalidCount, resetInvalid, storeCode } from "./ternary-codes";

/** Decodes `count` packed values (a multiple of 4) to int8 codes; returns how many codes were invalid (3). */
export function decodeHfPacked(src: usize, count: i32, codes: usize, _scales: usize): i32 {
  const quarter = <usize> (count >> 2);
  resetInvalid();
  for (let i = 0; i < 4; i++) {
    const plane = codes + <usize> i * quarter;
    for (let j: usize = 0; j < quarter; j++) storeCode(plane + j, (<u32> load<u8>(src + j) >> (i << 1)) & 3);
  }
  return invalidCount();
}

/** The inverse of decodeHfPacked; returns how many values were not -1, 0 or 1. */
export function encodeHfPacked(codes: usize, count: i32, _scales: usize, dst: usize): i32 {
  const quarter = <usize> (count >> 2);
  resetInvalid();
  for (let j: usize = 0; j < quarter; j++) {
    let byte: u32 = 0;
    for (let i = 0; i < 4; i++) byte |= codeOf(codes + <usize> i * quarter + j) << (i << 1);
    store<u8>(dst + j, byte);
  }
  return invalidCount();
}
