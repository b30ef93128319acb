// What sessions and the cooperative event loop cost and save, in one run:
// 1. decode tok/s with a macrotask turn between tokens (cooperative, the default) and
//    without (cooperative: false), interleaved rounds, on bitllama-3M and the 2B4T shape;
// 2. the prefill a session's cache saves on a second turn: the second turn's prefill in a
//    session against a fresh generation over the same whole token sequence.
// Run: node --import tsx eval/bench-session.ts [--rounds N] [--threads N] [--skip-2b4t]  (or deno run -A ...)
import process from "node:process";
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { drain } from "../text/generate.ts";
import { loadBitNet } from "../model/load.ts";
import type { BitNetModel } from "../model/model.ts";
import { synth2b4tFile } from "./bench-synth.ts";
import "../runtime/node.ts"; // paths and threads, as the main entry installs them

const { values } = parseArgs({ options: { rounds: { type: "string" }, threads: { type: "string" }, "skip-2b4t": { type: "boolean" } } });
const ROUNDS = Number(values.rounds ?? 5), THREADS = Number(values.threads ?? 1);
const DATA = new URL("../../shared/data/", import.meta.url);
const median = (xs: number[]) => xs.slice().sort((a, b) => a - b)[xs.length >> 1];

/** Median decode tok/s of `tokens`-token generations with and without yielding, rounds interleaved. */
async function yieldingCost(model: BitNetModel, prompt: number[], tokens: number) {
  const speeds: Record<"on" | "off", number[]> = { on: [], off: [] };
  for (let r = 0; r < ROUNDS; r++) {
    for (const mode of r % 2 ? (["off", "on"] as const) : (["on", "off"] as const)) {
      const result = await model.complete(prompt, { temperature: 0, maxTokens: tokens, cooperative: mode === "on" });
      speeds[mode].push(result.timings.tokensPerSecond);
    }
  }
  return { on: median(speeds.on), off: median(speeds.off) };
}

/** Turn 1 (prompt + reply), then turn 2 (more text) in the session, and the same whole sequence fresh. */
async function secondTurn(model: BitNetModel, first: number[], more: number[], reply: number) {
  const session = model.createSession();
  await drain(session.generate(first, { temperature: 0, maxTokens: reply }));
  const two = await drain(session.generate(more, { temperature: 0, maxTokens: 1 }));
  const fresh = await model.complete(session.tokens.slice(0, two.usage.promptTokens), { temperature: 0, maxTokens: 1 });
  session.dispose();
  if (fresh.tokens[0] !== two.tokens[0]) throw new Error("the session's second turn and the fresh run disagree");
  return { two, fresh };
}

const runtime = typeof (globalThis as { Deno?: unknown }).Deno !== "undefined" ? "deno" : (globalThis as { Bun?: unknown }).Bun ? "bun" : `node ${process.version}`;
console.log(`${runtime}, ${THREADS} thread(s), ${ROUNDS} interleaved rounds (medians)\n`);
console.log("| model | build | decode tokens | tok/s cooperative | tok/s cooperative: false | cost |");
console.log("|---|---|---:|---:|---:|---:|");
const rows: string[] = [], fits: string[] = [];
const report = (name: string, m: BitNetModel, tokens: number, r: { on: number; off: number }) =>
  console.log(`| ${name} | ${m.simd} | ${tokens} | ${r.on.toFixed(1)} | ${r.off.toFixed(1)} | ${((1 - r.on / r.off) * 100).toFixed(1)}% |`);

const small = await loadBitNet(new URL("models/bitllama-3M.bin", DATA).pathname, { tokenizer: new URL("models/tok512.bin", DATA).pathname, threads: THREADS });
const story = readFileSync(new URL("text/tinystories-valid-32k.txt", DATA), "utf8").slice(0, 4000);
const storyIds = small.tokenizer!.encode(story, { bos: true }).slice(0, 300);
report("bitllama-3M", small, 200, await yieldingCost(small, storyIds.slice(0, 16), 200));
const turn = await secondTurn(small, storyIds.slice(0, 240), storyIds.slice(240, 260), 64);
rows.push(
  `| bitllama-3M | ${turn.two.usage.promptTokens} | ${turn.two.usage.cachedTokens} | ${turn.two.timings.prefillMs.toFixed(1)} | ${turn.fresh.timings.prefillMs.toFixed(1)} | ${
    (turn.fresh.timings.prefillMs / turn.two.timings.prefillMs).toFixed(1)
  }x |`,
);
small.dispose();

if (!values["skip-2b4t"]) {
  const file = await synth2b4tFile();
  const big = await loadBitNet(file, { tokenizer: "none", threads: THREADS });
  // How many sessions fit beside the weights in 4 GiB of WebAssembly memory.
  for (const contextLength of [4096, 1024]) {
    const sessions = [];
    try {
      for (;;) sessions.push(big.createSession({ contextLength }));
    } catch (e) {
      console.error(`sessions of ${contextLength} tokens: ${sessions.length} fit (${(e as Error).message})`);
      fits.push(`${sessions.length} sessions of ${contextLength} tokens (${(sessions[0]?.cacheBytes / 2 ** 20).toFixed(0)} MiB of KV each)`);
    }
    sessions.forEach((x) => x.dispose());
  }
  const ids = Array.from({ length: 300 }, (_, i) => (i === 0 ? 128000 : 1000 + ((i * 7919) % 100000)));
  report("2B4T shape (I2_S, f16 head)", big, 16, await yieldingCost(big, ids.slice(0, 16), 16));
  const t = await secondTurn(big, ids.slice(0, 200), ids.slice(200, 220), 16);
  rows.push(
    `| 2B4T shape (I2_S) | ${t.two.usage.promptTokens} | ${t.two.usage.cachedTokens} | ${t.two.timings.prefillMs.toFixed(0)} | ${t.fresh.timings.prefillMs.toFixed(0)} | ${
      (t.fresh.timings.prefillMs / t.two.timings.prefillMs).toFixed(1)
    }x |`,
  );
  big.dispose();
}

console.log("\nSecond turn: prefill of the whole sequence in a session that holds the first turn, against a fresh run\n");
console.log("| model | tokens in context | cached from turn 1 | session prefill ms | fresh prefill ms | saved |");
console.log("|---|---:|---:|---:|---:|---:|");
for (const r of rows) console.log(r);
if (fits.length) console.log(`\n2B4T shape, weights loaded with the f16 head: ${fits.join("; ")}`);
