// The OpenAI-compatible server under concurrent streams: `bitnet-wasm serve` in a child
// process (so the client's work does not share its thread), then 1, 2, 4 and 8 streamed
// completions at once; aggregate tokens/s (all completion tokens / wall time) and the p50 /
// p95 time to first token, next to one stream alone; then the prompt cache: a request that
// repeats an earlier one's prompt and reply and adds a sentence (a chat's next turn), its
// time to first token against the first's. Prints markdown tables headed by the CPU.
// Run: node --import tsx eval/bench-serve.ts --model F [--tokens 32] [--streams 1,2,4,8] [--history 200] [--threads N] [--simd S]
import process from "node:process";
import { spawn } from "node:child_process";
import { cpus } from "node:os";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const { values } = parseArgs({
  options: {
    model: { type: "string" },
    tokens: { type: "string" },
    streams: { type: "string" },
    threads: { type: "string" },
    simd: { type: "string" },
    history: { type: "string" },
  },
});
const MODEL = values.model ?? fileURLToPath(new URL("../../shared/data/models/bitllama-3M.bin", import.meta.url));
const TOKENS = Number(values.tokens ?? 32), STREAMS = (values.streams ?? "1,2,4,8").split(",").map(Number), HISTORY = Number(values.history ?? 200);
const PROMPTS = ["Once upon a time", "The little dog ran", "Tom and his sister", "In a small town", "The sun was", "A girl named Sue", "One day, a bird", "There was a big"];

/** Starts `bitnet-wasm serve` on a free port with `parallel` slots; resolves with its URL and a stop function. */
async function startServer(parallel: number): Promise<{ url: string; banner: string; stop: () => void }> {
  const cli = fileURLToPath(new URL("../cli/bitnet-wasm.ts", import.meta.url));
  const runtime = typeof (globalThis as { Deno?: unknown }).Deno !== "undefined" ? [process.execPath, "run", "-A"] : [process.execPath, ...process.execArgv];
  const flags = ["--model", MODEL, "--port", "0", "--parallel", String(parallel), "--queue", "64"];
  if (values.threads) flags.push("--threads", values.threads);
  if (values.simd) flags.push("--simd", values.simd);
  const child = spawn(runtime[0], [...runtime.slice(1), cli, "serve", ...flags], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (d) => (stderr += d));
  for (let i = 0; i < 6000 && !/ on http:/.test(stderr); i++) {
    if (child.exitCode !== null) throw new Error(`serve exited: ${stderr}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const banner = stderr.split("\n")[0];
  const url = / on (http:\S+)/.exec(banner)?.[1];
  if (!url) throw new Error(`serve did not start: ${stderr}`);
  return { url, banner, stop: () => child.kill("SIGTERM") };
}

/** One streamed completion: ms to the first token, completion tokens, prompt tokens reused from a kept session, ms in all, the text. */
async function stream(url: string, model: string, prompt: string): Promise<{ ttft: number; tokens: number; cached: number; prompt: number; ms: number; text: string }> {
  const start = performance.now();
  const r = await fetch(`${url}v1/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model, prompt, max_tokens: TOKENS, temperature: 0, stream: true, stream_options: { include_usage: true } }),
  });
  if (r.status !== 200) throw new Error(`${r.status}: ${await r.text()}`);
  const reader = r.body!.pipeThrough(new TextDecoderStream()).getReader();
  let ttft = 0, tokens = 0, cached = 0, promptTokens = 0, buffered = "", text = "";
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    buffered += value;
    let end;
    while ((end = buffered.indexOf("\n\n")) >= 0) {
      const event = buffered.slice(0, end).replace(/^data: /, "");
      buffered = buffered.slice(end + 2);
      if (event === "[DONE]") continue;
      const chunk = JSON.parse(event);
      if (!ttft && chunk.choices[0]?.text) ttft = performance.now() - start;
      text += chunk.choices[0]?.text ?? "";
      if (chunk.usage) [tokens, cached, promptTokens] = [chunk.usage.completion_tokens, chunk.usage.prompt_tokens_details.cached_tokens, chunk.usage.prompt_tokens];
    }
  }
  return { ttft, tokens, cached, prompt: promptTokens, ms: performance.now() - start, text };
}

const percentile = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.ceil((p / 100) * xs.length) - 1)];

const server = await startServer(Math.max(...STREAMS));
try {
  const model = (await (await fetch(`${server.url}v1/models`)).json()).data[0].id;
  await stream(server.url, model, PROMPTS[0]); // warm-up
  const rows: string[] = [];
  let single = 0;
  for (const n of STREAMS) {
    const start = performance.now();
    const results = await Promise.all(Array.from({ length: n }, (_, i) => stream(server.url, model, PROMPTS[i % PROMPTS.length])));
    const wall = (performance.now() - start) / 1000;
    const tokens = results.reduce((s, r) => s + r.tokens, 0), aggregate = tokens / wall;
    if (n === 1) single = aggregate;
    const perStream = results.map((r) => (r.tokens * 1000) / r.ms);
    rows.push(
      `| ${n} | ${tokens} | ${aggregate.toFixed(1)} | ${single ? (aggregate / single).toFixed(2) : "-"} | ${(perStream.reduce((a, b) => a + b) / n).toFixed(1)} | ${
        percentile(results.map((r) => r.ttft), 50).toFixed(0)
      } | ${percentile(results.map((r) => r.ttft), 95).toFixed(0)} |`,
    );
  }
  const runtime = typeof (globalThis as { Deno?: unknown }).Deno !== "undefined"
    ? `Deno ${(globalThis as unknown as { Deno: { version: { deno: string } } }).Deno.version.deno}`
    : process.versions.bun
    ? `Bun ${process.versions.bun}`
    : `Node ${process.version}`;
  console.log(`${cpus()[0]?.model ?? "unknown CPU"}, ${cpus().length} cores, ${runtime}: ${server.banner.replace(/^serving /, "")}; ${TOKENS} tokens per stream, greedy\n`);
  console.log("| streams | tokens | aggregate tok/s | vs 1 stream | tok/s per stream | TTFT p50 ms | TTFT p95 ms |");
  console.log("|---:|---:|---:|---:|---:|---:|---:|");
  console.log(rows.join("\n"));
  // A conversation's second turn: the first request's prompt and reply sent again, plus a sentence.
  const history = Array.from({ length: HISTORY }, (_, i) => PROMPTS[i % PROMPTS.length]).join(". ").split(" ").slice(0, HISTORY).join(" ");
  const first = await stream(server.url, model, history);
  const second = await stream(server.url, model, `${history}${first.text} Then they went home.`);
  console.log(`\n| request | prompt tokens | reused from the kept session | TTFT ms |\n|---|---:|---:|---:|`);
  console.log(`| first (${HISTORY} words) | ${first.prompt} | ${first.cached} | ${first.ttft.toFixed(0)} |`);
  console.log(`| second (first + reply + a sentence) | ${second.prompt} | ${second.cached} | ${second.ttft.toFixed(0)} |`);
} finally {
  server.stop();
}
