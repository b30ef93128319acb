// loadBitNet: bytes -> checkpoint -> kernels -> model. The format is told by content,
// never by the file name.
import { type ByteSource, fileExists, isDirectory, openFile, type RandomAccessFile, readBytes, type ReadOptions, sourceName } from "../runtime/files.ts";
import { resolveTokenizer, type TokenizerOption } from "../text/tokenizer/resolve.ts";
import { type KernelOptions, loadKernels } from "../runtime/kernels.ts";
import type { Checkpoint } from "../formats/checkpoint.ts";
import { FormatError } from "../core/errors.ts";
import { ABORT_SIGNAL, checkOptions, type OptionRules } from "../core/options.ts";
import { BITLLAMA_MAGIC, readBitllama } from "../formats/bitllama.ts";
import { GGUF_MAGIC } from "../formats/gguf.ts";
import { readGgufCheckpoint } from "../formats/gguf-model.ts";
import { readHfBitNet } from "../formats/huggingface.ts";
import { readLlama2c } from "../formats/llama2c.ts";
import { BitNetModel } from "./model.ts";
import { renderChat } from "../text/chat.ts";
import { readSafetensorsIndex } from "../formats/safetensors.ts";
import { Transformer, type TransformerOptions } from "./transformer.ts";
import { throttled } from "../runtime/progress.ts";
import { isHubId } from "../hub/id.ts";
import { cacheHubModel, type HubLoadOptions } from "../hub/resolve.ts";

/** Options of loadBitNet: kernels (simd, threads), reading (progress, abort), hub and cache, tokenizer, LM head, context, variant. */
export interface LoadOptions extends KernelOptions, ReadOptions, HubLoadOptions, Pick<TransformerOptions, "lmHead" | "contextLength" | "variant" | "allowNonFinite"> {
  /** The tokenizer: a llama2.c tokenizer.bin or a Hugging Face tokenizer.json (path, URL or bytes; told by content; a
   *  tokenizer.json path or URL also reads the tokenizer_config.json beside it), or a ready Tokenizer; "none" for
   *  token ids only (generate and chat then fail; logits, step and perplexity of ids work).
   *  Default: the vocabulary stored in a GGUF file, else tokenizer.json (+ tokenizer_config.json), tok512.bin or
   *  tokenizer.bin beside the model (path, folder or URL); none found is a FormatError listing where it looked. */
  tokenizer?: TokenizerOption;
  /** A Jinja chat template for chat() (in place of the checkpoint's, or where it has none, as llama2.c files never do). */
  chatTemplate?: string;
  /** bitllama files: first 2-bit code of a byte in bits 7-6 ("msb", default) or 1-0 ("lsb"). */
  bitOrder?: "msb" | "lsb";
}

const isBytes = (v: unknown) =>
  v instanceof Uint8Array || v instanceof ArrayBuffer || (typeof Blob === "function" && v instanceof Blob) || (typeof ReadableStream === "function" && v instanceof ReadableStream);

/** The keys loadBitNet's options may have, and what each accepts. */
export const LOAD_OPTIONS: OptionRules = {
  simd: { test: (v) => v === "auto" || v === "strict" || v === "relaxed", expected: `"auto", "relaxed" or "strict"` },
  threads: "number",
  wasmModule: { test: (v) => v instanceof WebAssembly.Module, expected: "a WebAssembly.Module" },
  wasmUrl: { test: (v) => typeof v === "string" || v instanceof URL, expected: "a string or URL" },
  onProgress: "function",
  signal: ABORT_SIGNAL,
  bitOrder: { test: (v) => v === "msb" || v === "lsb", expected: `"msb" or "lsb"` },
  lmHead: { test: (v) => v === "stored" || v === "int8", expected: `"stored" or "int8"` },
  contextLength: "number",
  variant: "string",
  allowNonFinite: "boolean",
  chatTemplate: "string",
  stallTimeoutMs: "number",
  hubEndpoint: "string",
  accessToken: "string",
  cacheDir: "string",
  offline: "boolean",
  tokenizer: {
    test: (v) => typeof v === "string" || v instanceof URL || isBytes(v) || (typeof v === "object" && v !== null && typeof (v as { encode?: unknown }).encode === "function"),
    expected: `"none", a path or URL, bytes, a Blob, or a Tokenizer`,
  },
};

