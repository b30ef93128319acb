// Stored ternary formats: every decoder gives the fixture's exact ternary matrix, every
// encoder reproduces the fixture bytes written by the format's own reference code
// (ggml, bitnet.cpp, transformers), and decode(encode(w)) = w on random matrices.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { readBitllama } from "../formats/bitllama.ts";
import { memoryFile } from "../runtime/files.ts";
import type { Kernels } from "../runtime/kernels.ts";
import { kernels, randomTernary, rng, withData } from "./helpers.ts";

const test = suite("formats");
const kx = await kernels("strict");
const k = kx.k;
const FX = "fixtures/bit3M_L0_wq";
const N = 256 * 256, SCALE = Math.fround(2.117886543273926);

/** Runs fn with scratch memory that is released afterwards. */
function scoped<T>(fn: (kx: Kernels) => T): T {
  const mark = kx.arena.mark();
  try {
    return fn(kx);
  } finally {
    kx.arena.release(mark);
  }
}

/** IEEE half to number, written out from the definition (an independent reference). */
function half(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1, exp = (bits >> 10) & 0x1f, mant = bits & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 31) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

test("f16: every half value survives f16 -> f32 -> f16, and rounding is to nearest even", () => {
  for (let h = 0; h < 0x10000; h++) {
    const f = k.f16ToF32(h);
    const want = half(h);
    if (Number.isNaN(want)) {
      if (!Number.isNaN(f)) assert.unreachable(`0x${h.toString(16)}`);
      continue;
    }
    if (f !== want || k.f32ToF16(f) !== h) assert.unreachable(`0x${h.toString(16)}: ${f} vs ${want}`);
  }
  assert.is(k.f32ToF16(1 + 2 ** -11), 0x3c00, "a tie rounds to the even mantissa");
  assert.is(k.f32ToF16(1 + 3 * 2 ** -11), 0x3c02, "the other tie rounds up");
  assert.is(k.f32ToF16(65520), 0x7c00, "past the largest half: infinity");
  assert.is(k.f32ToF16(2 ** -25), 0, "half the smallest subnormal ties to zero");
  assert.is(k.f32ToF16(-(2 ** -24)), 0x8001);
});

withData(test, "I2_S: decodes to the ternary fixture and its f32 scale; encoding reproduces the bytes", [`${FX}.i2_s`, `${FX}.ternary_i8`], (i2s, ternary) => scoped((kx) => {
  assert.is(k.i2sBytes(N), i2s.length);
  const src = kx.put(i2s), dst = kx.allocBytes(N), scale = kx.allocF32(1);
  assert.is(k.decodeI2S(src, N, dst, scale), 0);
  assert.equal(kx.u8(dst, N), ternary);
  assert.is(kx.f32(scale, 1)[0], SCALE);
  const out = kx.allocBytes(i2s.length);
  assert.is(k.encodeI2S(kx.put(ternary), N, SCALE, out), 0);
  assert.equal(kx.u8(out, i2s.length), i2s);
}));

for (const [name, file, blockBytes, decode, encode] of [
  ["TQ2_0", "tq2_0", 66, k.decodeTQ2, k.encodeTQ2],
  ["TQ1_0", "tq1_0", 54, k.decodeTQ1, k.encodeTQ1],
] as const) {
  withData(test, `${name}: decodes to the ternary fixture and f16 block scales; encoding reproduces the bytes`, [`${FX}.${file}`, `${FX}.ternary_i8`], (bytes, ternary) => scoped((kx) => {
    const blocks = N / 256;
    assert.is(bytes.length, blocks * blockBytes);
    const src = kx.put(bytes), dst = kx.allocBytes(N), scales = kx.allocF32(blocks);
    assert.is(decode(src, N, dst, scales), 0);
    assert.equal(kx.u8(dst, N), ternary);
    const view = new DataView(bytes.buffer, bytes.byteOffset);
    kx.f32(scales, blocks).forEach((d, b) => {
      if (d !== Math.fround(half(view.getUint16(b * blockBytes + blockBytes - 2, true)))) assert.unreachable(`block ${b}`);
    });
    assert.ok(Math.abs(kx.f32(scales, 1)[0] - SCALE) <= SCALE * 2 ** -11, "d is the tensor scale in f16");
    const out = kx.allocBytes(bytes.length);
    assert.is(encode(kx.put(ternary), N, SCALE, out), 0);
    assert.equal(kx.u8(out, bytes.length), bytes);
  }));
}

