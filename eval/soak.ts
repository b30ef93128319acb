// Soak: whether memory stays flat over a long run of generations in one process. Runs
// --generations generations of --tokens tokens on bitllama-3M, a seeded mix of one-shot
// model.generate() / complete() calls, turns of sessions created, reset and disposed (up to
// three alive at once, some with a small context and contextShift), pairs of generations
// interleaved, generations aborted by an AbortSignal after a random few tokens, and streams
// the consumer stops reading; prompts are fixed texts, slices of TinyStories, token ids or
// empty. The first step holds the most KV caches the mix ever does (three full-context
// sessions and a one-shot generation), so the warm-up has seen the peak in use. Every 100
// generations it samples the kernels' WebAssembly memory (its byteLength, and the
// allocator's top: model.memoryBytes), process RSS, and the JS heap used (after global.gc()
// when run with --expose-gc) and committed. Verdict: after the warm-up (the
// first 200 generations) the WebAssembly memory must not grow at all, RSS less the heap's
// committed size must stay within 16 MiB and the heap used within 2 MiB of their values at
// the end of the warm-up (see BOUNDS), disposing every session must give back every byte of
// KV cache, and no generation may fail (an aborted one must end with finishReason "abort"
// after exactly the tokens it had got); exits 1 if not. Prints a Markdown table of the
// samples and of the checks, and each allocation that grew the memory after the warm-up,
// with its stack and whether it was a new peak in use or fragmentation. The same seed runs
// the same generations.
// Run: node --expose-gc --import tsx eval/soak.ts [--generations N] [--tokens T] [--seed S] [--model F] [--tokenizer F] [--threads N]
import { uniform } from "../core/random.ts";
import process from "node:process";
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { loadBitNet } from "../model/load.ts";
import type { BitNetModel } from "../model/model.ts";
import type { Session } from "../model/session.ts";
import type { GeneratedToken, GenerateOptions, GenerationResult } from "../text/generate.ts";
import { Arena } from "../runtime/arena.ts";
import type { Ptr } from "../runtime/ptr.ts";
import "../runtime/node.ts"; // paths and threads, as the main entry installs them

const { values } = parseArgs({
  options: {
    generations: { type: "string" },
    tokens: { type: "string" },
    seed: { type: "string" },
    model: { type: "string" },
    tokenizer: { type: "string" },
    threads: { type: "string" },
  },
});
const DATA = new URL("../../shared/data/", import.meta.url);
const integer = (name: string, value: string | undefined, fallback: number, min: number) => {
  const n = Number(value ?? fallback);
  if (!Number.isInteger(n) || n < min) {
    console.error(`--${name}: expected an integer >= ${min}, got ${value}`);
    process.exit(2);
  }
  return n;
};
const GENERATIONS = integer("generations", values.generations, 2000, 1), TOKENS = integer("tokens", values.tokens, 64, 2);
const SEED = integer("seed", values.seed, 1, 0), THREADS = integer("threads", values.threads, 1, 1);
const MODEL = values.model ?? fileURLToPath(new URL("models/bitllama-3M.bin", DATA));
const TOKENIZER = values.tokenizer ?? (values.model ? undefined : fileURLToPath(new URL("models/tok512.bin", DATA)));
const SAMPLE_EVERY = 100, WARMUP = Math.min(200, Math.floor(GENERATIONS / 2));
/**
 * Growth allowed after the warm-up. WebAssembly memory: none (the same mix of sessions goes
 * on, so it needs no new pages: one more is a leak, or freed blocks that cannot be reused).
 * Heap used after a full GC: 2 MiB, several times V8's own drift (0.1 - 0.2 MiB here), below
 * what keeping 1 KiB a generation (one result: 64 tokens and their text) adds over 1,800.
 * RSS: 16 MiB, less the heap's committed size, since V8 resizes its young generation by
 * itself (here 16 to 32 MiB after some 600 - 800 generations: bounded by
 * --max-semi-space-size, not a leak, and what the heap holds is checked by its used size).
 * What is left (JIT code, malloc arenas, the WebAssembly pages touched) moved by up to
 * 8.1 MiB from run to run of the same seed (0.0, 0.0, 6.3, 8.1 MiB in four runs), so 16
 * MiB: twice that noise, and still below a native leak of 9 KiB a generation over
 * 1,800 (a TextDecoder's buffers kept, say). A leaked KV cache is caught at once by the
 * WebAssembly memory and KV cache checks, not here.
 */
