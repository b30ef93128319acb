#!/usr/bin/env node
// bitnet-wasm command line: generate text or measure perplexity with a model file.
// Results go to stdout; progress and diagnostics to stderr.
import process from "node:process";
import { parseArgs } from "node:util";
import type { Checkpoint } from "../model/checkpoint.ts";
import { GGUF_TARGETS, type GgufTarget, type GgufVocabularySource, HF_TARGETS, type HfTarget, writeCheckpointGguf, writeCheckpointHf } from "../model/convert.ts";
import { loadBitNet, type LoadOptions, readCheckpoint, readHfFolder, readHfFolderTokenizer, tokenizerFromBytes } from "../model/load.ts";
import { BpeTokenizer } from "../model/tokenizer/bpe.ts";
import { BITNET_2B4T_SHAPE, type SynthArch, synthesizeBitNet } from "../model/synth.ts";
import { Llama2cTokenizer } from "../model/tokenizer/llama2c.ts";
import { loadKernels } from "../runtime/kernels.ts";
import { BitNetError, OptionError } from "../model/errors.ts";
import { appendText, type ByteSink, fileExists, fileSink, isDirectory, openFile, readBytes } from "../runtime/files.ts";
import { runSweep, splitVariants, sweepChart, sweepTable } from "../eval/sweep.ts";
import { parseVariant } from "../quant/variants.ts";
import { isNonNegativeInteger, isPositiveInteger, numberOption } from "./args.ts";

const DEFAULT_MODEL = "../shared/data/models/bitllama-3M.bin";
const SHARED_TOKENIZER = "../shared/data/models/tok512.bin";

const USAGE = `usage:
  bitnet-wasm generate [--model F] [--tokenizer F] [--prompt S] [--max-tokens N]
                       [--temperature T] [--top-k K] [--top-p P] [--seed S] [--json]
  bitnet-wasm ppl --model F (--text F | --tokens F) [--tokenizer F] [--ctx N] [--json]
  bitnet-wasm convert --model F --to FORMAT --out F [--tokenizer F]
  bitnet-wasm sweep --model F --text F --variants LIST [--grid F.json] [--ctx N] [--out PREFIX]
                    [--decode-tokens N]   (LIST: stored,b1.58,a4.8,q-sparse:0.5,... or, with specs, "b1.58;a4.8,kv=3;...")
  bitnet-wasm synth [--layers N] [--dim N] [--hidden N] [--heads N] [--kv-heads N] [--vocab N]
                    [--context N] [--embedding f16|bf16|f32] [--seed S] [--tokenizer F] [--arch bitnet-b1.58|llama]
                    --to FORMAT --out F
common: [--simd auto|relaxed|strict] [--threads N] [--lm-head stored|int8] [--context N] [--bit-order msb|lsb]
        [--variant b1.58|a4.8|q-sparse:S|SPEC]  (SPEC: qkv=int4,o=topk:0.5+int8,gateup=int4,down=int8)
FORMAT: ${[...GGUF_TARGETS, ...HF_TARGETS].join(" | ")} (hf and hf-bf16 write a folder)

Models (told by content): llama2.c v0 checkpoints (e.g. stories260K.bin), bitllama ternary
files (ak42), GGUF (architectures llama, bitllama, bitnet-b1.58 as bitnet.cpp writes it,
bitnet as llama.cpp writes it; I2_S, TQ1_0, TQ2_0 weights), and Hugging Face BitNet folders
(config.json + model.safetensors or its shards + tokenizer.json; packed or bf16 masters).
synth writes a BitNet b1.58 model with the 2B4T shapes (flags shrink it) and random weights
(--arch llama: the same shapes and ternary weights under llama's architecture).
Without --model, generate uses ${DEFAULT_MODEL}.
Without --tokenizer: the GGUF's own vocabulary, a Hugging Face folder's tokenizer.json, or
tok512.bin / tokenizer.bin beside the model, then ${SHARED_TOKENIZER}.
--tokenizer takes a llama2.c tokenizer.bin or a tokenizer.json.`;

