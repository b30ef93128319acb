// Sampling and streaming generation: llama2.c's random stream, seeds, top-k / top-p,
// maxTokens, AbortSignal.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { loadBitNet } from "../model/load.ts";
import type { BitNetModel } from "../model/model.ts";
import { Sampler, Xorshift64Star } from "../model/sampler.ts";
import { dataPath, withData } from "./helpers.ts";

const test = suite("generate");

test("xorshift64* gives llama2.c's random_u32 / random_f32 stream (values printed by the C code)", () => {
  const a = new Xorshift64Star(42);
  assert.equal([a.nextU32(), a.nextU32(), a.nextU32(), a.nextU32()], [1456360119, 3359763283, 3393612768, 4054632243]);
  const b = new Xorshift64Star(1234567);
  assert.equal([b.nextF32(), b.nextF32(), b.nextF32()].map((v) => Math.fround(v)), [0.824366093, 0.640456557, 0.940166175].map(Math.fround));
});

test("sampler: greedy is argmax; top-k 1 is greedy; top-p keeps the nucleus; same seed, same choices", () => {
  const logits = Float32Array.from([0.1, 2.5, -1, 2.4, 0]);
  assert.is(new Sampler({ temperature: 0 }).sample(logits), 1);
  const topK1 = new Sampler({ temperature: 1, topK: 1, seed: 3 });
  for (let i = 0; i < 20; i++) assert.is(topK1.sample(logits), 1);
  // With topP 0.5 the nucleus is {1, 3} (p = 0.47 + 0.43 > 0.5): nothing else may come out.
  const nucleus = new Sampler({ temperature: 1, topP: 0.5, seed: 9 });
  const seen = new Set(Array.from({ length: 200 }, () => nucleus.sample(logits)));
  assert.equal([...seen].sort(), [1, 3]);
  const draw = (seed: number) => { const s = new Sampler({ temperature: 1, topP: 1, seed }); return Array.from({ length: 50 }, () => s.sample(logits)); };
  assert.equal(draw(5), draw(5));
  assert.not.equal(draw(5), draw(6));
  assert.ok(new Set(draw(5)).size >= 4, "plain sampling reaches the unlikely tokens too");
});

async function collect(model: BitNetModel, prompt: string, options: object) {
  const pieces = [];
  for await (const piece of model.generate(prompt, options)) pieces.push(piece);
  return pieces;
}

withData(test, "seeded generation is repeatable; maxTokens bounds it; the prompt is not repeated", ["models/bitllama-3M.bin", "models/tok512.bin"], async () => {
  const model = await loadBitNet(dataPath("models/bitllama-3M.bin"), { tokenizer: dataPath("models/tok512.bin") });
  const a = await collect(model, "Once upon a time", { temperature: 0.8, topP: 0.9, seed: 7, maxTokens: 30 });
  const b = await collect(model, "Once upon a time", { temperature: 0.8, topP: 0.9, seed: 7, maxTokens: 30 });
  assert.equal(a, b);
  assert.ok(a.length <= 30 && a.length > 0);
  const text = a.map((p) => p.text).join("");
  assert.not.match(text, /^Once upon a time/);
  const greedy = await collect(model, "Once upon a time", { temperature: 0, maxTokens: 30 });
  const topK1 = await collect(model, "Once upon a time", { temperature: 1.5, topK: 1, seed: 1, maxTokens: 30 });
  assert.equal(topK1, greedy);
  // The greedy continuation, fed back as part of the prompt, continues identically (KV cache reuse is exact).
  const half = greedy.slice(0, 10).map((p) => p.text).join("");
  const rest = await collect(model, "Once upon a time" + half, { temperature: 0, maxTokens: 5 });
  assert.is(rest.map((p) => p.text).join(""), greedy.slice(10, 15).map((p) => p.text).join(""));
});

// Recorded once under Node 20 with the strict build; Deno and Bun run the relaxed build,
// so this checks the promise that a seed gives the same text in every runtime and build.
withData(test, "a seed gives the same sampled text in every runtime and kernel build", ["models/bitllama-1M.bin", "models/tok512.bin"], async () => {
  const model = await loadBitNet(dataPath("models/bitllama-1M.bin"), { tokenizer: dataPath("models/tok512.bin") });
  const text = async (o: object) => (await collect(model, "", { maxTokens: 40, ...o })).map((p) => p.text).join("");
  assert.is(await text({ seed: 1234, temperature: 1, topP: 1 }), "Once upon a time, there was a little girl named Lily. She loved to help her family with her mom and dad always took");
  assert.is(await text({ seed: 77, temperature: 1.2, topK: 40, topP: 0.95 }), "Once upon a time, in a big field, there was a beautiful little bird. The bear wanted to help his friends");
});

withData(test, "an AbortSignal stops generation with its reason", ["models/bitllama-1M.bin", "models/tok512.bin"], async () => {
  const model = await loadBitNet(dataPath("models/bitllama-1M.bin"), { tokenizer: dataPath("models/tok512.bin") });
  const controller = new AbortController();
  let count = 0;
  try {
    for await (const _ of model.generate("", { temperature: 0, signal: controller.signal })) {
      if (++count === 3) controller.abort(new Error("enough"));
    }
    assert.unreachable("generation should have been aborted");
  } catch (e) {
    assert.is((e as Error).message, "enough");
  }
  assert.is(count, 3);
  const already = AbortSignal.abort();
  try {
    await model.generate("", { signal: already }).next();
    assert.unreachable("a pre-aborted signal must stop at once");
  } catch (e) {
    assert.is((e as Error).name, "AbortError");
  }
});

test.run();
