// Whole models against published outputs and against themselves (batched vs one by one).
import * as assert from "uvu/assert";
import { loadBitNet } from "../model/load.ts";
import type { BitNetModel } from "../model/model.ts";
import { dataPath, LEVELS, levelSuite, withData } from "./helpers.ts";

const TOK = "models/tok512.bin";

async function greedy(model: BitNetModel, maxTokens: number): Promise<string> {
  let text = "";
  for await (const piece of model.generate("", { temperature: 0, maxTokens })) text += piece.text;
  return text;
}

for (const level of LEVELS) {
  const test = levelSuite("models", level);
  if (!test) continue;
  const load = (name: string, bitOrder?: "msb" | "lsb") => loadBitNet(dataPath(`models/${name}`), { tokenizer: dataPath(TOK), simd: level, bitOrder });

  // llama2.c's run prints this for stories260K at temperature 0; the fixture holds 257 tokens
  // of it (the model never emits BOS within them), so that is the length compared.
  withData(test, "stories260K greedy from BOS equals llama2.c's output", ["models/stories260K.bin", TOK, "fixtures/greedy257_stories260K.txt"], async (_, __, want) => {
    const text = await greedy(await load("stories260K.bin"), 257);
    assert.is(text.trim(), new TextDecoder().decode(want).trim());
  });

  withData(test, "bitllama-1M greedy 200 tokens equals the float64 reference", ["models/bitllama-1M.bin", TOK, "fixtures/greedy200_bit1M.txt"], async (_, __, want) => {
    const text = await greedy(await load("bitllama-1M.bin"), 200);
    assert.is(text.trim(), new TextDecoder().decode(want).trim());
  });

  withData(test, "bitllama-3M and its LSB-first export give identical logits", ["models/bitllama-3M.bin", "models/bitllama-3M-lsb.bin", TOK], async () => {
    const tokens = [1, 403, 407, 261, 378, 432, 383, 286];
    const msb = (await load("bitllama-3M.bin")).logits(tokens);
    const lsb = (await load("bitllama-3M-lsb.bin", "lsb")).logits(tokens);
    assert.equal(lsb, msb);
    const wrongOrder = (await load("bitllama-3M-lsb.bin")).logits(tokens);
    assert.not.equal(wrongOrder, msb, "reading the LSB file as MSB-first must not agree");
  });

  withData(test, "batched prefill (GEMM) gives the same logits as one token at a time (GEMV)", ["models/bitllama-3M.bin", "models/stories260K.bin", TOK], async () => {
    for (const name of ["bitllama-3M.bin", "stories260K.bin"]) {
      const model = await load(name);
      const tokens = Array.from({ length: 40 }, (_, i) => 1 + ((i * 37) % 500)); // crosses a 32-token block boundary
      const batched = model.logits(tokens);
      const single = tokens.map((_, i) => model.logits(tokens.slice(0, i + 1))[i]);
      assert.equal(batched, single, name);
    }
  });

  withData(test, "perplexity equals exp(mean NLL) computed from the logits, with the documented windows", ["models/bitllama-1M.bin", TOK], async () => {
    const model = await load("bitllama-1M.bin");
    const tokens = model.tokenizer!.encode("Once upon a time there was a cat. The cat liked milk.", { bos: true });
    const ctx = 5;
    let nll = 0;
    for (let start = 0; start < tokens.length - 1; start += ctx) {
      const window = tokens.slice(start, Math.min(start + ctx, tokens.length - 1));
      model.logits(window).forEach((logits, i) => {
        const max = Math.max(...logits);
        const lse = Math.log(logits.reduce((a, v) => a + Math.exp(v - max), 0)) + max;
        nll += lse - logits[tokens[start + i + 1]];
      });
    }
    const result = await model.perplexity(tokens, { ctx });
    assert.is(result.tokens, tokens.length - 1);
    assert.ok(Math.abs(result.loss - nll / (tokens.length - 1)) < 1e-5);
    assert.ok(Math.abs(result.perplexity - Math.exp(result.loss)) < 1e-9);
  });

  withData(test, "perplexity of the TinyStories sample is low for all three models", [
    "models/stories260K.bin",
    "models/bitllama-1M.bin",
    "models/bitllama-3M.bin",
    TOK,
    "text/tinystories-valid-32k.txt",
  ], async (...files) => {
    const text = new TextDecoder().decode(files[4]);
    for (const name of ["stories260K.bin", "bitllama-1M.bin", "bitllama-3M.bin"]) {
      const r = await (await load(name)).perplexity(text, { ctx: 256 });
      assert.ok(r.perplexity > 1.5 && r.perplexity < 8, `${name}: perplexity ${r.perplexity}`);
    }
  });

  test.run();
}
