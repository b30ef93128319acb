// Decoding several sequences in one forward pass (Transformer.decode, model/batch.ts): every
// row equals the same step run alone, bit for bit, and so do the caches it writes (the next
// step agrees too), for f32 and quantized KV caches, ternary and fp32 models; sessions that
// generate at the same time are batched, and each gets what it gets alone.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { loadBitNet, readCheckpoint } from "../model/load.ts";
import { MAX_BLOCK, Transformer } from "../model/transformer.ts";
import { ShapeError } from "../core/errors.ts";
import { openFile } from "../runtime/files.ts";
import { offset } from "../runtime/ptr.ts";
import { bitsEqual, dataPath, kernels, throwsTyped, withData } from "./helpers.ts";

const test = suite("batch");

/** Prompts of different lengths, so the batched steps sit at different positions. */
const PROMPTS = [[1, 45, 46, 47, 48, 49], [1, 300], [1, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17], [1]];

for (
  const [file, variant] of [["models/bitllama-3M.bin", undefined], ["models/bitllama-3M.bin", "kv=4"], ["models/stories260K.bin", undefined], [
    "models/stories260K.bin",
    "kv=8",
  ]] as const
) {
  withData(test, `decode(): each row and the next step equal forward() alone, bit for bit (${file.split("/").pop()}${variant ? `, ${variant}` : ""})`, [file], async () => {
    const kx = await kernels("strict");
    const source = await openFile(dataPath(file));
    const t = await Transformer.load(kx, await readCheckpoint(source), { variant });
    const alone = PROMPTS.map(() => t.newCache(64)), together = PROMPTS.map(() => t.newCache(64));
    for (const [i, p] of PROMPTS.entries()) {
      t.forward(alone[i], p, 0);
      t.forward(together[i], p, 0);
    }
    for (let round = 0; round < 3; round++) {
      const steps = PROMPTS.map((p, i) => ({ cache: together[i], token: 20 + 13 * i + round, pos: p.length + round }));
      const rows = t.decode(steps);
      const batched = steps.map((_, i) => t.logitsAt(offset(rows, i * t.config.vocabSize * 4)));
      steps.forEach((s, i) => {
        const single = t.logitsAt(t.forward(alone[i], [s.token], s.pos));
        assert.ok(bitsEqual(batched[i], single), `round ${round}, sequence ${i}`);
      });
    }
    throwsTyped(() => t.decode([]), ShapeError, /decode: 0 steps, expected 1\.\.32/);
    throwsTyped(() => t.decode(Array.from({ length: MAX_BLOCK + 1 }, () => ({ cache: alone[0], token: 1, pos: 0 }))), ShapeError, /33 steps/);
    throwsTyped(() => t.decode([{ cache: alone[0], token: 1, pos: 64 }]), ShapeError, /positions 64\.\.64 exceed the context of 64 tokens/);
    for (const c of [...alone, ...together]) c.dispose();
    kx.dispose();
    await source.close();
  });
}

withData(test, "sessions generating at once decode as one batch and each gets what it gets alone", ["models/bitllama-3M.bin", "models/tok512.bin"], async () => {
  const model = await loadBitNet(dataPath("models/bitllama-3M.bin"), { simd: "strict" });
  const prompts = ["Once upon a time", "The cat", "Tom and Sue went to", "A"];
  const options = (i: number) => ({ temperature: 0.8, seed: 3 + i, maxTokens: 24 });
  const sizes: number[] = [];
  const decode = Transformer.prototype.decode;
  Transformer.prototype.decode = function (this: Transformer, steps) {
    sizes.push(steps.length);
    return decode.call(this, steps);
  };
  try {
    const alone: number[][] = [];
    for (const [i, p] of prompts.entries()) alone.push((await model.complete(p, options(i))).tokens);
    assert.equal(sizes, [], "a lone generation steps at once, without a batch");
    const together = await Promise.all(prompts.map((p, i) => model.complete(p, options(i))));
    together.forEach((r, i) => assert.equal(r.tokens, alone[i], `prompt ${i}`));
  } finally {
    Transformer.prototype.decode = decode;
    model.dispose();
  }
  assert.ok(sizes.length > 0 && Math.max(...sizes) === prompts.length, `batch sizes ${sizes.join(",")}`);
});

test.run();