/** Parses a checkpoint of any supported single-file format (told by its first bytes). */
export async function readCheckpoint(source: RandomAccessFile, options: Pick<LoadOptions, "bitOrder"> = {}): Promise<Checkpoint> {
  const file = source.name;
  const head = await source.read(0, Math.min(4, source.size));
  const magic = head.length === 4 ? new DataView(head.buffer, head.byteOffset).getUint32(0, true) : 0;
  if (magic === GGUF_MAGIC) return readGgufCheckpoint(source);
  if (magic === BITLLAMA_MAGIC) {
    if (options.bitOrder !== undefined && options.bitOrder !== "msb" && options.bitOrder !== "lsb") {
      throw new FormatError(file, `bitOrder must be "msb" or "lsb", got ${JSON.stringify(options.bitOrder)}`);
    }
    return readBitllama(source, { msbFirst: options.bitOrder !== "lsb" });
  }
  try {
    return await readLlama2c(source);
  } catch (e) {
    if (e instanceof FormatError) {
      throw new FormatError(file, `not a GGUF or bitllama ak42 file (no magic) nor a llama2.c v0 checkpoint: ${e.message.slice(file.length + 2)}`);
    }
    throw e;
  }
}

const folderFile = (dir: string, name: string) => `${dir.replace(/\/+$/, "")}/${name}`;

/** A Hugging Face model folder: config.json and model.safetensors, or the shards its index names. */
export async function readHfFolder(dir: string, options: ReadOptions = {}): Promise<Checkpoint> {
  const text = async (name: string) => new TextDecoder().decode(await readBytes(folderFile(dir, name)));
  const config = await text("config.json");
  const indexName = "model.safetensors.index.json";
  if (!(await fileExists(folderFile(dir, indexName)))) {
    return closingOnError([await openFile(folderFile(dir, "model.safetensors"), options)], (files) => readHfBitNet(config, files, dir));
  }
  const shardOf = readSafetensorsIndex(await text(indexName), folderFile(dir, indexName));
  const names = [...new Set(shardOf.values())].sort();
  const shards: RandomAccessFile[] = [];
  return closingOnError(shards, async () => {
    for (const name of names) shards.push(await openFile(folderFile(dir, name), options));
    return readHfBitNet(config, shards, dir, shardOf);
  });
}

/** Reads from files that the result then owns: they are closed if reading fails. */
async function closingOnError<T>(files: RandomAccessFile[], read: (files: RandomAccessFile[]) => Promise<T>): Promise<T> {
  try {
    return await read(files);
  } catch (e) {
    await Promise.all(files.map((f) => f.close()));
    throw e;
  }
}

export { resolveTokenizer, tokenizerFromBytes } from "../text/tokenizer/resolve.ts";

/**
 * Loads a model with its tokenizer: llama2.c v0 (fp32), bitllama (ternary), GGUF of either,
 * or a Hugging Face BitNet b1.58 folder (packed weights, tokenizer.json); by path, URL, bytes,
 * or hub id ("hf:ORG/REPO[@REVISION][/FILE]", downloaded once into the cache). Progress
 * events come per phase and file, monotone, a few a second at most.
 */
export async function loadBitNet(source: ByteSource, options: LoadOptions = {}): Promise<BitNetModel> {
  checkOptions(options, LOAD_OPTIONS, "loadBitNet");
  if (options.onProgress) options = { ...options, onProgress: throttled(options.onProgress) };
  const file = sourceName(source);
  let besideTokenizer: ByteSource | undefined;
  if (isHubId(source)) ({ source, tokenizer: besideTokenizer } = await cacheHubModel(source, options));
  const folder = (await isDirectory(source)) ? (source as string) : null;
  const ckpt = folder ? await readHfFolder(folder, options) : await closingOnError([await openFile(source, options)], ([f]) => readCheckpoint(f, options));
  try {
    return await modelOf(ckpt, source, file, options, besideTokenizer);
  } finally {
    await ckpt.source.close();
  }
}

/** The model of a checkpoint; `besideTokenizer` stands for the tokenizer beside a source that has no place to look beside (a cached File). */
async function modelOf(ckpt: Checkpoint, source: ByteSource, file: string, options: LoadOptions, besideTokenizer?: ByteSource): Promise<BitNetModel> {
  const option = options.tokenizer ?? (ckpt.vocabulary ? undefined : besideTokenizer);
  const { tokenizer } = await resolveTokenizer(source, ckpt, option, { signal: options.signal });
  options.signal?.throwIfAborted();
  const kernels = await loadKernels(options);
  const layers = ckpt.config.nLayers;
  try {
    const transformer = await Transformer.load(kernels, ckpt, {
      lmHead: options.lmHead,
      contextLength: options.contextLength,
      variant: options.variant,
      allowNonFinite: options.allowNonFinite,
      onLayer: (done) => options.onProgress?.({ phase: "weights", file, loaded: done, total: layers }),
    });
    if (options.chatTemplate !== undefined && tokenizer) renderChat(tokenizer, [{ role: "user", content: "" }], file, options.chatTemplate); // parses and renders now
    return new BitNetModel(kernels, transformer, tokenizer, file, options.chatTemplate ?? tokenizer?.chatTemplate);
  } catch (e) {
    kernels.dispose();
    throw e;
  }
}