const BOUNDS = { wasm: 0, heap: 2 * 2 ** 20, rss: 16 * 2 ** 20 };
const MiB = (n: number) => (n / 2 ** 20).toFixed(2);

if (!existsSync(MODEL)) {
  console.error(`${values.model ? "error" : "skipping"}: model not found at ${MODEL}`);
  process.exit(values.model ? 2 : 0);
}

const random = uniform(SEED);
const int = (lo: number, hi: number) => lo + Math.floor(random() * (hi - lo + 1)); // lo..hi inclusive
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)];

// The kernel instance's memory: BitNetModel keeps its kernels in a private field (model.ts),
// so the allocator of that memory (runtime/arena.ts: its memory, top and free bytes are
// public) is taken from its first alloc(), which its constructor makes. Every allocation is
// watched: the peak of bytes in use, and each one that grows the memory, with its stack.
let done = 0, tokensSoFar = 0, peakInUse = 0;
const arenas = new Set<Arena>();
const grows: { generation: number; bytes: number; top: number; free: number; had: number; grewTo: number; stack: string }[] = [];
const alloc = Arena.prototype.alloc;
Arena.prototype.alloc = function (this: Arena, bytes: number, align?: number, zero?: boolean): Ptr {
  arenas.add(this);
  const had = this.memory.buffer.byteLength, top = this.bytesUsed, free = this.bytesFree;
  const ptr = alloc.call(this, bytes, align, zero);
  peakInUse = Math.max(peakInUse, this.bytesUsed - this.bytesFree);
  if (this.memory.buffer.byteLength > had) grows.push({ generation: done, bytes, top, free, had, grewTo: this.memory.buffer.byteLength, stack: new Error().stack ?? "" });
  return ptr;
};
const model: BitNetModel = await loadBitNet(MODEL, { tokenizer: TOKENIZER, threads: THREADS });
if (arenas.size !== 1) throw new Error(`expected the one allocator of the model's kernels, saw ${arenas.size}`);
const [arena] = arenas;
const tokenizer = model.tokenizer!;
const loadedBytes = model.memoryBytes;

const STORY = readFileSync(new URL("text/tinystories-valid-32k.txt", DATA), "utf8").replaceAll("<|endoftext|>", "\n");
const PROMPTS = [
  "Once upon a time",
  "Tom had a red ball. He",
  "Lily liked to paint.",
  "One day, a little bird",
  "The sun was hot and the dog",
  'Mom said, "',
  "Ben and Mia went to the park. They saw",
  "There was a big tree in the garden.",
  " ",
  "",
  "Once upon a time, in a small town, there lived a girl named Sue who loved to sing.",
];
/** A prompt: a fixed text, a slice of a story, or token ids (BOS first). */
function prompt(): string | number[] {
  const r = random();
  if (r < 0.45) return pick(PROMPTS);
  const at = int(0, STORY.length - 400), text = STORY.slice(at, at + int(1, 300));
  return r < 0.85 ? text : tokenizer.encode(text, { bos: true }).slice(0, 120);
}
/** Sampling options: greedy or sampled, with and without penalties, cooperative or not. */
function options(): GenerateOptions {
  const o: GenerateOptions = { maxTokens: TOKENS, seed: int(0, 2 ** 31) };
  if (random() < 0.25) o.temperature = 0;
  else {
    o.temperature = pick([0.5, 0.8, 1, 1.2]);
    if (random() < 0.5) o.topK = pick([10, 40, 100]);
    if (random() < 0.5) o.topP = pick([0.8, 0.9, 0.95]);
    if (random() < 0.2) o.minP = 0.05;
  }
  if (random() < 0.2) o.repetitionPenalty = 1.1;
  if (random() < 0.1) Object.assign(o, { frequencyPenalty: 0.2, presencePenalty: 0.2, penaltyLastN: 32 });
  if (random() < 0.1) o.cooperative = false;
  return o;
}

