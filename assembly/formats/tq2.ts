// ggml TQ2_0: 256-value blocks of 66 bytes, qs[64] then an f16 scale d; qs[h*32 + m]
// holds value h*128 + m + 32n in bits 2n..2n+1 as the code w + 1; value = (code - 1) * d.
import { f16ToF32, f32ToF16 } from "./fp16";
import { codeOf, decodePlanes16, invalidCount, resetInvalid } from "./ternary-codes";

export const TQ2_BLOCK_BYTES = 66;

/** Decodes `count` values (a multiple of 256) to int8 codes, each block's d to scales[block] (f32). */
export function decodeTQ2(src: usize, count: i32, codes: usize, scales: usize): i32 {
  let bad = 0;
  for (let b = 0; b < count >> 8; b++) {
    const block = src + <usize> b * TQ2_BLOCK_BYTES, out = codes + (<usize> b << 8);
    for (let q = 0; q < 4; q++) bad += decodePlanes16(v128.load(block + (q << 4)), out + ((q >> 1) << 7) + ((q & 1) << 4), false);
    store<f32>(scales + (<usize> b << 2), f16ToF32(load<u16>(block + 64)));
  }
  return bad;
}

/** Encodes int8 ternary codes with block b's scale scales[b], as ggml's reference quantizer
 *  writes them from values in {-d, 0, d} (an all-zero block gets d = 0); returns how many
 *  values were not -1, 0 or 1. */
export function encodeTQ2(codes: usize, count: i32, scales: usize, dst: usize): i32 {
  resetInvalid();
  for (let b = 0; b < count >> 8; b++) {
    const block = dst + <usize> b * TQ2_BLOCK_BYTES, vals = codes + (<usize> b << 8);
    let any = false;
    for (let j = 0; j < 64; j++) {
      let byte: u32 = 0;
      for (let n = 0; n < 4; n++) {
        const at = vals + ((j >> 5) << 7) + (j & 31) + (n << 5);
        if (load<i8>(at) != 0) any = true;
        byte |= codeOf(at) << (n << 1);
      }
      store<u8>(block + j, byte);
    }
    store<u16>(block + 64, any ? f32ToF16(load<f32>(scales + (<usize> b << 2))) : 0);
  }
  return invalidCount();
}
