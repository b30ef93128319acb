// Decode speed-up from worker threads on the full 2B4T shape, measured fairly on a noisy
// machine: the same file is loaded once per thread count, and rounds of decoded tokens
// alternate between the models, so every thread count sees the same machine state. Prints
// each round and the median tok/s per thread count, and checks that the logits agree.
// Run: node --import tsx eval/bench-threads.ts [--file F] [--threads 1,2] [--lm-head stored|int8] [--rounds N] [--tokens N]
//      (deno run -A eval/bench-threads.ts ...). The file defaults to the TQ2_0 GGUF that
//      eval/bench-2b4t.ts writes.
import { parseArgs } from "node:util";
import { loadBitNet } from "../model/load.ts";
import type { BitNetModel } from "../model/model.ts";
import { argmax } from "../text/sampler.ts";
import "../runtime/node.ts"; // paths and threads, as the main entry installs them

const { values } = parseArgs({
  options: { file: { type: "string" }, threads: { type: "string" }, "lm-head": { type: "string" }, rounds: { type: "string" }, tokens: { type: "string" } },
});
const file = values.file ?? "/tmp/bitnet-2b4t/2b4t-tq2.gguf";
const counts = (values.threads ?? "1,2").split(",").map(Number);
const lmHead = (values["lm-head"] ?? "int8") as "stored" | "int8";
const ROUNDS = Number(values.rounds ?? 5), TOKENS = Number(values.tokens ?? 8), PROMPT = 16;

const models: BitNetModel[] = [];
for (const threads of counts) models.push(await loadBitNet(file, { tokenizer: "none", lmHead, threads }));
const prompt = Array.from({ length: PROMPT }, (_, i) => (i === 0 ? 128000 : 1000 + ((i * 7919) % 100000)));
const last = models.map((m) => m.step(prompt, 0));
for (let i = 1; i < last.length; i++) {
  if (last[i].some((v, j) => v !== last[0][j])) throw new Error(`${counts[i]} threads: logits differ from ${counts[0]}`);
}
const pos = models.map(() => PROMPT);
const speeds: number[][] = models.map(() => []);
const runtime = typeof (globalThis as { Deno?: unknown }).Deno !== "undefined" ? "deno" : (globalThis as { Bun?: unknown }).Bun ? "bun" : `node ${process.version}`;
console.log(`${file}, ${runtime}, ${models[0].simd} SIMD, ${lmHead} LM head: ${ROUNDS} rounds of ${TOKENS} decoded tokens per thread count, alternating\n`);
console.log(`| round | ${counts.map((c) => `${c} thread${c > 1 ? "s" : ""} tok/s`).join(" | ")} |`);
console.log(`|---:|${counts.map(() => "---:").join("|")}|`);
for (let r = 0; r < ROUNDS; r++) {
  models.forEach((m, i) => {
    const t = performance.now();
    for (let k = 0; k < TOKENS; k++) last[i] = m.step(argmax(last[i]), pos[i]++);
    speeds[i].push((TOKENS * 1000) / (performance.now() - t));
  });
  console.log(`| ${r + 1} | ${speeds.map((s) => s[r].toFixed(2)).join(" | ")} |`);
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const base = median(speeds[0]);
console.log(`| median | ${speeds.map((s) => `${median(s).toFixed(2)}${s === speeds[0] ? "" : ` (${(median(s) / base).toFixed(2)}x)`}`).join(" | ")} |`);
for (const m of models) m.dispose();
