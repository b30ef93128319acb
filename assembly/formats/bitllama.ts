// bitllama2.c "ak42" matrices: row-major 2-bit sign-magnitude codes 00 = 0, 01 = +1,
// 11 = -1 (10 unused), four per byte; msbFirst: the first value in bits 7-6, else in 1-0.

function shiftOf(i: i32, msbFirst: bool): i32 {
  return msbFirst ? 6 - ((i & 3) << 1) : (i & 3) << 1;
}

function decode(src: usize, count: i32, dst: usize, msbFirst: bool): i32 {
  let bad = 0;
  for (let i = 0; i < count; i++) {
    const code = (<u32> load<u8>(src + (<usize> i >> 2)) >> shiftOf(i, msbFirst)) & 3;
    if (code == 2) bad++;
    store<i8>(dst + i, <i8> (code == 1 ? 1 : code == 3 ? -1 : 0));
  }
  return bad;
}

function encode(src: usize, count: i32, dst: usize, msbFirst: bool): i32 {
  let bad = 0;
  for (let i = 0; i < count; i += 4) {
    let byte: u32 = 0;
    for (let k = 0; k < 4; k++) {
      const w = <i32> load<i8>(src + i + k);
      if (w < -1 || w > 1) bad++;
      byte |= <u32> (w == 1 ? 1 : w == -1 ? 3 : 0) << shiftOf(k, msbFirst);
    }
    store<u8>(dst + (<usize> i >> 2), byte);
  }
  return bad;
}

// The codec pairs, one per bit order (the scale lives in the file's header, so `scales` is unused).

/** Decodes `count` values, first code in bits 7-6, to int8 codes; returns how many codes were the unused pattern 10. */
export function decodeSM2(src: usize, count: i32, codes: usize, _scales: usize): i32 {
  return decode(src, count, codes, true);
}

/** decodeSM2 with the first code in bits 1-0. */
export function decodeSM2Lsb(src: usize, count: i32, codes: usize, _scales: usize): i32 {
  return decode(src, count, codes, false);
}

/** The inverse of decodeSM2 (count a multiple of 4); returns how many values were not -1, 0 or 1 (written as 0). */
export function encodeSM2(codes: usize, count: i32, _scales: usize, dst: usize): i32 {
  return encode(codes, count, dst, true);
}

/** The inverse of decodeSM2Lsb. */
export function encodeSM2Lsb(codes: usize, count: i32, _scales: usize, dst: usize): i32 {
  return encode(codes, count, dst, false);
}