/** What went wrong, in which generation (failed calls, and aborts that did not end the generation as asked). */
const failures: { generation: number; kind: string; message: string }[] = [];
const finishes: Record<string, number> = {};
const kinds: Record<string, number> = {};

/**
 * Consumes one streamed generation. `abortAfter`: abort its signal once that many tokens have
 * come; `stopAfter`: stop reading (return()) once that many have come. Checks what it returns.
 */
async function consume(kind: string, start: (o: GenerateOptions) => AsyncGenerator<GeneratedToken, GenerationResult>, o: GenerateOptions, abortAfter = 0, stopAfter = 0) {
  const generation = ++done;
  kinds[kind] = (kinds[kind] ?? 0) + 1;
  const controller = new AbortController();
  if (abortAfter) o.signal = controller.signal;
  let got = 0, result: GenerationResult | undefined;
  try {
    const stream = start(o);
    for (;;) {
      const step = await stream.next();
      if (step.done) {
        result = step.value;
        break;
      }
      if (step.value.token < 0) continue;
      got++;
      tokensSoFar++;
      if (got === abortAfter) controller.abort();
      if (got === stopAfter) {
        await stream.return(undefined as unknown as GenerationResult);
        finishes["consumer stopped"] = (finishes["consumer stopped"] ?? 0) + 1;
        return;
      }
    }
  } catch (e) {
    const aborted = controller.signal.aborted && (e as Error)?.name === "AbortError";
    if (!aborted) failures.push({ generation, kind, message: e instanceof Error ? `${e.name}: ${e.message}` : String(e) });
    finishes[aborted ? "abort (thrown)" : "error"] = (finishes[aborted ? "abort (thrown)" : "error"] ?? 0) + 1;
    return;
  }
  finishes[result.finishReason] = (finishes[result.finishReason] ?? 0) + 1;
  const wrong = controller.signal.aborted
    ? (result.finishReason !== "abort" || result.tokens.length !== abortAfter) && `aborted after ${abortAfter} tokens, ended "${result.finishReason}" with ${result.tokens.length}`
    : (result.tokens.length !== got || result.tokens.length > TOKENS || (result.finishReason === "length") !== (result.tokens.length === TOKENS)) &&
      `"${result.finishReason}" with ${result.tokens.length} tokens (${got} streamed, maxTokens ${TOKENS})`;
  if (wrong) failures.push({ generation, kind, message: wrong });
}

/** A streamed generation's abort / stop point: mostly none, else a random few tokens in. */
function interruption(): [abortAfter: number, stopAfter: number] {
  const r = random();
  if (r < 0.25) return [int(1, Math.min(8, TOKENS - 1)), 0];
  if (r < 0.3) return [0, int(1, TOKENS - 1)];
  return [0, 0];
}

/** Sessions alive between generations (at most MAX_SESSIONS). */
const sessions: Session[] = [], MAX_SESSIONS = 3;
function openSession(): Session {
  const r = random();
  if (r < 0.6) return model.createSession();
  if (r < 0.8) return model.createSession({ contextLength: pick([256, 384]) });
  const s = model.createSession({ contextLength: 96 }); // a small context that fills: generations shift it
  (s as Session & { shift?: boolean }).shift = true;
  return s;
}
/** One turn on a session (opened if there are none, or one more at random), then maybe reset or disposed. */
async function sessionTurn(): Promise<void> {
  if (sessions.length === 0 || (sessions.length < MAX_SESSIONS && random() < 0.3)) sessions.push(openSession());
  const at = Math.floor(random() * sessions.length), s = sessions[at];
  const shift = (s as Session & { shift?: boolean }).shift === true;
  let input = prompt();
  if (Array.isArray(input) && s.tokens.length > 0) input = input.slice(1); // no BOS mid-text
  const length = (bos: boolean) => typeof input === "string" ? tokenizer.encode(input, { bos }).length : input.length;
  if (!shift && s.tokens.length + length(s.tokens.length === 0) + TOKENS >= s.contextLength) s.reset(); // a text that no longer fits starts again
  const o = options();
  if (shift) o.contextShift = random() < 0.5 ? true : { keep: 4 };
  const [abortAfter, stopAfter] = interruption();
  await consume(shift ? "session turn (contextShift)" : "session turn", (o) => s.generate(input, o), o, abortAfter, stopAfter);
  const r = random();
  if (r < 0.3) {
    s.dispose();
    sessions.splice(at, 1);
  } else if (r < 0.4) s.reset();
}

