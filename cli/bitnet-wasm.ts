#!/usr/bin/env node
// bitnet-wasm command line: generate text or measure perplexity with a model file.
// Results go to stdout; progress and diagnostics to stderr.
import process from "node:process";
import { parseArgs } from "node:util";
import { checkpointToGguf, type GgufTarget } from "../model/convert.ts";
import { loadBitNet, type LoadOptions, readCheckpoint } from "../model/load.ts";
import { Llama2cTokenizer } from "../model/tokenizer/llama2c.ts";
import { loadKernels } from "../runtime/kernels.ts";
import { BitNetError } from "../model/errors.ts";
import { fileExists, readBytes, writeBytes } from "../runtime/files.ts";
import { isNonNegativeInteger, isPositiveInteger, numberOption } from "./args.ts";

const DEFAULT_MODEL = "../shared/data/models/bitllama-3M.bin";
const SHARED_TOKENIZER = "../shared/data/models/tok512.bin";

const USAGE = `usage:
  bitnet-wasm generate [--model F] [--tokenizer F] [--prompt S] [--max-tokens N]
                       [--temperature T] [--top-k K] [--top-p P] [--seed S] [--json]
  bitnet-wasm ppl --model F (--text F | --tokens F) [--tokenizer F] [--ctx N] [--json]
  bitnet-wasm convert --model F --to gguf-i2s|gguf-tq1|gguf-tq2|gguf-f32 --out F [--tokenizer F]
common: [--simd auto|relaxed|strict] [--bit-order msb|lsb]

Models: llama2.c v0 checkpoints (e.g. stories260K.bin), bitllama ternary files (ak42), and
GGUF files of either (architectures "llama" and "bitllama"; see README).
Without --model, generate uses ${DEFAULT_MODEL}.
Without --tokenizer, tok512.bin beside the model, then ${SHARED_TOKENIZER}, is used.`;

const common = {
  model: { type: "string" }, tokenizer: { type: "string" }, simd: { type: "string" },
  "bit-order": { type: "string" }, json: { type: "boolean" }, help: { type: "boolean", short: "h" },
} as const;

async function modelOptions(values: Record<string, unknown>, model: string): Promise<LoadOptions> {
  let tokenizer = values.tokenizer as string | undefined;
  if (tokenizer === undefined) {
    const dir = model.includes("/") ? model.slice(0, model.lastIndexOf("/") + 1) : "";
    for (const candidate of [`${dir}tok512.bin`, SHARED_TOKENIZER]) {
      if (await fileExists(candidate)) {
        tokenizer = candidate;
        break;
      }
    }
  }
  if (tokenizer === undefined) throw new BitNetError(`no tokenizer found beside ${model}; pass --tokenizer tokenizer.bin`);
  return { tokenizer, simd: values.simd as LoadOptions["simd"], bitOrder: values["bit-order"] as LoadOptions["bitOrder"] };
}

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
  const m = await loadBitNet(model, await modelOptions(values, model));
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
  const summary = { text, tokens, tokensPerSecond, timeToFirstTokenMs: firstAt ? firstAt - started : 0, simd: m.simd, model };
  if (values.json) console.log(JSON.stringify(summary));
  else console.error(`\n\n${tokens} tokens, ${tokensPerSecond.toFixed(1)} tok/s (${m.simd} SIMD, ${model})`);
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
  const m = await loadBitNet(values.model, values.tokens ? { simd: values.simd as LoadOptions["simd"] } : await modelOptions(values, values.model));
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

async function convert(args: string[]): Promise<void> {
  const { values } = parseArgs({ args, strict: true, options: { ...common, to: { type: "string" }, out: { type: "string" } } });
  if (values.help) return console.log(USAGE);
  if (!values.model || !values.to || !values.out) throw new BitNetError("convert needs --model F --to FORMAT --out F");
  const options = await modelOptions(values, values.model);
  const bytes = await readBytes(values.model);
  const ckpt = readCheckpoint(bytes, values.model, options);
  const v = ckpt.vocabulary;
  if (v && v.kind !== "spm") throw new BitNetError(`${values.model}: converting models with a byte-level BPE vocabulary is not supported yet`);
  const tokenizer = v
    ? Llama2cTokenizer.fromGguf(v.tokens, v.scores)
    : Llama2cTokenizer.fromBin(await readBytes(options.tokenizer as string), ckpt.config.vocabSize, options.tokenizer as string);
  const out = checkpointToGguf(await loadKernels(options), ckpt, tokenizer, values.to as GgufTarget);
  await writeBytes(values.out, out);
  console.error(`wrote ${values.out}: ${out.length} bytes (${values.to}, ${ckpt.config.arch} architecture, from ${bytes.length} bytes)`);
}

const [command, ...rest] = process.argv.slice(2);
const commands: Record<string, (args: string[]) => Promise<void>> = { generate, ppl, convert };
try {
  if (!command || command === "--help" || command === "-h") console.log(USAGE);
  else if (!commands[command]) throw new BitNetError(`unknown command ${JSON.stringify(command)}\n${USAGE}`);
  else await commands[command](rest);
} catch (e) {
  const known = e instanceof BitNetError || (e as { code?: string }).code?.startsWith("ERR_PARSE_ARGS");
  console.error(known ? `bitnet-wasm: ${(e as Error).message}` : e);
  process.exitCode = known ? 2 : 1;
}
