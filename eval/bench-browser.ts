// What the page's thread goes through while a model loads and generates in headless Chromium:
// loadBitNet on the page's own thread against loadBitNetInWorker, on one model file written by
// synth (random ternary weights: 2B4T's proportions shrunk to ~77 MB as I2_S, or with --2b4t its
// full shape, 1.2 GB), read by URL; a prompt of --prompt tokens, then --tokens decoded.
// For each: the longest main-thread task and the total blocking time (the time past 50 ms of
// every long task, as Lighthouse counts it), seen by a PerformanceObserver (checked first on a
// 120 ms task of its own); load time; decode
// tok/s. Rounds alternate the two ways; medians are printed as a markdown table.
// Run: node --import tsx eval/bench-browser.ts [--rounds N] [--prompt N] [--tokens N] [--2b4t]
import { mkdtempSync, rmSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { parseArgs } from "node:util";
import { launchChromium } from "./chromium.ts";
import { fileSink, writeThrough } from "../runtime/files.ts";
import { writeCheckpointGguf } from "../tools/convert.ts";
import { BITNET_2B4T_SHAPE, synthesizeBitNet } from "../tools/synth.ts";
import { loadKernels } from "../runtime/kernels.ts";
import "../runtime/node.ts";

const { values } = parseArgs({ options: { rounds: { type: "string" }, tokens: { type: "string" }, prompt: { type: "string" }, "2b4t": { type: "boolean" } } });
const ROUNDS = Number(values.rounds ?? 3), TOKENS = Number(values.tokens ?? 32), PROMPT = Number(values.prompt ?? 32);
const SHAPE = values["2b4t"] ? BITNET_2B4T_SHAPE : { nLayers: 6, dim: 2048, hiddenDim: 5632, nHeads: 16, nKvHeads: 4, vocabSize: 512, seqLen: 1024 };
const median = (xs: number[]) => xs.slice().sort((a, b) => a - b)[xs.length >> 1];

const dir = mkdtempSync(`${tmpdir()}/bitnet-bench-browser-`);
await writeThrough(
  await fileSink(`${dir}/model.gguf`),
  async (sink) => writeCheckpointGguf(await loadKernels(), (await synthesizeBitNet(SHAPE)).checkpoint, null, "gguf-i2s", sink),
);

// @ts-ignore: a plain JavaScript module without types
const { serve } = await import("../examples/browser/serve.mjs");
const server = await serve(0, { "/bench/": dir });
const browser = await launchChromium();
type Way = "page" | "worker";
const results: Record<Way, { longest: number[]; blocking: number[]; loadMs: number[]; tps: number[] }> = {
  page: { longest: [], blocking: [], loadMs: [], tps: [] },
  worker: { longest: [], blocking: [], loadMs: [], tps: [] },
};
let sizeMB = 0, simd = "";
try {
  for (let round = 0; round < ROUNDS; round++) {
    for (const way of round % 2 ? (["worker", "page"] as const) : (["page", "worker"] as const)) {
      const page = await browser.newPage();
      await page.goto(`${server.url}/examples/browser/`);
      const r = await page.evaluate(async ({ way, tokens, prompt }) => {
        const tasks: number[] = [];
        const observer = new PerformanceObserver((list) => list.getEntries().forEach((e) => tasks.push(e.duration)));
        observer.observe({ type: "longtask" });
        // The observer's check: a 120 ms task of our own must be seen (then forgotten).
        await new Promise<void>((resolve) =>
          setTimeout(() => {
            for (const t = performance.now(); performance.now() - t < 120;);
            resolve();
          })
        );
        await new Promise((resolve) => setTimeout(resolve, 50));
        const seen = tasks.splice(0).some((ms) => ms >= 120);
        const lib = await import("/dist/web.js" as string);
        const url = new URL("/bench/model.gguf", location.href).href, options = { threads: 1, tokenizer: "none" };
        const start = performance.now();
        const model = way === "page" ? await lib.loadBitNet(url, options) : await lib.loadBitNetInWorker(url, options);
        const loadMs = performance.now() - start;
        const result = await model.complete(Array.from({ length: prompt }, (_, i) => 1 + (i % 500)), { maxTokens: tokens, temperature: 0 });
        const bytes = model.memoryBytes;
        model.dispose();
        await new Promise((resolve) => setTimeout(resolve, 100)); // the last long task's entry
        observer.disconnect();
        return { seen, tasks, loadMs, tps: result.timings.tokensPerSecond, simd: model.simd, bytes };
      }, { way, tokens: TOKENS, prompt: PROMPT });
      await page.close();
      if (!r.seen) throw new Error("the long-task observer did not see a 120 ms task: the figures would mean nothing");
      results[way].longest.push(Math.max(0, ...r.tasks));
      results[way].blocking.push(r.tasks.reduce((sum, ms) => sum + Math.max(0, ms - 50), 0));
      results[way].loadMs.push(r.loadMs);
      results[way].tps.push(r.tps);
      sizeMB = r.bytes / 1e6;
      simd = r.simd;
    }
  }
} finally {
  await browser.close();
  server.close();
  rmSync(dir, { recursive: true, force: true });
}

console.log(
  `CPU: ${cpus()[0].model}, ${cpus().length} cores; Chromium ${browser.version()}, ${simd} SIMD, 1 thread; model ${
    sizeMB.toFixed(0)
  } MB in memory; prompt ${PROMPT}, ${TOKENS} tokens decoded; ${ROUNDS} rounds, medians\n`,
);
console.log("| where the model runs | longest main-thread task ms | total blocking time ms | load ms | decode tok/s |");
console.log("| --- | ---: | ---: | ---: | ---: |");
for (const way of ["page", "worker"] as const) {
  const r = results[way];
  const name = way === "page" ? "page's thread (loadBitNet)" : "worker (loadBitNetInWorker)";
  console.log(`| ${name} | ${median(r.longest).toFixed(0)} | ${median(r.blocking).toFixed(0)} | ${median(r.loadMs).toFixed(0)} | ${median(r.tps).toFixed(1)} |`);
}