async function oneShot(): Promise<void> {
  const p = prompt(), [abortAfter, stopAfter] = interruption();
  await consume("model.generate", (o) => model.generate(p, o), options(), abortAfter, stopAfter);
}

async function complete(): Promise<void> {
  const generation = ++done, p = prompt();
  kinds["model.complete"] = (kinds["model.complete"] ?? 0) + 1;
  try {
    const result = await model.complete(p, options());
    tokensSoFar += result.tokens.length;
    finishes[result.finishReason] = (finishes[result.finishReason] ?? 0) + 1;
    if (result.finishReason !== "stop" && result.finishReason !== "length") failures.push({ generation, kind: "model.complete", message: `ended "${result.finishReason}"` });
  } catch (e) {
    failures.push({ generation, kind: "model.complete", message: e instanceof Error ? `${e.name}: ${e.message}` : String(e) });
    finishes.error = (finishes.error ?? 0) + 1;
  }
}

/** Memory now: WebAssembly memory, the allocator's top, RSS and heap (after a full GC when exposed). */
const gc = (globalThis as { gc?: () => void }).gc;
function sample() {
  gc?.();
  const { rss, heapUsed, heapTotal } = process.memoryUsage();
  return { generation: done, wasm: arena.memory.buffer.byteLength, arena: model.memoryBytes, rss, heap: heapUsed, committed: heapTotal, tokens: tokensSoFar };
}

const runtime = typeof (globalThis as { Deno?: unknown }).Deno !== "undefined" ? "deno" : (globalThis as { Bun?: unknown }).Bun ? "bun" : `node ${process.version}`;
console.log(`${runtime}, ${model.simd} build, ${model.threads} thread(s), ${MODEL.split("/").pop()}, ${GENERATIONS} generations of ${TOKENS} tokens, seed ${SEED}`);
console.log(`heap ${gc ? "after global.gc()" : "without a GC first (run with --expose-gc for a heap verdict)"}, warm-up ${WARMUP} generations\n`);
console.log("| generations | wasm MiB | arena top MiB | RSS MiB | heap MiB | heap committed MiB | tokens so far | live sessions |");
console.log("|---:|---:|---:|---:|---:|---:|---:|---:|");
type Sample = ReturnType<typeof sample>;
const samples: Sample[] = [];
const record = () => {
  const s = sample();
  samples.push(s);
  console.log(`| ${s.generation} | ${MiB(s.wasm)} | ${MiB(s.arena)} | ${MiB(s.rss)} | ${MiB(s.heap)} | ${MiB(s.committed)} | ${s.tokens} | ${sessions.length} |`);
};

const started = performance.now();
record();
while (done < GENERATIONS) {
  const r = random();
  const before = done;
  if (done === 0 && GENERATIONS >= 4) {
    // The most KV caches the mix ever holds, first, so that the warm-up has had the peak of memory in use:
    // MAX_SESSIONS sessions of the full context, and a one-shot generation beside a turn of one of them.
    while (sessions.length < MAX_SESSIONS) sessions.push(model.createSession());
    kinds["(two at once)"] = 1;
    await Promise.all([oneShot(), sessionTurn()]);
  } else if (r < 0.35) await oneShot();
  else if (r < 0.45) await complete();
  else if (r < 0.9 || GENERATIONS - done < 2 || done % SAMPLE_EVERY === SAMPLE_EVERY - 1 || done + 1 === WARMUP) await sessionTurn();
  else {
    kinds["(two at once)"] = (kinds["(two at once)"] ?? 0) + 1;
    await Promise.all([oneShot(), sessionTurn()]); // interleaved token by token
  }
  for (let g = before + 1; g <= done; g++) if (g % SAMPLE_EVERY === 0 || g === WARMUP || g === GENERATIONS) record();
}
const seconds = (performance.now() - started) / 1000;
for (const s of sessions.splice(0)) s.dispose();
const disposedArena = model.memoryBytes;
model.dispose();

