// The full BitNet b1.58 2B4T shape (2.4B parameters) with random weights, as I2_S and TQ2_0
// GGUF written by `synth`: load time, peak memory, prefill (64-token prompt) and decode
// speed for each kernel build this runtime has and for the f16 and int8 LM heads, next to
// the bandwidth floor (bytes read per decoded token / measured WASM read bandwidth).
// Each configuration runs in its own process so that peak memory is its own.
// Run: node --import tsx eval/bench-2b4t.ts [--dir D] [--decode N] [--threads 1,2]  (or deno run -A ...)
import process from "node:process";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import type { GgufTarget } from "../tools/convert.ts";
import { loadBitNet } from "../model/load.ts";
import { argmax } from "../text/sampler.ts";
import { BITNET_2B4T_SHAPE } from "../tools/synth.ts";
import { synth2b4tFile } from "./bench-synth.ts";
import { hasRelaxedSimd } from "../runtime/features.ts";
import { loadKernels, type SimdLevel } from "../runtime/kernels.ts";
import "../runtime/node.ts"; // paths and threads, as the main entry installs them

const { values } = parseArgs({ options: { dir: { type: "string" }, decode: { type: "string" }, threads: { type: "string" }, child: { type: "string" } } });
const PROMPT = 64, DECODE = Number(values.decode ?? 32), THREADS = (values.threads ?? "1,2").split(",").map(Number);

/** One configuration, in this process: prints one JSON line. */
async function child(spec: string): Promise<void> {
  const [file, simd, lmHead, threads] = spec.split(",");
  const t0 = performance.now();
  const model = await loadBitNet(file, { tokenizer: "none", simd: simd as SimdLevel, lmHead: lmHead as "stored" | "int8", threads: Number(threads) });
  const loadSeconds = (performance.now() - t0) / 1000;
  const prompt = Array.from({ length: PROMPT }, (_, i) => (i === 0 ? 128000 : 1000 + ((i * 7919) % 100000)));
  let t = performance.now();
  let logits = model.step(prompt, 0);
  const prefill = (PROMPT * 1000) / (performance.now() - t);
  t = performance.now();
  for (let i = 0; i < DECODE; i++) logits = model.step(argmax(logits), PROMPT + i);
  const decode = (DECODE * 1000) / (performance.now() - t);
  const peakRss = process.resourceUsage().maxRSS * 1024;
  console.log(JSON.stringify({ loadSeconds, prefill, decode, wasmBytes: model.memoryBytes, peakRss, threads: model.threads }));
  model.dispose();
}

/** The command that runs this script again in the same runtime. */
function selfCommand(): string[] {
  const script = fileURLToPath(import.meta.url);
  if (typeof (globalThis as { Deno?: unknown }).Deno !== "undefined") return [process.execPath, "run", "-A", script];
  return [process.execPath, ...process.execArgv, script];
}

/** WASM v128 streaming read bandwidth (GB/s) over a 512 MiB buffer, best of 5. */
async function readBandwidth(simd: SimdLevel): Promise<number> {
  const kx = await loadKernels({ simd });
  const bytes = 512 * 2 ** 20, ptr = kx.allocBytes(bytes);
  kx.u8(ptr, bytes).fill(1);
  let best = Infinity;
  for (let i = 0; i < 5; i++) {
    const t = performance.now();
    kx.k.streamRead(ptr, bytes);
    best = Math.min(best, performance.now() - t);
  }
  return bytes / best / 1e6;
}

async function main(): Promise<void> {
  const files: Record<string, string> = {};
  for (const to of ["gguf-i2s", "gguf-tq2"] as GgufTarget[]) files[to] = await synth2b4tFile(values.dir, to);
  const s = BITNET_2B4T_SHAPE, kvDim = (s.dim / s.nHeads) * s.nKvHeads;
  const ternaryBytes = (s.nLayers * (2 * s.dim * s.dim + 2 * kvDim * s.dim + 3 * s.hiddenDim * s.dim)) / 4;
  const headBytes = { stored: s.vocabSize * s.dim * 2, int8: s.vocabSize * (s.dim + 4) };
  const levels: SimdLevel[] = hasRelaxedSimd() ? ["strict", "relaxed"] : ["strict"];
  const runtime = typeof (globalThis as { Deno?: unknown }).Deno !== "undefined" ? "deno" : (globalThis as { Bun?: unknown }).Bun ? "bun" : `node ${process.version}`;
  console.log(`2B4T shape (${BITNET_2B4T_SHAPE.nLayers} layers, vocab ${s.vocabSize}), ${runtime}; prefill ${PROMPT} tokens, decode ${DECODE}\n`);
  console.log("| file | build | LM head | threads | load s | peak RSS MiB | WASM MiB | prefill tok/s | decode tok/s | bytes/token MB | one-thread floor tok/s (at read GB/s) |");
  console.log("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|");
  for (const simd of levels) {
    const bandwidth = await readBandwidth(simd);
    for (const [to, file] of Object.entries(files)) {
      for (const head of ["stored", "int8"] as const) {
        for (const threads of THREADS) {
          const [cmd, ...args] = selfCommand();
          const r = spawnSync(cmd, [...args, "--child", `${file},${simd},${head},${threads}`, "--decode", String(DECODE)], { encoding: "utf8" });
          if (r.status !== 0) throw new Error(`${to} ${simd} ${head} ${threads} threads: ${r.stderr}`);
          const m = JSON.parse(r.stdout.trim().split("\n").at(-1)!);
          const perToken = ternaryBytes + headBytes[head];
          const mib = (b: number) => (b / 2 ** 20).toFixed(0);
          console.log(
            `| ${to} | ${simd} | ${head === "stored" ? "f16" : "int8"} | ${m.threads} | ${m.loadSeconds.toFixed(1)} | ${mib(m.peakRss)} | ${mib(m.wasmBytes)} | ${
              m.prefill.toFixed(1)
            } | ${m.decode.toFixed(2)} | ${(perToken / 1e6).toFixed(0)} | ${((bandwidth * 1e9) / perToken).toFixed(1)} (${bandwidth.toFixed(1)}) |`,
          );
        }
      }
    }
  }
}

if (values.child) await child(values.child);
else await main();
