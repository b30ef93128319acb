#!/usr/bin/env node
// bitnet-wasm command line: generate text or measure perplexity with a model file.
// Results go to stdout; progress and diagnostics to stderr.
import process from "node:process";
import { parseArgs, type ParseArgsOptionsConfig } from "node:util";
import type { Checkpoint } from "../formats/checkpoint.ts";
import { GGUF_TARGETS, type GgufTarget, ggufVocabularySource, HF_TARGETS, type HfTarget, hfTokenizerFiles, writeCheckpointGguf, writeCheckpointHf } from "../tools/convert.ts";
import type { GenerateOptions } from "../text/generate.ts";
import { loadBitNet, type LoadOptions, readCheckpoint, readHfFolder } from "../model/load.ts";
import type { BitNetModel } from "../model/model.ts";
import { BITNET_2B4T_SHAPE, type SynthArch, synthesizeBitNet } from "../tools/synth.ts";
import { type ResolvedTokenizer, resolveTokenizer } from "../text/tokenizer/resolve.ts";
import { loadKernels } from "../runtime/kernels.ts";
import { BitNetError, OptionError } from "../core/errors.ts";
import { appendText, fileSink, isDirectory, openFile, readBytes, writeThrough } from "../runtime/files.ts";
import "../runtime/node.ts"; // the Node / Deno / Bun adapter: paths through node:fs, threads through node:worker_threads
import { readSweepRecord, runSweep, sparsityTarget, splitVariants, sweepChart, sweepTable } from "../eval/sweep.ts";
import { parseVariant } from "../quant/variants.ts";
import { isNonNegativeInteger, isPositiveInteger, numberOption } from "./args.ts";
import { nearestName } from "../core/options.ts";
import { VERSION } from "./version.ts";
import { createHandler, type RequestRecord } from "../server/handler.ts";
import { listen } from "./listen.ts";
import { isHubId } from "../hub/id.ts";
import { cacheHubModel, deleteCachedModel, listCachedModels } from "../hub/resolve.ts";
import type { Progress } from "../runtime/files.ts";
import { throttled } from "../runtime/progress.ts";

const FORMATS = [...GGUF_TARGETS, ...HF_TARGETS].join(" | ");
const MODELS_NOTE = `Models (told by content): llama2.c v0 checkpoints (e.g. stories260K.bin), bitllama ternary
files (ak42), GGUF (architectures llama, bitllama, bitnet-b1.58 as bitnet.cpp writes it,
bitnet as llama.cpp writes it; I2_S, TQ1_0, TQ2_0 weights), and Hugging Face BitNet folders
(config.json + model.safetensors or its shards + tokenizer.json; packed or bf16 masters).
--model also takes a Hugging Face Hub id, hf:ORG/REPO[@REVISION][/FILE]: downloaded once
into the cache ($BITNET_WASM_CACHE, else $XDG_CACHE_HOME/bitnet-wasm, else
~/.cache/bitnet-wasm; --cache-dir), then read from there. HF_ENDPOINT and HF_TOKEN (gated
repos) are honoured as huggingface_hub does; --offline (or HF_HUB_OFFLINE=1) never asks the hub.
Without --tokenizer: the GGUF's own vocabulary, else tokenizer.json, tok512.bin or
tokenizer.bin beside the model (in it, for a folder). --tokenizer takes a llama2.c
tokenizer.bin or a tokenizer.json (told by content), or "none".`;

/** Each command's one-line summary (top-level --help) and synopsis (its own --help). */
const COMMANDS_HELP: Record<string, { summary: string; usage: string; note?: string }> = {
  generate: {
    summary: "continue a prompt, streaming the text to stdout (stderr: load and speed)",
    usage: "bitnet-wasm generate --model F [--prompt S] [options]",
    note: "--json prints { text, tokens, tokensPerSecond, timeToFirstTokenMs, finishReason, usage, simd, threads, model, load } at the end.",
  },
  ppl: { summary: "perplexity of a text, or of token ids, under a model", usage: "bitnet-wasm ppl --model F (--text F | --tokens F) [options]" },
  convert: {
    summary: "write a model as GGUF (F32, I2_S, TQ1_0, TQ2_0) or a Hugging Face folder",
    usage: "bitnet-wasm convert --model F --to FORMAT --out F [options]",
    note: `FORMAT: ${FORMATS} (hf and hf-bf16 write a folder)`,
  },
  synth: {
    summary: "write a BitNet b1.58 model with the 2B4T shapes (flags shrink it) and random weights",
    usage: "bitnet-wasm synth --to FORMAT --out F [options]",
    note: `FORMAT: ${FORMATS} (hf and hf-bf16 write a folder)\n--arch llama: the same shapes and ternary weights under llama's architecture.`,
  },
  serve: {
    summary: "an OpenAI-compatible HTTP API (chat completions, completions, models) for one model",
    usage: "bitnet-wasm serve --model F [--host 127.0.0.1] [--port 8080] [--parallel K] [--queue Q] [options]",
    note: `Endpoints: POST /v1/chat/completions, POST /v1/completions (stream: true for server-sent events),
GET /v1/models, GET /health. One log line per request on stderr. The key may come from the
environment as BITNET_WASM_API_KEY instead of --api-key (which other users can see in ps).`,
  },
  cache: {
    summary: "list the models downloaded from the hub, with their sizes, or delete one",
    usage: "bitnet-wasm cache [list | rm hf:ORG/REPO[@REVISION]] [--cache-dir D] [--json]",
    note: "rm without @REVISION deletes every cached commit of the repo.",
  },
  sweep: {
    summary: "perplexity, bits and speed of quantization variants on one model and text",
    usage: "bitnet-wasm sweep --model F --text F --variants LIST [options]   (or a --grid file giving them)",
    note: `LIST: comma-separated presets (stored,b1.58,a4.8,q-sparse:0.5,...) or, with specs, "b1.58;a4.8,kv=3;..."`,
  },
};