console.log(`\n${done} generations, ${tokensSoFar} tokens in ${seconds.toFixed(1)} s (${(tokensSoFar / seconds).toFixed(0)} tok/s overall)`);
console.log(`kinds: ${Object.entries(kinds).map(([k, n]) => `${k} ${n}`).join(", ")}`);
console.log(`endings: ${Object.entries(finishes).map(([k, n]) => `${k} ${n}`).join(", ")}`);

const base = samples.find((s) => s.generation === WARMUP)!, after = samples.filter((s) => s.generation >= WARMUP);
const growth = (value: (s: Sample) => number) => Math.max(...after.map(value)) - value(base);
const wasmGrowth = growth((s) => s.wasm), rssGrowth = growth((s) => s.rss), outsideGrowth = growth((s) => s.rss - s.committed), heapGrowth = growth((s) => s.heap);
const checks: [string, boolean, string][] = [
  [
    "WebAssembly memory",
    wasmGrowth <= BOUNDS.wasm,
    `grew ${MiB(wasmGrowth)} MiB after generation ${WARMUP} (allowed: none); peak in use ${MiB(peakInUse)} MiB, memory ${MiB(arena.memory.buffer.byteLength)} MiB`,
  ],
  [
    "RSS",
    outsideGrowth <= BOUNDS.rss,
    `outside the JS heap's committed size: peak ${MiB(outsideGrowth)} MiB above generation ${WARMUP}'s (allowed: ${MiB(BOUNDS.rss)}); RSS itself: ${
      MiB(rssGrowth)
    } MiB, the heap committed ${MiB(growth((s) => s.committed))} MiB`,
  ],
  gc
    ? ["JS heap", heapGrowth <= BOUNDS.heap, `used after GC: peak ${MiB(heapGrowth)} MiB above generation ${WARMUP}'s (allowed: ${MiB(BOUNDS.heap)})`]
    : ["JS heap", true, `not checked: run with --expose-gc (used, without a GC: peak ${MiB(heapGrowth)} MiB above generation ${WARMUP}'s)`],
  ["KV caches", disposedArena === loadedBytes, `allocator top ${MiB(disposedArena)} MiB with every session disposed, ${MiB(loadedBytes)} MiB after load`],
  ["generations", failures.length === 0, `${failures.length} failed`],
];
console.log("\n| check | verdict | |\n|---|---|---|");
for (const [name, ok, what] of checks) console.log(`| ${name} | ${ok ? "ok" : "FAIL"} | ${what} |`);
for (const f of failures.slice(0, 20)) console.log(`generation ${f.generation} (${f.kind}): ${f.message}`);
if (failures.length > 20) console.log(`... and ${failures.length - 20} more`);
for (const g of grows.filter((g) => g.generation > WARMUP)) {
  const inUse = g.top - g.free,
    why = inUse + g.bytes > g.had
      ? `more than ever in use (${MiB(inUse + g.bytes)} MiB with it, in ${MiB(g.had)} MiB of memory)`
      : `fragmentation: with it ${MiB(inUse + g.bytes)} MiB are in use, which fits the ${MiB(g.had)} MiB of memory, but no free block below the top is large enough`;
  console.log(
    `\ngeneration ${g.generation}: an allocation of ${MiB(g.bytes)} MiB, with ${MiB(g.free)} MiB free below the top (${MiB(g.top)} MiB) and ${MiB(inUse)} MiB in use, ` +
      `went above the top and grew the memory to ${MiB(g.grewTo)} MiB: ${why}. From:`,
  );
  console.log(g.stack.split("\n").slice(2).filter((line) => !line.includes("node:internal")).slice(0, 8).join("\n"));
}
const ok = checks.every(([, pass]) => pass);
console.log(`\nverdict: ${ok ? "memory flat after the warm-up, no failed generation" : "FAIL"}`);
process.exit(ok ? 0 : 1);
