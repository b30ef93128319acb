// The shared fixtures, made by the formats' own reference code: one real ternary matrix
// (bitllama-3M layer 0 wq) decoded from the model file, through BitLinear and f32 GEMV.
import * as assert from "uvu/assert";
import { readBitllama } from "../formats/bitllama.ts";
import { memoryFile } from "../runtime/files.ts";
import { ActivationQuantizer } from "../quant/activations.ts";
import { F32Linear } from "../quant/linear.ts";
import { BitLinear } from "../quant/bitlinear.ts";
import { asF32, kernels, LEVELS, levelSuite, maxRelativeError, withData } from "./helpers.ts";

const FX = "fixtures/bit3M_L0_wq";

for (const level of LEVELS) {
  const test = levelSuite("fixtures", level);
  if (!test) continue;
  const kx = await kernels(level);

  withData(test, "bitllama-3M layer 0 wq decodes to the fixture's ternary matrix and scale", ["models/bitllama-3M.bin", `${FX}.ternary_i8`], async (model, ternary) => {
    const wq = (await readBitllama(memoryFile(model, "bitllama-3M.bin"))).layers[0].q;
    assert.is(wq.encoding, "SM2");
    if (wq.encoding !== "SM2") return;
    assert.equal([wq.rows, wq.cols], [256, 256]);
    assert.is(wq.scale, Math.fround(2.117886543273926));
    const mark = kx.arena.mark();
    const out = kx.allocBytes(256 * 256);
    assert.is(kx.k.decodeSM2(kx.put(model.subarray(wq.data.offset, wq.data.offset + wq.data.length)), 65536, out, kx.allocF32(1)), 0);
    assert.equal(kx.i8(out, 65536), new Int8Array(ternary.slice().buffer));
    kx.arena.release(mark);
  });

  withData(
    test,
    "BitLinear (int8 absmax x packed ternary) gives y_bitlinear_absmax_int8",
    [`${FX}.ternary_i8`, "fixtures/x256.f32", "fixtures/y_bitlinear_absmax_int8.f32"],
    async (ternary, x, y) => {
      const mark = kx.arena.mark();
      const linear = await BitLinear.fromInt8(
        kx,
        new ActivationQuantizer(kx, 1, 256),
        256,
        256,
        false,
        "fixture",
        (p) => Promise.resolve((kx.write(p, ternary), 2.117886543273926)),
      );
      const out = kx.allocF32(256);
      linear.apply(linear.prepare(kx.put(x), 1), out);
      assert.ok(maxRelativeError(kx.f32(out, 256), asF32(y)) < 1e-5);
      kx.arena.release(mark);
    },
  );

  withData(test, "f32 GEMV of the fp32 matrix gives y_fp32", [`${FX}.f32`, "fixtures/x256.f32", "fixtures/y_fp32.f32"], (w, x, y) => {
    const mark = kx.arena.mark();
    const linear = new F32Linear(kx, kx.put(w), 256, 256);
    const out = kx.allocF32(256);
    linear.apply(linear.prepare(kx.put(x), 1), out);
    assert.ok(maxRelativeError(kx.f32(out, 256), asF32(y)) < 1e-5);
    kx.arena.release(mark);
  });

  test.run();
}