const USAGE = `usage: bitnet-wasm <command> [options]

commands:
${Object.entries(COMMANDS_HELP).map(([name, c]) => `  ${name.padEnd(10)}${c.summary}`).join("\n")}

bitnet-wasm <command> --help lists the command's options and their defaults.
bitnet-wasm --version prints the version.

${MODELS_NOTE}`;

/** What a flag takes, what it does, and its default: one line of a command's --help. */
type FlagDoc = { arg?: string; text: string; default: string };

const FLAG_DOCS: Record<string, FlagDoc> = {
  model: { arg: "F", text: "model file (llama2.c, bitllama, GGUF), Hugging Face folder, or hub id hf:ORG/REPO[@REV][/FILE]", default: "none; required" },
  tokenizer: {
    arg: "F",
    text: "llama2.c tokenizer.bin or tokenizer.json, or none",
    default: "the model's own vocabulary, else tokenizer.json / tok512.bin / tokenizer.bin beside it",
  },
  simd: { arg: "auto|relaxed|strict", text: "kernel build", default: "auto: relaxed where this runtime runs it faster" },
  threads: { arg: "N", text: "threads for the matrix products", default: "1" },
  "lm-head": { arg: "stored|int8", text: "LM head on the embedding as stored, or on rows quantized to int8", default: "stored" },
  context: { arg: "N", text: "KV cache length in tokens", default: "the model's context length" },
  variant: {
    arg: "PRESET|SPEC",
    text: "quantization variant: b1.58, bitnet, fbi, a4.8, v2-a8[:B], v2-a4[:B], reloaded, q-sparse:S, or a spec such as qkv=int4,o=topk:0.5+int8,kv=3:bos8",
    default: "b1.58",
  },
  "bit-order": { arg: "msb|lsb", text: "where a bitllama file's first 2-bit code sits", default: "msb" },
  "cache-dir": { arg: "D", text: "the cache of hub models", default: "$BITNET_WASM_CACHE, else $XDG_CACHE_HOME/bitnet-wasm, else ~/.cache/bitnet-wasm" },
  offline: { text: "load hub models from the cache only, never asking the hub", default: "off; on when $HF_HUB_OFFLINE is 1" },
  json: { text: "print one JSON object", default: "off" },
  help: { text: "print this help", default: "off" },
  prompt: { arg: "S", text: "text to continue", default: "empty: the model starts from BOS alone" },
  "max-tokens": { arg: "N", text: "tokens to generate at most", default: "up to the end of the context" },
  temperature: { arg: "T", text: "sampling temperature; 0 is greedy", default: "1" },
  "top-k": { arg: "K", text: "sample among the K most likely tokens; 0 is off", default: "0" },
  "top-p": { arg: "P", text: "nucleus sampling: the smallest set of tokens with probability >= P", default: "0.9" },
  seed: { arg: "S", text: "seed of the sampler's random stream", default: "the clock" },
  "min-p": { arg: "P", text: "drop tokens less likely than P times the most likely one", default: "0: off" },
  stop: { arg: "S", text: "stop where the text S appears, not printing it (repeatable)", default: "none" },
  "repeat-penalty": { arg: "R", text: "divide the logits of recent tokens by R (negative ones: multiply)", default: "1: off" },
  "frequency-penalty": { arg: "F", text: "subtract F per occurrence from the logits of recent tokens", default: "0: off" },
  "presence-penalty": { arg: "P", text: "subtract P from the logits of tokens present among recent ones", default: "0: off" },
  "penalty-last-n": { arg: "N", text: "how many recent tokens (prompt included) the penalties look at", default: "64" },
  "context-shift": { text: "when the context fills, drop the oldest half of the tokens after --keep and go on", default: "off: generation ends" },
  keep: { arg: "N", text: "tokens at the start that --context-shift keeps", default: "1, the BOS" },
  text: { arg: "F", text: "text file", default: "none; required unless --tokens" },
  tokens: { arg: "F", text: "JSON array of token ids, instead of --text", default: "none" },
  ctx: { arg: "N", text: "evaluation window in tokens", default: "the model's context length" },
  to: { arg: "FORMAT", text: `output format: ${FORMATS}`, default: "none; required" },
  out: { arg: "F", text: "output file (a folder for hf, hf-bf16)", default: "none; required" },
  host: { arg: "H", text: "address to listen on (0.0.0.0: every interface)", default: "127.0.0.1, this machine only" },
  port: { arg: "N", text: "port to listen on (0: any free one)", default: "8080" },
  parallel: { arg: "K", text: "generations at once, each with its own KV cache; their tokens interleave", default: "1" },
  queue: { arg: "Q", text: "requests that may wait for a slot; more get 503 with Retry-After", default: "16" },
  "api-key": { arg: "KEY", text: "require Authorization: Bearer KEY on /v1/", default: "$BITNET_WASM_API_KEY, else none" },
  cors: { arg: "ORIGIN", text: "allow browser calls from ORIGIN (or *)", default: "off" },
  "chat-template": { arg: "F", text: "Jinja chat template for chat completions, for a checkpoint without one", default: "the checkpoint's" },
  alias: { arg: "NAME", text: "the model's name in the API", default: "the file name without its extension" },
  "max-body": { arg: "BYTES", text: "largest request body", default: "1048576" },
};