const common = {
  model: { type: "string" }, tokenizer: { type: "string" }, simd: { type: "string" }, threads: { type: "string" }, "lm-head": { type: "string" },
  context: { type: "string" }, variant: { type: "string" }, "bit-order": { type: "string" }, json: { type: "boolean" }, help: { type: "boolean", short: "h" },
} as const;

async function modelOptions(values: Record<string, unknown>, model: string): Promise<LoadOptions> {
  let tokenizer = values.tokenizer as string | undefined;
  // The shared tokenizer serves the shared models (which carry no vocabulary of their own).
  if (tokenizer === undefined && model.startsWith("../shared/") && (await fileExists(SHARED_TOKENIZER))) tokenizer = SHARED_TOKENIZER;
  return {
    tokenizer, simd: values.simd as LoadOptions["simd"], threads: numberOption(values, "threads", isPositiveInteger, "an integer > 0"), bitOrder: values["bit-order"] as LoadOptions["bitOrder"],
    lmHead: values["lm-head"] as LoadOptions["lmHead"], variant: values.variant as string | undefined, contextLength: numberOption(values, "context", isPositiveInteger, "an integer > 0"),
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
  const { values } = parseArgs({
    args, strict: true,
    options: {
      ...common, prompt: { type: "string" }, "max-tokens": { type: "string" }, temperature: { type: "string" },
      "top-k": { type: "string" }, "top-p": { type: "string" }, seed: { type: "string" },
    },
  });
  if (values.help) return console.log(USAGE);
  const model = values.model ?? DEFAULT_MODEL;
  if (values.model === undefined && !(await fileExists(model))) {
    throw new BitNetError(
      `the default model ${DEFAULT_MODEL} is not here (it comes with the project's shared data).\n` +
        `Point at a real checkpoint: bitnet-wasm generate --model path/to/model.bin [--tokenizer path/to/tokenizer.bin]\n` +
        `(llama2.c: stories15M.bin + tokenizer.bin from karpathy/llama2.c; bitllama: bit_model.bin from HKUSTGZ-MICS-LYU/bitllama2.c)`,
    );
  }
  const options = {
    maxTokens: numberOption(values, "max-tokens", isPositiveInteger, "an integer > 0"),
    temperature: numberOption(values, "temperature", (n) => n >= 0, "a number >= 0"),
    topK: numberOption(values, "top-k", isNonNegativeInteger, "an integer >= 0"),
    topP: numberOption(values, "top-p", (n) => n > 0 && n <= 1, "a number in (0, 1]"),
    seed: numberOption(values, "seed", Number.isInteger, "an integer"),
  };
  const loadStart = performance.now();
  const m = await loadBitNet(model, await modelOptions(values, model));
  const load = { seconds: (performance.now() - loadStart) / 1000, wasmBytes: m.memoryBytes, peakRssBytes: peakRss() };
  if (!values.json) console.error(`loaded ${model} in ${load.seconds.toFixed(2)} s: WebAssembly memory ${mib(load.wasmBytes)}, peak RSS ${mib(load.peakRssBytes)}`);
  const prompt = values.prompt ?? "";
  let text = "", tokens = 0, firstAt = 0;
  const started = performance.now();
  if (!values.json) process.stdout.write(prompt);
  for await (const piece of m.generate(prompt, options)) {
    if (tokens === 0) firstAt = performance.now();
    if (piece.token >= 0) tokens++;
    text += piece.text;
    if (!values.json) process.stdout.write(piece.text);
  }
  const ended = performance.now();
  // The first token costs the prompt's prefill; decode speed counts the tokens after it.
  const tokensPerSecond = tokens > 1 ? ((tokens - 1) * 1000) / (ended - firstAt) : 0;
  const summary = { text, tokens, tokensPerSecond, timeToFirstTokenMs: firstAt ? firstAt - started : 0, simd: m.simd, threads: m.threads, model, load };
  if (values.json) console.log(JSON.stringify(summary));
  else console.error(`\n\n${tokens} tokens, ${tokensPerSecond.toFixed(1)} tok/s (${m.simd} SIMD, ${m.threads} thread${m.threads > 1 ? "s" : ""}, ${model})`);
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
  const { values } = parseArgs({ args, strict: true, options: { ...common, text: { type: "string" }, tokens: { type: "string" }, ctx: { type: "string" } } });
  if (values.help) return console.log(USAGE);
  if (!values.model) throw new BitNetError("ppl needs --model F");
  if (!values.text === !values.tokens) throw new BitNetError("ppl needs one of --text F or --tokens F");
  const ctx = numberOption(values, "ctx", isPositiveInteger, "an integer > 0");
  const options = await modelOptions(values, values.model);
  const m = await loadBitNet(values.model, values.tokens ? { ...options, tokenizer: undefined } : options);
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

/** Writes a checkpoint in a target format: a GGUF file, or a Hugging Face folder. */
async function writeTarget(ckpt: Checkpoint, tokenizer: GgufVocabularySource | null, to: string, out: string, simd: LoadOptions["simd"]): Promise<void> {
  const kernels = await loadKernels({ simd });
  let sink: ByteSink;
  if ((HF_TARGETS as readonly string[]).includes(to)) {
    const fs = await import("node:fs/promises");
    await fs.mkdir(out, { recursive: true });
    sink = await fileSink(`${out}/model.safetensors`);
    const config = await writeCheckpointHf(kernels, ckpt, to as HfTarget, sink).finally(() => sink.close());
    await fs.writeFile(`${out}/config.json`, config);
  } else {
    if (!(GGUF_TARGETS as readonly string[]).includes(to)) throw new OptionError("--to", `expected one of ${[...GGUF_TARGETS, ...HF_TARGETS].join(", ")}, got ${JSON.stringify(to)}`);
    sink = await fileSink(out);
    await writeCheckpointGguf(kernels, ckpt, tokenizer, to as GgufTarget, sink).finally(() => sink.close());
  }
  console.error(`wrote ${out} (${to}, ${ckpt.config.arch} architecture, ${ckpt.config.nLayers} layers, from ${ckpt.file}); peak RSS ${mib(peakRss())}`);
}

async function convert(args: string[]): Promise<void> {
  const { values } = parseArgs({ args, strict: true, options: { ...common, to: { type: "string" }, out: { type: "string" } } });
  if (values.help) return console.log(USAGE);
  if (!values.model || !values.to || !values.out) throw new BitNetError("convert needs --model F --to FORMAT --out F");
  const options = await modelOptions(values, values.model);
  const folder = await isDirectory(values.model);
  const ckpt = folder ? await readHfFolder(values.model) : await readCheckpoint(await openFile(values.model), options);
  try {
    // The vocabulary to carry over: the file's own, the folder's tokenizer.json, or --tokenizer.
    const v = ckpt.vocabulary, given = options.tokenizer as string | undefined;
    let tokenizer: GgufVocabularySource | null = null;
    if (v) tokenizer = v.kind === "spm" ? Llama2cTokenizer.fromGguf(v.tokens, v.scores) : BpeTokenizer.fromGguf(v, values.model);
    else if (given) tokenizer = Llama2cTokenizer.fromBin(await readBytes(given), ckpt.config.vocabSize, given);
    else if (folder) tokenizer = (await readHfFolderTokenizer(values.model)) as BpeTokenizer | null;
    else if (ckpt.config.vocabSize === 512 && (await fileExists(SHARED_TOKENIZER))) {
      tokenizer = Llama2cTokenizer.fromBin(await readBytes(SHARED_TOKENIZER), ckpt.config.vocabSize, SHARED_TOKENIZER);
    }
    await writeTarget(ckpt, tokenizer, values.to, values.out, options.simd);
  } finally {
    await ckpt.source.close();
  }
}

async function synth(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args, strict: true,
    options: {
      ...common, to: { type: "string" }, out: { type: "string" }, layers: { type: "string" }, dim: { type: "string" },
      hidden: { type: "string" }, heads: { type: "string" }, "kv-heads": { type: "string" }, vocab: { type: "string" },
      embedding: { type: "string" }, seed: { type: "string" }, arch: { type: "string" },
    },
  });
  if (values.help) return console.log(USAGE);
  if (!values.to || !values.out) throw new BitNetError("synth needs --to FORMAT --out F");
  const int = (name: string) => numberOption(values, name, isPositiveInteger, "an integer > 0");
  const d = BITNET_2B4T_SHAPE;
  const shape = {
    nLayers: int("layers") ?? d.nLayers, dim: int("dim") ?? d.dim, hiddenDim: int("hidden") ?? d.hiddenDim, nHeads: int("heads") ?? d.nHeads,
    nKvHeads: int("kv-heads") ?? d.nKvHeads, vocabSize: int("vocab") ?? d.vocabSize, seqLen: int("context") ?? d.seqLen,
  };
  const { checkpoint } = await synthesizeBitNet(shape, {
    seed: numberOption(values, "seed", Number.isInteger, "an integer") ?? 1, embedding: values.embedding as "f16" | "bf16" | "f32" | undefined,
    arch: values.arch as SynthArch | undefined,
  });
  // A vocabulary to carry into the file (other engines need one), e.g. Llama 3's tokenizer.json for the 2B4T shape.
  const tokenizer = values.tokenizer ? tokenizerFromBytes(await readBytes(values.tokenizer), shape.vocabSize, values.tokenizer) : null;
  await writeTarget(checkpoint, tokenizer as GgufVocabularySource | null, values.to, values.out, values.simd as LoadOptions["simd"]);
}

