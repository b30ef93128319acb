// Decode and prefill speed of the real models in ../shared/data, for each kernel build
// this runtime can run. Prefill: one 64-token block from position 0 (batched GEMM);
// decode: 128 tokens one at a time after it (GEMV), sampling greedily.
// Run: npm run bench (Node 20: strict build), deno task bench (both builds).
import { fileURLToPath } from "node:url";
import { existsSync } from "node:fs";
import { loadBitNet } from "../model/load.ts";
import { hasRelaxedSimd } from "../runtime/features.ts";
import { argmax } from "../text/sampler.ts";
import type { SimdLevel } from "../runtime/kernels.ts";
import "../runtime/node.ts"; // paths and threads, as the main entry installs them

const DATA = new URL("../../shared/data/models/", import.meta.url);
const MODELS = ["stories260K.bin", "bitllama-1M.bin", "bitllama-3M.bin"];
const PROMPT = 64, DECODE = 128, REPEATS = 10;
const levels: SimdLevel[] = hasRelaxedSimd() ? ["strict", "relaxed"] : ["strict"];

const rows: string[] = [];
for (const name of MODELS) {
  const path = fileURLToPath(new URL(name, DATA));
  if (!existsSync(path)) {
    console.error(`skipping ${name}: not found at ${path}`);
    continue;
  }
  for (const simd of levels) {
    const model = await loadBitNet(path, { simd });
    const prompt = Array.from({ length: PROMPT }, (_, i) => (i === 0 ? 1 : 3 + ((i * 97) % 500)));
    let bestPrefill = Infinity, bestDecode = Infinity;
    for (let r = 0; r < REPEATS; r++) {
      let t = performance.now();
      let logits = model.logits(prompt);
      bestPrefill = Math.min(bestPrefill, performance.now() - t);
      // Decode: continue from the prompt's cache, one token at a time.
      const tokens = [...prompt];
      t = performance.now();
      for (let i = 0; i < DECODE; i++) {
        tokens.push(argmax(logits[logits.length - 1]));
        logits = [model.step(tokens[tokens.length - 1], tokens.length - 1)];
      }
      bestDecode = Math.min(bestDecode, performance.now() - t);
    }
    const mib = (model.memoryBytes / 2 ** 20).toFixed(1);
    rows.push(`| ${name} | ${simd} | ${((PROMPT * 1000) / bestPrefill).toFixed(0)} | ${((DECODE * 1000) / bestDecode).toFixed(0)} | ${mib} |`);
    model.dispose();
  }
}
const runtime = typeof (globalThis as { Deno?: unknown }).Deno !== "undefined" ? "deno" : (globalThis as { Bun?: unknown }).Bun ? "bun" : `node ${process.version}`;
console.log(`models, one thread, ${runtime}, best of ${REPEATS}\n`);
console.log("| model | build | prefill tok/s (64) | decode tok/s (128) | WASM memory MiB |\n|---|---|---:|---:|---:|");
for (const r of rows) console.log(r);
