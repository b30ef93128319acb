// Stored ternary formats: every decoder gives the fixture's exact ternary matrix, every
// encoder reproduces the fixture bytes written by the format's own reference code
// (ggml, bitnet.cpp, transformers), and decode(encode(w)) = w on random matrices.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { readBitllama } from "../formats/bitllama.ts";
import { isTernary, scaleCount, TENSOR_TYPES, tensorBytes, type TensorType, type TensorTypeName } from "../formats/tensor-types.ts";
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

withData(test, "I2_S: decodes to the ternary fixture and its f32 scale; encoding reproduces the bytes", [`${FX}.i2_s`, `${FX}.ternary_i8`], (i2s, ternary) =>
  scoped((kx) => {
    assert.is(tensorBytes(TENSOR_TYPES.I2_S, N), i2s.length);
    const src = kx.put(i2s), dst = kx.allocBytes(N), scale = kx.allocF32(1);
    assert.is(k.decodeI2S(src, N, dst, scale), 0);
    assert.equal(kx.u8(dst, N), ternary);
    assert.is(kx.f32(scale, 1)[0], SCALE);
    const out = kx.allocBytes(i2s.length);
    assert.is(k.encodeI2S(kx.put(ternary), N, kx.put(Float32Array.of(SCALE)), out), 0);
    assert.equal(kx.u8(out, i2s.length), i2s);
  }));

for (const [type, file] of [[TENSOR_TYPES.TQ2_0, "tq2_0"], [TENSOR_TYPES.TQ1_0, "tq1_0"]] as const) {
  withData(
    test,
    `${type.name}: decodes to the ternary fixture and f16 block scales; encoding reproduces the bytes`,
    [`${FX}.${file}`, `${FX}.ternary_i8`],
    (bytes, ternary) =>
      scoped((kx) => {
        const blocks = N / type.blockValues, { blockBytes } = type;
        assert.is(bytes.length, tensorBytes(type, N));
        const src = kx.put(bytes), dst = kx.allocBytes(N), scales = kx.allocF32(blocks);
        assert.is(k[type.ternary.decode](src, N, dst, scales), 0);
        assert.equal(kx.u8(dst, N), ternary);
        const view = new DataView(bytes.buffer, bytes.byteOffset);
        kx.f32(scales, blocks).forEach((d, b) => {
          if (d !== Math.fround(half(view.getUint16(b * blockBytes + blockBytes - 2, true)))) assert.unreachable(`block ${b}`);
        });
        assert.ok(Math.abs(kx.f32(scales, 1)[0] - SCALE) <= SCALE * 2 ** -11, "d is the tensor scale in f16");
        const out = kx.allocBytes(bytes.length);
        assert.is(k[type.ternary.encode](kx.put(ternary), N, kx.put(new Float32Array(blocks).fill(SCALE)), out), 0);
        assert.equal(kx.u8(out, bytes.length), bytes);
      }),
  );
}

withData(test, "HF packed: decodes to the ternary fixture; encoding reproduces the bytes", [`${FX}.hf_bitnet_u8`, `${FX}.ternary_i8`], (packed, ternary) =>
  scoped((kx) => {
    const dst = kx.allocBytes(N), unused = kx.allocF32(1);
    assert.is(packed.length, tensorBytes(TENSOR_TYPES.HF_PACKED, N));
    assert.is(k.decodeHfPacked(kx.put(packed), N, dst, unused), 0);
    assert.equal(kx.u8(dst, N), ternary);
    const out = kx.allocBytes(packed.length);
    assert.is(k.encodeHfPacked(kx.put(ternary), N, unused, out), 0);
    assert.equal(kx.u8(out, packed.length), packed);
  }));

withData(test, "bitllama sign-magnitude: re-encoding layer 0 wq gives the model file's bytes, in both bit orders", [
  "models/bitllama-3M.bin",
  "models/bitllama-3M-lsb.bin",
  `${FX}.ternary_i8`,
], async (msb, lsb, ternary) => {
  const layers = [await readBitllama(memoryFile(msb, "3M"), { msbFirst: true }), await readBitllama(memoryFile(lsb, "3M"), { msbFirst: false })];
  scoped((kx) => {
    for (const [i, [bytes, type]] of ([[msb, TENSOR_TYPES.SM2], [lsb, TENSOR_TYPES.SM2_LSB]] as const).entries()) {
      const { data, encoding } = layers[i].layers[0].q;
      assert.is(TENSOR_TYPES[encoding as "SM2" | "SM2_LSB"], type);
      const out = kx.allocBytes(data.length);
      assert.is(k[type.ternary.encode](kx.put(ternary), N, kx.allocF32(1), out), 0);
      assert.equal(kx.u8(out, data.length), bytes.subarray(data.offset, data.offset + data.length));
    }
  });
});

const TERNARY = (Object.keys(TENSOR_TYPES) as TensorTypeName[]).filter(isTernary).map((name) => TENSOR_TYPES[name] as TensorType);

test("random matrices round-trip through every ternary type of the table, all-zero blocks included", () =>
  scoped((kx) => {
    const next = rng(11);
    const n = 8 * 512;
    const w = randomTernary(n, next);
    w.fill(0, 0, 256); // one all-zero block: TQ formats store d = 0 there
    const src = kx.put(w), dst = kx.allocBytes(n), buf = kx.allocBytes(2 * n);
    assert.equal(TERNARY.map((t) => t.name), ["I2_S", "TQ1_0", "TQ2_0", "HF packed", "SM2", "SM2 (first code in bits 1-0)"]);
    for (const type of TERNARY) {
      const count = scaleCount(type, n), scales = kx.put(new Float32Array(count).fill(0.5)), back = kx.allocF32(count);
      assert.is(k[type.ternary!.encode](src, n, scales, buf), 0, type.name);
      assert.is(k[type.ternary!.decode](buf, n, dst, back), 0, type.name);
      assert.equal(kx.i8(dst, n), w, type.name);
      if (type.ternary!.scales === "block") assert.equal(Array.from(kx.f32(back, 2)), [0, 0.5], `${type.name}: all-zero block: d = 0`);
      if (type.ternary!.scales === "tensor") assert.is(kx.f32(back, 1)[0], 0.5, type.name);
    }
  }));

test("invalid codes and out-of-range values are counted, never silently decoded", () =>
  scoped((kx) => {
    const dst = kx.allocBytes(256), scales = kx.allocF32(1);
    const i2s = kx.put(new Uint8Array(32 + 32).fill(0xff)); // every code 3
    assert.is(k.decodeI2S(i2s, 128, dst, scales), 128);
    const tq2 = kx.put(new Uint8Array(66).fill(0xff));
    assert.is(k.decodeTQ2(tq2, 256, dst, scales), 256);
    const hf = kx.put(new Uint8Array(8).fill(0b11_01_11_01));
    assert.is(k.decodeHfPacked(hf, 32, dst, scales), 16);
    const sm = kx.put(new Uint8Array(4).fill(0b10_00_10_00));
    assert.is(k.decodeSM2(sm, 16, dst, scales), 8);
    assert.is(k.decodeSM2Lsb(sm, 16, dst, scales), 8);
    const bad = kx.put(Int8Array.from({ length: 256 }, (_, i) => (i % 64 === 0 ? 5 : 0)));
    const out = kx.allocBytes(1024), ones = kx.put(new Float32Array(1).fill(1));
    for (const type of TERNARY) assert.is(k[type.ternary!.encode](bad, 256, ones, out), 4, type.name);
  }));

test.run();