async function sweep(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args, strict: true,
    options: { ...common, text: { type: "string" }, variants: { type: "string" }, grid: { type: "string" }, ctx: { type: "string" }, out: { type: "string" }, "decode-tokens": { type: "string" } },
  });
  if (values.help) return console.log(USAGE);
  // A grid file may give the model, text, ctx and variants; flags fill in the rest.
  let grid: { model?: string; text?: string; ctx?: number; variants?: string[] } = {};
  if (values.grid) {
    try {
      grid = JSON.parse(new TextDecoder().decode(await readBytes(values.grid)));
    } catch (e) {
      throw new BitNetError(`${values.grid}: not valid JSON (${(e as Error).message})`);
    }
    if (grid.variants !== undefined && (!Array.isArray(grid.variants) || grid.variants.some((v) => typeof v !== "string"))) throw new BitNetError(`${values.grid}: "variants" must be an array of strings`);
  }
  const model = values.model ?? grid.model, textPath = values.text ?? grid.text;
  const variants = values.variants ? splitVariants(values.variants) : grid.variants;
  if (!model || !textPath || !variants?.length) throw new BitNetError("sweep needs --model F, --text F and --variants LIST (or a --grid file giving them)");
  const ctx = numberOption(values, "ctx", isPositiveInteger, "an integer > 0") ?? grid.ctx;
  for (const v of variants) if (v !== "stored") parseVariant(v); // every name checked before the first run
  const prefix = values.out ?? "sweep", jsonl = `${prefix}.jsonl`;
  const done = (await fileExists(jsonl)) ? new TextDecoder().decode(await readBytes(jsonl)).split("\n").filter((l) => l.trim()).map((l) => JSON.parse(l)) : [];
  const options = await modelOptions(values, model);
  const tty = process.stderr.isTTY;
  let last = 0;
  const results = await runSweep({
    ...options, model, text: new TextDecoder().decode(await readBytes(textPath)), textName: textPath.split("/").pop()!, variants, ctx, done,
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

const [command, ...rest] = process.argv.slice(2);
const commands: Record<string, (args: string[]) => Promise<void>> = { generate, ppl, convert, synth, sweep };
try {
  if (!command || command === "--help" || command === "-h") console.log(USAGE);
  else if (!commands[command]) throw new BitNetError(`unknown command ${JSON.stringify(command)}\n${USAGE}`);
  else await commands[command](rest);
} catch (e) {
  const known = e instanceof BitNetError || (e as { code?: string }).code?.startsWith("ERR_PARSE_ARGS");
  console.error(known ? `bitnet-wasm: ${(e as Error).message}` : e);
  process.exitCode = known ? 2 : 1;
}