/** Where a command's flag means something else than FLAG_DOCS says. */
const COMMAND_FLAG_DOCS: Record<string, Record<string, FlagDoc>> = {
  ppl: { json: { text: "print { tokens, loss, perplexity, tokensPerSecond }", default: "off" } },
  convert: { tokenizer: { arg: "F", text: "vocabulary to carry into the file (tokenizer.bin or tokenizer.json)", default: "the model's own, else one beside it" } },
  synth: {
    layers: { arg: "N", text: "layers", default: String(BITNET_2B4T_SHAPE.nLayers) },
    dim: { arg: "N", text: "model width", default: String(BITNET_2B4T_SHAPE.dim) },
    hidden: { arg: "N", text: "feed-forward width", default: String(BITNET_2B4T_SHAPE.hiddenDim) },
    heads: { arg: "N", text: "attention heads", default: String(BITNET_2B4T_SHAPE.nHeads) },
    "kv-heads": { arg: "N", text: "key / value heads", default: String(BITNET_2B4T_SHAPE.nKvHeads) },
    vocab: { arg: "N", text: "vocabulary size", default: String(BITNET_2B4T_SHAPE.vocabSize) },
    context: { arg: "N", text: "the model's context length", default: String(BITNET_2B4T_SHAPE.seqLen) },
    embedding: { arg: "f16|bf16|f32", text: "storage of the embedding table", default: "f16" },
    seed: { arg: "S", text: "seed of the random weights", default: "1" },
    arch: { arg: "bitnet-b1.58|llama", text: "architecture written", default: "bitnet-b1.58" },
    tokenizer: { arg: "F", text: "vocabulary to carry into the file (tokenizer.bin or tokenizer.json)", default: "none" },
    simd: { arg: "auto|relaxed|strict", text: "kernel build used to encode the weights", default: "auto" },
  },
  sweep: {
    model: { arg: "F", text: "model file or Hugging Face folder", default: "the grid's; required" },
    text: { arg: "F", text: "text file", default: "the grid's; required" },
    variants: { arg: "LIST", text: "variants to measure (see below)", default: "the grid's; required" },
    grid: { arg: "F.json", text: "a JSON file giving any of model, text, ctx, variants", default: "none" },
    ctx: { arg: "N", text: "evaluation window in tokens", default: "the grid's, else the model's context length" },
    out: { arg: "PREFIX", text: "writes PREFIX.jsonl, PREFIX.md and PREFIX.svg; a rerun skips what PREFIX.jsonl has", default: "sweep" },
    "decode-tokens": { arg: "N", text: "tokens decoded to time each variant", default: "32" },
  },
};

/** A command's --help: its synopsis, then each flag (its own first) with its argument, meaning and default. */
function commandHelp(command: string, options: ParseArgsOptionsConfig): string {
  // The model first, then the command's own flags, then the loading ones it shares with others.
  const own = Object.keys(options).filter((k) => !(k in common)), shared = Object.keys(options).filter((k) => k in common && k !== "model" && k !== "help");
  const rows = ["model", ...own, ...shared, "help"].filter((k) => k in options).map((name) => {
    const doc = COMMAND_FLAG_DOCS[command]?.[name] ?? FLAG_DOCS[name];
    const short = options[name].short;
    const flag = `${short ? `-${short}, ` : ""}--${name}${doc?.arg ? ` ${doc.arg}` : ""}`;
    return [flag, doc ? `${doc.text} (default: ${doc.default})` : "(undocumented)"];
  });
  const width = Math.min(26, Math.max(...rows.map(([flag]) => flag.length)) + 2);
  const lines = rows.map(([flag, text]) => (flag.length + 2 > width ? `  ${flag}\n  ${" ".repeat(width)}${text}` : `  ${flag.padEnd(width)}${text}`));
  const { usage, summary, note } = COMMANDS_HELP[command];
  return `usage: ${usage}\n\n${summary[0].toUpperCase()}${summary.slice(1)}.\n\noptions:\n${lines.join("\n")}${note ? `\n\n${note}` : ""}`;
}

