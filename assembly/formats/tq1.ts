// ggml TQ1_0: 256-value blocks of 54 bytes: qs[48], qh[4], then an f16 scale d. Values are
// base-3 digits t = w + 1, five per byte (four in qh), first digit most significant, and
// the byte stores ceil(q * 256 / 243) so that digit n is ((byte * 3^n) mod 256) * 3 >> 8.
//   qs[m]      (m < 32): values m + 32n          (n = 0..4), values 0..159
//   qs[32 + m] (m < 16): values 160 + m + 16n    (n = 0..4), values 160..239
//   qh[j]      (j < 4):  values 240 + j + 4n     (n = 0..3), values 240..255
import { f16ToF32, f32ToF16 } from "./fp16";
import { codeOf, invalidCount, resetInvalid } from "./ternary-codes";

export const TQ1_BLOCK_BYTES = 54;
const POW3: usize = memory.data<u8>([1, 3, 9, 27, 81, 243]);

// Index (within the block) of digit n of byte k (k < 52: qs then qh).
function valueIndex(k: i32, n: i32): i32 {
  if (k < 32) return k + (n << 5);
  if (k < 48) return 160 + (k - 32) + (n << 4);
  return 240 + (k - 48) + (n << 2);
}

function digitsIn(k: i32): i32 {
  return k < 48 ? 5 : 4;
}

/** Decodes `count` values (a multiple of 256) to int8 codes, each block's d to scales[block].
 *  Every byte decodes to digits 0..2, so TQ1_0 has no invalid codes (returns 0). */
export function decodeTQ1(src: usize, count: i32, codes: usize, scales: usize): i32 {
  for (let b = 0; b < count >> 8; b++) {
    const block = src + <usize> b * TQ1_BLOCK_BYTES, out = codes + (<usize> b << 8);
    for (let k = 0; k < 52; k++) {
      const byte = <u32> load<u8>(block + k);
      for (let n = 0; n < digitsIn(k); n++) {
        const digit = (((byte * <u32> load<u8>(POW3 + n)) & 0xff) * 3) >> 8;
        store<i8>(out + valueIndex(k, n), <i8> (<i32> digit - 1));
      }
    }
    store<f32>(scales + (<usize> b << 2), f16ToF32(load<u16>(block + 52)));
  }
  return 0;
}

/** Encodes int8 ternary codes with block b's scale scales[b], byte for byte as ggml's reference
 *  quantizer writes them from {-d, 0, d}; returns how many values were not -1, 0 or 1. */
export function encodeTQ1(codes: usize, count: i32, scales: usize, dst: usize): i32 {
  resetInvalid();
  for (let b = 0; b < count >> 8; b++) {
    const block = dst + <usize> b * TQ1_BLOCK_BYTES, vals = codes + (<usize> b << 8);
    let any = false;
    for (let k = 0; k < 52; k++) {
      let q: u32 = 0;
      for (let n = 0; n < digitsIn(k); n++) {
        const at = vals + valueIndex(k, n);
        if (load<i8>(at) != 0) any = true;
        q = q * 3 + codeOf(at);
      }
      if (k >= 48) q *= 3; // four digits: the first one still most significant of five
      store<u8>(block + k, (q * 256 + 242) / 243);
    }
    store<u16>(block + 52, any ? f32ToF16(load<f32>(scales + (<usize> b << 2))) : 0);
  }
  return invalidCount();
}