withData(test, "HF packed: decodes to the ternary fixture; encoding reproduces the bytes", [`${FX}.hf_bitnet_u8`, `${FX}.ternary_i8`], (packed, ternary) => scoped((kx) => {
  const dst = kx.allocBytes(N);
  assert.is(k.decodeHfPacked(kx.put(packed), 256, 256, dst), 0);
  assert.equal(kx.u8(dst, N), ternary);
  const out = kx.allocBytes(packed.length);
  assert.is(k.encodeHfPacked(kx.put(ternary), 256, 256, out), 0);
  assert.equal(kx.u8(out, packed.length), packed);
}));

withData(test, "bitllama sign-magnitude: re-encoding layer 0 wq gives the model file's bytes, in both bit orders", ["models/bitllama-3M.bin", "models/bitllama-3M-lsb.bin", `${FX}.ternary_i8`], async (msb, lsb, ternary) => {
  const layers = [await readBitllama(memoryFile(msb, "3M"), { msbFirst: true }), await readBitllama(memoryFile(lsb, "3M"), { msbFirst: false })];
  scoped((kx) => {
  for (const [i, [bytes, msbFirst]] of ([[msb, true], [lsb, false]] as const).entries()) {
    const { data } = layers[i].layers[0].q;
    const out = kx.allocBytes(data.length);
    assert.is(k.encodeSignMagnitude2(kx.put(ternary), N, msbFirst, out), 0);
    assert.equal(kx.u8(out, data.length), bytes.subarray(data.offset, data.offset + data.length));
  }
  });
});

test("random matrices round-trip through every format, all-zero blocks included", () => scoped((kx) => {
  const next = rng(11);
  const rows = 8, cols = 512, n = rows * cols;
  const w = randomTernary(n, next);
  w.fill(0, 0, 256); // one all-zero block: TQ formats store d = 0 there
  const src = kx.put(w), dst = kx.allocBytes(n), scales = kx.allocF32(n / 256), buf = kx.allocBytes(2 * n);
  const check = (what: string) => assert.equal(kx.i8(dst, n), w, what);
  k.encodeI2S(src, n, 0.5, buf); k.decodeI2S(buf, n, dst, scales); check("I2_S");
  k.encodeTQ2(src, n, 0.5, buf); k.decodeTQ2(buf, n, dst, scales); check("TQ2_0");
  assert.is(kx.f32(scales, 2)[0], 0, "all-zero block: d = 0");
  assert.is(kx.f32(scales, 2)[1], 0.5);
  k.encodeTQ1(src, n, 0.5, buf); k.decodeTQ1(buf, n, dst, scales); check("TQ1_0");
  k.encodeHfPacked(src, rows, cols, buf); k.decodeHfPacked(buf, rows, cols, dst); check("HF packed");
  k.encodeSignMagnitude2(src, n, true, buf); k.decodeSignMagnitude2(buf, n, true, dst); check("sign-magnitude");
}));

test("invalid codes and out-of-range values are counted, never silently decoded", () => scoped((kx) => {
  const dst = kx.allocBytes(256), scales = kx.allocF32(1);
  const i2s = kx.put(new Uint8Array(32 + 32).fill(0xff)); // every code 3
  assert.is(k.decodeI2S(i2s, 128, dst, scales), 128);
  const tq2 = kx.put(new Uint8Array(66).fill(0xff));
  assert.is(k.decodeTQ2(tq2, 256, dst, scales), 256);
  const hf = kx.put(new Uint8Array(16).fill(0b11_01_11_01));
  assert.is(k.decodeHfPacked(hf, 8, 4, dst), 16);
  const sm = kx.put(new Uint8Array(4).fill(0b10_00_10_00));
  assert.is(k.decodeSignMagnitude2(sm, 16, true, dst), 8);
  const bad = kx.put(Int8Array.from({ length: 256 }, (_, i) => (i % 64 === 0 ? 5 : 0)));
  const out = kx.allocBytes(1024);
  assert.is(k.encodeTQ2(bad, 256, 1, out), 4);
  assert.is(k.encodeTQ1(bad, 256, 1, out), 4);
  assert.is(k.encodeI2S(bad, 256, 1, out), 4);
  assert.is(k.encodeHfPacked(bad, 4, 64, out), 4);
  assert.is(k.encodeSignMagnitude2(bad, 256, true, out), 4);
}));

test.run();