/**
 * Parses a command's flags. Unknown flags are an OptionError naming the flag and the nearest
 * known one; --help prints the command's help and gives null.
 */
function parseFlags<const T extends ParseArgsOptionsConfig>(command: string, args: string[], options: T) {
  // Unknown flags first, from the tokens (so the message does not depend on the runtime's parseArgs wording).
  const { tokens } = parseArgs({ args, options, strict: false, tokens: true });
  for (const token of tokens) {
    if (token.kind !== "option" || Object.hasOwn(options, token.name)) continue;
    const near = token.rawName.startsWith("--") ? nearestName(token.name, Object.keys(options)) : undefined;
    throw new OptionError(token.rawName, `not an option of ${command}${near ? ` (did you mean --${near}?)` : ""}; bitnet-wasm ${command} --help lists them`);
  }
  const { values } = parseArgs({ args, options, strict: true });
  if ((values as { help?: boolean }).help) {
    console.log(commandHelp(command, options));
    return null;
  }
  return values;
}

/** stdout was closed under us (`bitnet-wasm generate ... | head`): the run ends quietly. */
class StdoutClosed extends Error {}

/** Writes to stdout; a closed pipe stops the command at once instead of generating for nobody. */
function out(text: string): void {
  process.stdout.write(text);
  // Node and Deno mark the stream errored at the failed write but emit 'error' only later.
  if ((process.stdout.errored as { code?: string } | null)?.code === "EPIPE") throw new StdoutClosed();
}

