// loadBitNet: bytes -> checkpoint -> kernels -> model. The format is told by content,
// never by the file name.
import { type ByteSource, fileExists, isDirectory, openFile, type RandomAccessFile, type ReadOptions, readBytes, sourceName } from "../runtime/files.ts";
import { type KernelOptions, loadKernels } from "../runtime/kernels.ts";
import type { Checkpoint } from "./checkpoint.ts";
import { FormatError } from "./errors.ts";
import { BITLLAMA_MAGIC, readBitllama } from "./formats/bitllama.ts";
import { GGUF_MAGIC } from "./formats/gguf.ts";
import { readGgufCheckpoint } from "./formats/gguf-model.ts";
import { readHfBitNet } from "./formats/huggingface.ts";
import { readLlama2c } from "./formats/llama2c.ts";
import { BitNetModel } from "./model.ts";
import { BpeTokenizer } from "./tokenizer/bpe.ts";
import { Llama2cTokenizer, type Tokenizer } from "./tokenizer/llama2c.ts";
import { readSafetensorsIndex } from "./formats/safetensors.ts";
import { Transformer, type TransformerOptions } from "./transformer.ts";

/** Options of loadBitNet: kernels (simd, threads), reading (progress, abort), tokenizer, LM head, context, variant. */
export interface LoadOptions extends KernelOptions, ReadOptions, Pick<TransformerOptions, "lmHead" | "contextLength" | "variant"> {
  /** The tokenizer: a llama2.c tokenizer.bin or a Hugging Face tokenizer.json (path, URL or bytes), or a ready Tokenizer.
   *  Default: the vocabulary stored in a GGUF file; for a path, tok512.bin or tokenizer.bin
   *  beside the model, if present. */
  tokenizer?: ByteSource | Tokenizer;
  /** bitllama files: first 2-bit code of a byte in bits 7-6 ("msb", default) or 1-0 ("lsb"). */
  bitOrder?: "msb" | "lsb";
}

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

async function defaultTokenizerBeside(source: ByteSource): Promise<string | undefined> {
  if (typeof source !== "string" || /^[a-z]+:/i.test(source)) return undefined;
  const dir = source.includes("/") ? source.slice(0, source.lastIndexOf("/") + 1) : "";
  for (const name of ["tok512.bin", "tokenizer.bin"]) if (await fileExists(dir + name)) return dir + name;
  return undefined;
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

/** The folder's tokenizer.json (with tokenizer_config.json), if it has one. */
export async function readHfFolderTokenizer(dir: string): Promise<Tokenizer | null> {
  const json = folderFile(dir, "tokenizer.json"), config = folderFile(dir, "tokenizer_config.json");
  if (!(await fileExists(json))) return null;
  const text = (path: string) => readBytes(path).then((b) => new TextDecoder().decode(b));
  return BpeTokenizer.fromJson(await text(json), (await fileExists(config)) ? await text(config) : undefined, json);
}

/** A tokenizer file, told by content: a tokenizer.json (Hugging Face) or a llama2.c tokenizer.bin. */
export function tokenizerFromBytes(bytes: Uint8Array, vocabSize: number, name: string): Tokenizer {
  const first = bytes.find((b) => b !== 0x20 && b !== 0x0a && b !== 0x0d && b !== 0x09);
  if (first === 0x7b) return BpeTokenizer.fromJson(new TextDecoder().decode(bytes), undefined, name);
  return Llama2cTokenizer.fromBin(bytes, vocabSize, name);
}

/**
 * Loads a model with its tokenizer: llama2.c v0 (fp32), bitllama (ternary), GGUF of either,
 * or a Hugging Face BitNet b1.58 folder (packed weights, tokenizer.json).
 */
export async function loadBitNet(source: ByteSource, options: LoadOptions = {}): Promise<BitNetModel> {
  const file = sourceName(source);
  const folder = (await isDirectory(source)) ? (source as string) : null;
  const ckpt = folder ? await readHfFolder(folder, options) : await closingOnError([await openFile(source, options)], ([f]) => readCheckpoint(f, options));
  try {
    return await modelOf(ckpt, source, folder, file, options);
  } finally {
    await ckpt.source.close();
  }
}

async function modelOf(ckpt: Checkpoint, source: ByteSource, folder: string | null, file: string, options: LoadOptions): Promise<BitNetModel> {
  let tokenizer: Tokenizer | null;
  const v = ckpt.vocabulary;
  if (options.tokenizer !== undefined) {
    const tok = options.tokenizer;
    tokenizer = typeof tok === "object" && "encode" in tok ? tok : tokenizerFromBytes(await readBytes(tok), ckpt.config.vocabSize, sourceName(tok));
  } else if (folder) {
    tokenizer = await readHfFolderTokenizer(folder);
  } else if (v) {
    tokenizer = v.kind === "spm" ? Llama2cTokenizer.fromGguf(v.tokens, v.scores) : BpeTokenizer.fromGguf(v, file);
  } else {
    const beside = await defaultTokenizerBeside(source);
    tokenizer = beside ? Llama2cTokenizer.fromBin(await readBytes(beside), ckpt.config.vocabSize, beside) : null;
  }
  if (tokenizer && tokenizer.vocabSize !== ckpt.config.vocabSize) {
    throw new FormatError(file, `tokenizer has ${tokenizer.vocabSize} tokens, the model ${ckpt.config.vocabSize}`);
  }
  options.signal?.throwIfAborted();
  const kernels = await loadKernels(options);
  const layers = ckpt.config.nLayers;
  try {
    const transformer = await Transformer.load(kernels, ckpt, {
      lmHead: options.lmHead, contextLength: options.contextLength, variant: options.variant,
      onLayer: (done) => options.onProgress?.({ phase: "weights", loaded: done, total: layers }),
    });
    return new BitNetModel(kernels, transformer, tokenizer, file);
  } catch (e) {
    kernels.dispose();
    throw e;
  }
}