const common = {
  model: { type: "string" },
  tokenizer: { type: "string" },
  simd: { type: "string" },
  threads: { type: "string" },
  "lm-head": { type: "string" },
  context: { type: "string" },
  variant: { type: "string" },
  "bit-order": { type: "string" },
  "cache-dir": { type: "string" },
  offline: { type: "boolean" },
  json: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

/** Download progress on stderr: one line per file, redrawn in place on a terminal, every 2 s otherwise. */
function downloadReporter(): (p: Progress) => void {
  const tty = process.stderr.isTTY;
  let last = 0;
  return throttled((p) => {
    if (p.phase !== "download") return;
    const now = performance.now(), complete = p.total !== undefined && p.loaded >= p.total;
    if (!tty && !complete && now - last < 2000) return;
    last = now;
    const mb = (n: number) => (n / 1e6).toFixed(1);
    const of = p.total === undefined ? "" : ` of ${mb(p.total)} MB (${((100 * p.loaded) / Math.max(p.total, 1)).toFixed(0)}%)`;
    process.stderr.write(`downloading ${p.file}: ${mb(p.loaded)} MB${of}${tty && !complete ? "\x1b[K\r" : "\n"}`);
  });
}

/** The loading flags as loadBitNet options (the library checks them; it also looks up the tokenizer). */
/** The model, after its notices went to stderr. */
function noticed(model: BitNetModel): BitNetModel {
  for (const notice of model.notices) console.error(`notice: ${notice}`);
  return model;
}

function modelOptions(values: Record<string, unknown>): LoadOptions {
  return {
    cacheDir: values["cache-dir"] as string | undefined,
    offline: values.offline as boolean | undefined,
    onProgress: downloadReporter(),
    tokenizer: values.tokenizer as string | undefined,
    simd: values.simd as LoadOptions["simd"],
    threads: numberOption(values, "threads", isPositiveInteger, "an integer > 0"),
    bitOrder: values["bit-order"] as LoadOptions["bitOrder"],
    lmHead: values["lm-head"] as LoadOptions["lmHead"],
    variant: values.variant as string | undefined,
    contextLength: numberOption(values, "context", isPositiveInteger, "an integer > 0"),
  };
}

/** Peak resident memory of this process so far, in bytes (where the runtime reports it). */
function peakRss(): number | undefined {
  try {
    return process.resourceUsage().maxRSS * 1024;
  } catch {
    return undefined;
  }
}

const mib = (bytes: number | undefined) => (bytes === undefined ? "n/a" : `${(bytes / 2 ** 20).toFixed(0)} MiB`);

async function generate(args: string[]): Promise<void> {
  const values = parseFlags("generate", args, {
    ...common,
    prompt: { type: "string" },
    "max-tokens": { type: "string" },
    temperature: { type: "string" },
    "top-k": { type: "string" },
    "top-p": { type: "string" },
    seed: { type: "string" },
    "min-p": { type: "string" },
    stop: { type: "string", multiple: true },
    "repeat-penalty": { type: "string" },
    "frequency-penalty": { type: "string" },
    "presence-penalty": { type: "string" },
    "penalty-last-n": { type: "string" },
    "context-shift": { type: "boolean" },
    keep: { type: "string" },
  });
  if (!values) return;
  const keep = numberOption(values, "keep", isNonNegativeInteger, "an integer >= 0");
  if (keep !== undefined && !values["context-shift"]) throw new OptionError("--keep", "goes with --context-shift");
  const options: GenerateOptions = {
    maxTokens: numberOption(values, "max-tokens", isPositiveInteger, "an integer > 0"),
    temperature: numberOption(values, "temperature", (n) => n >= 0, "a number >= 0"),
    topK: numberOption(values, "top-k", isNonNegativeInteger, "an integer >= 0"),
    topP: numberOption(values, "top-p", (n) => n > 0 && n <= 1, "a number in (0, 1]"),
    seed: numberOption(values, "seed", Number.isInteger, "an integer"),
    minP: numberOption(values, "min-p", (n) => n >= 0 && n < 1, "a number in [0, 1)"),
    repetitionPenalty: numberOption(values, "repeat-penalty", (n) => n > 0, "a number > 0"),
    frequencyPenalty: numberOption(values, "frequency-penalty", Number.isFinite, "a number"),
    presencePenalty: numberOption(values, "presence-penalty", Number.isFinite, "a number"),
    penaltyLastN: numberOption(values, "penalty-last-n", isNonNegativeInteger, "an integer >= 0"),
    stop: values.stop,
    contextShift: values["context-shift"] ? { keep } : undefined,
  };
  const model = values.model;
  if (model === undefined) {
    throw new BitNetError(
      `generate needs --model F: a model file or Hugging Face folder.\n` +
        `  bitnet-wasm generate --model path/to/model.bin [--tokenizer path/to/tokenizer.bin] --prompt "Once upon a time"\n` +
        `(llama2.c: stories15M.bin + tokenizer.bin from karpathy/llama2.c; bitllama: bit_model.bin from HKUSTGZ-MICS-LYU/bitllama2.c)`,
    );
  }
  const loadStart = performance.now();
  using m = noticed(await loadBitNet(model, modelOptions(values))); // disposed at the end: the process then exits
  const load = { seconds: (performance.now() - loadStart) / 1000, wasmBytes: m.memoryBytes, peakRssBytes: peakRss() };
  if (!values.json) console.error(`loaded ${model} in ${load.seconds.toFixed(2)} s: WebAssembly memory ${mib(load.wasmBytes)}, peak RSS ${mib(load.peakRssBytes)}`);
  const prompt = values.prompt ?? "";
  if (!values.json) out(prompt);
  const generation = m.generate(prompt, options);
  let step;
  while (!(step = await generation.next()).done) if (!values.json) out(step.value.text);
  if (!values.json) out("\n");
  // The first token costs the prompt's prefill; decode speed counts the tokens after it.
  const { text, tokens, finishReason, usage, timings } = step.value;
  const summary = {
    text,
    tokens: tokens.length,
    tokensPerSecond: timings.tokensPerSecond,
    timeToFirstTokenMs: timings.prefillMs,
    finishReason,
    usage,
    simd: m.simd,
    threads: m.threads,
    model,
    load,
  };
  if (values.json) console.log(JSON.stringify(summary));
  else {console.error(
      `\n${tokens.length} tokens (${finishReason}), ${timings.tokensPerSecond.toFixed(1)} tok/s (${m.simd} SIMD, ${m.threads} thread${m.threads > 1 ? "s" : ""}, ${model})`,
    );}
}

/** A JSON array of token ids (to compare perplexities with other tools on identical tokens). */
async function readTokenFile(path: string): Promise<number[]> {
  let ids: unknown;
  try {
    ids = JSON.parse(new TextDecoder().decode(await readBytes(path)));
  } catch (e) {
    throw new BitNetError(`${path}: not valid JSON (${(e as Error).message})`);
  }
  if (!Array.isArray(ids) || ids.some((t) => !Number.isInteger(t) || t < 0)) throw new BitNetError(`${path}: expected a JSON array of token ids`);
  return ids;
}

async function ppl(args: string[]): Promise<void> {
  const values = parseFlags("ppl", args, { ...common, text: { type: "string" }, tokens: { type: "string" }, ctx: { type: "string" } });
  if (!values) return;
  if (!values.model) throw new BitNetError("ppl needs --model F");
  if (!values.text === !values.tokens) throw new BitNetError("ppl needs one of --text F or --tokens F");
  const ctx = numberOption(values, "ctx", isPositiveInteger, "an integer > 0");
  const options = modelOptions(values);
  using m = noticed(await loadBitNet(values.model, values.tokens ? { ...options, tokenizer: "none" } : options));
  const text = values.tokens ? await readTokenFile(values.tokens) : new TextDecoder().decode(await readBytes(values.text!));
  const tty = process.stderr.isTTY;
  let lastReport = 0;
  const result = await m.perplexity(text, {
    ctx,
    onProgress: ({ done, total }) => {
      const now = performance.now();
      if (done < total && now - lastReport < 1000) return;
      lastReport = now;
      process.stderr.write(`ppl: ${done}/${total} tokens${tty ? "\r" : "\n"}`);
    },
  });
  if (tty) process.stderr.write("\n");
  if (values.json) console.log(JSON.stringify(result));
  else console.log(`tokens ${result.tokens}  loss ${result.loss.toFixed(4)}  perplexity ${result.perplexity.toFixed(4)}  ${result.tokensPerSecond.toFixed(0)} tok/s`);
}

/** Writes a checkpoint in a target format, with its tokenizer: a GGUF file (vocabulary and chat
 *  template in the metadata), or a Hugging Face folder (tokenizer.json + tokenizer_config.json, or tokenizer.bin). */
async function writeTarget(ckpt: Checkpoint, resolved: ResolvedTokenizer | null, to: string, out: string, simd: LoadOptions["simd"]): Promise<void> {
  const kernels = await loadKernels({ simd });
  if ((HF_TARGETS as readonly string[]).includes(to)) {
    const fs = await import("node:fs/promises");
    await fs.mkdir(out, { recursive: true });
    const config = await writeThrough(await fileSink(`${out}/model.safetensors`), (sink) => writeCheckpointHf(kernels, ckpt, to as HfTarget, sink));
    await fs.writeFile(`${out}/config.json`, config);
    for (const [name, bytes] of hfTokenizerFiles(resolved)) await fs.writeFile(`${out}/${name}`, bytes);
  } else {
    if (!(GGUF_TARGETS as readonly string[]).includes(to)) {
      throw new OptionError("--to", `expected one of ${[...GGUF_TARGETS, ...HF_TARGETS].join(", ")}, got ${JSON.stringify(to)}`);
    }
    await writeThrough(await fileSink(out), (sink) => writeCheckpointGguf(kernels, ckpt, ggufVocabularySource(resolved?.tokenizer ?? null), to as GgufTarget, sink));
  }
  if (!resolved?.tokenizer) console.error(`note: ${out} carries no tokenizer (load it with one, or with tokenizer "none")`);
  console.error(`wrote ${out} (${to}, ${ckpt.config.arch} architecture, ${ckpt.config.nLayers} layers, from ${ckpt.file}); peak RSS ${mib(peakRss())}`);
}

async function convert(args: string[]): Promise<void> {
  const values = parseFlags("convert", args, {
    model: common.model,
    to: { type: "string" },
    out: { type: "string" },
    tokenizer: common.tokenizer,
    simd: common.simd,
    "bit-order": common["bit-order"],
    "cache-dir": common["cache-dir"],
    offline: common.offline,
    help: common.help,
  });
  if (!values) return;
  if (!values.model || !values.to || !values.out) throw new BitNetError("convert needs --model F --to FORMAT --out F");
  const options = modelOptions(values);
  const model = isHubId(values.model) ? (await cacheHubModel(values.model, options)).source as string : values.model;
  const folder = await isDirectory(model);
  const ckpt = folder ? await readHfFolder(model) : await readCheckpoint(await openFile(model), options);
  try {
    // The vocabulary to carry over, found as loadBitNet finds it (--tokenizer, the file's own, beside the model).
    await writeTarget(ckpt, await resolveTokenizer(model, ckpt, options.tokenizer), values.to, values.out, options.simd);
  } finally {
    await ckpt.source.close();
  }
}

async function synth(args: string[]): Promise<void> {
  const values = parseFlags("synth", args, {
    to: { type: "string" },
    out: { type: "string" },
    layers: { type: "string" },
    dim: { type: "string" },
    hidden: { type: "string" },
    heads: { type: "string" },
    "kv-heads": { type: "string" },
    vocab: { type: "string" },
    context: common.context,
    embedding: { type: "string" },
    seed: { type: "string" },
    arch: { type: "string" },
    tokenizer: common.tokenizer,
    simd: common.simd,
    help: common.help,
  });
  if (!values) return;
  if (!values.to || !values.out) throw new BitNetError("synth needs --to FORMAT --out F");
  const int = (name: string) => numberOption(values, name, isPositiveInteger, "an integer > 0");
  const d = BITNET_2B4T_SHAPE;
  const shape = {
    nLayers: int("layers") ?? d.nLayers,
    dim: int("dim") ?? d.dim,
    hiddenDim: int("hidden") ?? d.hiddenDim,
    nHeads: int("heads") ?? d.nHeads,
    nKvHeads: int("kv-heads") ?? d.nKvHeads,
    vocabSize: int("vocab") ?? d.vocabSize,
    seqLen: int("context") ?? d.seqLen,
  };
  const { checkpoint } = await synthesizeBitNet(shape, {
    seed: numberOption(values, "seed", Number.isInteger, "an integer") ?? 1,
    embedding: values.embedding as "f16" | "bf16" | "f32" | undefined,
    arch: values.arch as SynthArch | undefined,
  });
  // A vocabulary to carry into the file (other engines need one), e.g. Llama 3's tokenizer.json for the 2B4T shape.
  const tokenizer = values.tokenizer ? await resolveTokenizer(null, checkpoint, values.tokenizer) : null;
  await writeTarget(checkpoint, tokenizer, values.to, values.out, values.simd as LoadOptions["simd"]);
}

async function serve(args: string[]): Promise<void> {
  const { json: _, ...loading } = common;
  const values = parseFlags("serve", args, {
    ...loading,
    host: { type: "string" },
    port: { type: "string" },
    parallel: { type: "string" },
    queue: { type: "string" },
    "api-key": { type: "string" },
    cors: { type: "string" },
    "chat-template": { type: "string" },
    alias: { type: "string" },
    "max-body": { type: "string" },
  });
  if (!values) return;
  if (!values.model) throw new BitNetError("serve needs --model F: a model file or Hugging Face folder");
  const chatTemplate = values["chat-template"] ? new TextDecoder().decode(await readBytes(values["chat-template"])) : undefined;
  const name = values.alias ?? values.model.replace(/\/+$/, "").split("/").pop()!.replace(/\.(bin|gguf)$/, "");
  const handler = (model: Awaited<ReturnType<typeof loadBitNet>>) =>
    createHandler({ [name]: model }, {
      parallel: numberOption(values, "parallel", isPositiveInteger, "an integer > 0"),
      queue: numberOption(values, "queue", isNonNegativeInteger, "an integer >= 0"),
      maxBodyBytes: numberOption(values, "max-body", isPositiveInteger, "an integer > 0"),
      apiKey: values["api-key"] ?? (process.env.BITNET_WASM_API_KEY || undefined),
      cors: values.cors,
      onRequest: (r) => console.error(logLine(r)),
    });
  const port = numberOption(values, "port", (n) => isNonNegativeInteger(n) && n < 65536, "a port number 0..65535") ?? 8080;
  const host = values.host ?? "127.0.0.1";
  const model = noticed(await loadBitNet(values.model, { ...modelOptions(values), chatTemplate }));
  const server = await listen(handler(model), { host, port });
  console.error(`serving ${name} (${model.simd} SIMD, ${model.threads} thread${model.threads > 1 ? "s" : ""}, context ${model.config.seqLen}) on ${server.url}`);
  const stop = async (signal: string) => {
    await server.close();
    model.dispose();
    console.error(`stopped (${signal})`);
    process.exit(0);
  };
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
}

/** One access-log line: what was asked, the answer, and where the time went. */
function logLine(r: RequestRecord): string {
  const ms = (v: number | undefined) => (v === undefined ? "" : `${v.toFixed(0)}ms`);
  const fields = [
    r.method,
    r.path,
    r.status,
    r.model,
    r.promptTokens !== undefined ? `prompt=${r.promptTokens}` : "",
    r.cachedTokens ? `cached=${r.cachedTokens}` : "",
    r.completionTokens !== undefined ? `completion=${r.completionTokens}` : "",
    r.finishReason ?? "",
    r.queuedMs !== undefined ? `queued=${ms(r.queuedMs)}` : "",
    r.firstTokenMs !== undefined ? `first=${ms(r.firstTokenMs)}` : "",
    `total=${ms(r.totalMs)}`,
    r.error ? `: ${r.error}` : "",
  ];
  return fields.filter((f) => f !== "" && f !== undefined).join(" ");
}

async function sweep(args: string[]): Promise<void> {
  const values = parseFlags("sweep", args, {
    model: common.model,
    text: { type: "string" },
    variants: { type: "string" },
    grid: { type: "string" },
    ctx: { type: "string" },
    out: { type: "string" },
    "decode-tokens": { type: "string" },
    tokenizer: common.tokenizer,
    simd: common.simd,
    "lm-head": common["lm-head"],
    "cache-dir": common["cache-dir"],
    offline: common.offline,
    help: common.help,
  });
  if (!values) return;
  // A grid file may give the model, text, ctx and variants; flags fill in the rest.
  let grid: { model?: string; text?: string; ctx?: number; variants?: string[] } = {};
  if (values.grid) {
    try {
      grid = JSON.parse(new TextDecoder().decode(await readBytes(values.grid)));
    } catch (e) {
      throw new BitNetError(`${values.grid}: not valid JSON (${(e as Error).message})`);
    }
    if (grid.variants !== undefined && (!Array.isArray(grid.variants) || grid.variants.some((v) => typeof v !== "string"))) {
      throw new BitNetError(`${values.grid}: "variants" must be an array of strings`);
    }
  }
  const model = values.model ?? grid.model, textPath = values.text ?? grid.text;
  const variants = values.variants ? splitVariants(values.variants) : grid.variants;
  if (!model || !textPath || !variants?.length) throw new BitNetError("sweep needs --model F, --text F and --variants LIST (or a --grid file giving them)");
  const ctx = numberOption(values, "ctx", isPositiveInteger, "an integer > 0") ?? grid.ctx;
  for (const v of variants) if (v !== "stored" && sparsityTarget(v) === undefined) parseVariant(v); // every name checked before the first run
  const prefix = values.out ?? "sweep", jsonl = `${prefix}.jsonl`;
  const done = await readSweepRecord(jsonl); // a last line cut short by a kill is dropped
  const options = modelOptions(values);
  const tty = process.stderr.isTTY;
  let last = 0;
  const results = await runSweep({
    ...options,
    model: isHubId(model) ? (await cacheHubModel(model, options)).source as string : model, // downloaded once, not once per variant
    text: new TextDecoder().decode(await readBytes(textPath)),
    textName: textPath.split("/").pop()!,
    variants,
    ctx,
    done,
    decodeTokens: numberOption(values, "decode-tokens", isPositiveInteger, "an integer > 0"),
    onResult: (r) => appendText(jsonl, JSON.stringify(r) + "\n"),
    onProgress: ({ variant, index, count, done, total }) => {
      const now = performance.now();
      if (!tty && done < total && now - last < 2000) return;
      last = now;
      const width = 24, filled = Math.round((width * done) / total);
      process.stderr.write(`[${index + 1}/${count}] ${"#".repeat(filled)}${".".repeat(width - filled)} ${variant}: ${done}/${total} tokens${tty ? "\x1b[K\r" : "\n"}`);
    },
  });
  if (tty) process.stderr.write("\n");
  const title = `${String(model).split("/").pop()} on ${textPath.split("/").pop()}${ctx ? ` (ctx ${ctx})` : ""}`;
  const table = sweepTable(results);
  const fs = await import("node:fs/promises");
  await fs.writeFile(`${prefix}.md`, `# ${title}\n\n${table}\n`);
  await fs.writeFile(`${prefix}.svg`, sweepChart(results, title));
  console.log(table);
  console.error(`wrote ${jsonl}, ${prefix}.md, ${prefix}.svg`);
}

async function cache(args: string[]): Promise<void> {
  const values = parseFlags("cache", args.filter((a) => !/^(list|rm)$/.test(a) && !isHubId(a)), { "cache-dir": common["cache-dir"], json: common.json, help: common.help });
  if (!values) return;
  const [action = "list", ...ids] = args.filter((a) => /^(list|rm)$/.test(a) || isHubId(a));
  const options = { cacheDir: values["cache-dir"] };
  if (action === "rm") {
    if (ids.length === 0) throw new BitNetError("cache rm needs the model to delete: bitnet-wasm cache rm hf:ORG/REPO[@REVISION]");
    for (const id of ids) {
      const freed = await deleteCachedModel(id, options);
      if (values.json) console.log(JSON.stringify({ deleted: id, bytes: freed }));
      else console.log(freed ? `deleted ${id}: ${(freed / 1e6).toFixed(1)} MB freed` : `${id}: not in the cache`);
    }
    return;
  }
  if (action !== "list" || ids.length) throw new BitNetError(`cache takes "list" or "rm hf:ORG/REPO[@REVISION]", got ${JSON.stringify(args.join(" "))}`);
  const models = await listCachedModels(options);
  if (values.json) return console.log(JSON.stringify(models));
  if (models.length === 0) return console.log("no hub models in the cache");
  for (const m of models) {
    const refs = m.refs.length ? ` (${m.refs.join(", ")})` : "", partial = m.partialBytes ? `, ${(m.partialBytes / 1e6).toFixed(1)} MB of unfinished downloads` : "";
    console.log(`${m.id}${refs}  ${(m.size / 1e6).toFixed(1)} MB${partial}\n${m.files.map((f) => `  ${f.name}  ${(f.size / 1e6).toFixed(1)} MB`).join("\n")}`);
  }
}

// A reader that goes away (`| head`) ends the run quietly, whichever stream it was on.
for (const stream of [process.stdout, process.stderr]) {
  stream.on("error", (e: { code?: string }) => {
    if (e.code !== "EPIPE") throw e;
    process.exit(0);
  });
}

const [command, ...rest] = process.argv.slice(2);
const commands: Record<string, (args: string[]) => Promise<void>> = { generate, ppl, convert, synth, serve, sweep, cache };
try {
  if (!command || command === "--help" || command === "-h") console.log(USAGE);
  else if (command === "--version" || command === "-v") console.log(VERSION);
  else if (!Object.hasOwn(commands, command)) {
    const near = nearestName(command, Object.keys(commands));
    const what = command.startsWith("-") ? `unknown option ${command}` : `unknown command ${JSON.stringify(command)}${near ? ` (did you mean ${near}?)` : ""}`;
    throw new BitNetError(`${what}\n\n${USAGE}`);
  } else await commands[command](rest);
} catch (e) {
  if (e instanceof StdoutClosed) process.exit(0);
  const known = e instanceof BitNetError || (e as { code?: string }).code?.startsWith("ERR_PARSE_ARGS");
  console.error(known ? `bitnet-wasm: ${(e as Error).message}` : e);
  process.exitCode = known ? 2 : 1;
}
