// Models in GGUF files, with llama.cpp's tensor names and metadata keys.
// Architectures: "llama" (llama2.c-style models: pre-RMSNorm, RoPE on interleaved pairs, as
// Meta's and llama.cpp's GGUF keep Q and K) and "bitllama", this project's name for the
// bitllama2.c architecture (no pre-norms; every BitLinear normalises and int8-quantizes
// its input; ternary weights in I2_S, TQ1_0 or TQ2_0). The vocabulary, when present, is
// a SentencePiece "llama" vocabulary (tokenizer.ggml.tokens / scores) or a byte-level BPE
// "gpt2" one (tokens / merges / token_type, pre-tokenizer "llama-bpe").
import type { Checkpoint, LayerTensors, LinearTensor, Span } from "../checkpoint.ts";
import { makeConfig } from "../config.ts";
import { FormatError } from "../errors.ts";
import type { BpeVocabulary } from "../tokenizer/bpe.ts";
import { GGML_TYPES, GgmlType, type GgufFile, GgufType, ggufValue, readGguf } from "./gguf.ts";

export const GGUF_ARCHITECTURES = ["llama", "bitllama"] as const;
const INTEGER = [GgufType.UINT32, GgufType.INT32, GgufType.UINT64, GgufType.INT64, GgufType.UINT16, GgufType.INT16];
const FLOAT = [GgufType.FLOAT32, GgufType.FLOAT64];
const LINEAR_ENCODINGS: Record<number, "f32" | "i2s" | "tq1" | "tq2"> = {
  [GgmlType.F32]: "f32", [GgmlType.I2_S]: "i2s", [GgmlType.TQ1_0]: "tq1", [GgmlType.TQ2_0]: "tq2",
};

export function readGgufCheckpoint(bytes: Uint8Array, file: string): Checkpoint {
  const g = readGguf(bytes, file);
  const arch = ggufValue<string>(g, "general.architecture", file, [GgufType.STRING]);
  if (!(GGUF_ARCHITECTURES as readonly string[]).includes(arch)) {
    throw new FormatError(file, `architecture "${arch}" is not supported here (supported: ${GGUF_ARCHITECTURES.join(", ")})`);
  }
  const optional = (key: string, types: GgufType[]) => (g.metadata.has(key) ? Number(ggufValue(g, key, file, types)) : undefined);
  const integer = (key: string) => Number(ggufValue(g, `${arch}.${key}`, file, INTEGER));
  const tensors = new Map(g.tensors.map((t) => [t.name, t]));
  const tensor = (name: string, dims: number[]) => {
    const t = tensors.get(name);
    if (!t) throw new FormatError(file, `tensor ${name} is missing`);
    if (t.dims.length !== dims.length || t.dims.some((d, i) => d !== dims[i])) {
      throw new FormatError(file, `tensor ${name} has shape [${t.dims.join(", ")}], the config implies [${dims.join(", ")}]`);
    }
    return t;
  };
  const f32 = (name: string, dims: number[]): Span => {
    const t = tensor(name, dims);
    if (t.type !== GgmlType.F32) throw new FormatError(file, `tensor ${name} is ${GGML_TYPES[t.type].name}, expected F32`);
    return { offset: t.offset, length: t.bytes };
  };
  const linear = (name: string, rows: number, cols: number): LinearTensor => {
    const t = tensor(name, [cols, rows]);
    const encoding = LINEAR_ENCODINGS[t.type];
    if (!encoding) throw new FormatError(file, `tensor ${name} is ${GGML_TYPES[t.type].name}; linear layers are read as F32, I2_S, TQ1_0 or TQ2_0`);
    return { name, encoding, rows, cols, data: { offset: t.offset, length: t.bytes } };
  };

  const tokens = g.metadata.get("tokenizer.ggml.tokens");
  const embedding = g.tensors.find((t) => t.name === "token_embd.weight");
  const vocabSize = optional(`${arch}.vocab_size`, INTEGER) ??
    (tokens ? (tokens.value as unknown[]).length : embedding?.dims[1] ?? 0);
  const config = makeConfig(file, {
    arch: arch === "llama" ? "llama" : "bitllama",
    dim: integer("embedding_length"), hiddenDim: integer("feed_forward_length"), nLayers: integer("block_count"),
    nHeads: integer("attention.head_count"),
    nKvHeads: optional(`${arch}.attention.head_count_kv`, INTEGER) ?? integer("attention.head_count"),
    vocabSize, seqLen: integer("context_length"),
    normEps: optional(`${arch}.attention.layer_norm_rms_epsilon`, FLOAT) ?? 1e-5,
    ropeTheta: optional(`${arch}.rope.freq_base`, FLOAT) ?? 10000,
    rope: "interleaved", activation: "silu",
  }, (f, d) => new FormatError(f, d));
  const { dim, hiddenDim, kvDim, nLayers } = config;
  const hasNorms = arch === "llama";
  const layers: LayerTensors[] = Array.from({ length: nLayers }, (_, l) => {
    const b = `blk.${l}.`;
    return {
      attnNorm: hasNorms ? f32(`${b}attn_norm.weight`, [dim]) : undefined,
      ffnNorm: hasNorms ? f32(`${b}ffn_norm.weight`, [dim]) : undefined,
      q: linear(`${b}attn_q.weight`, dim, dim), k: linear(`${b}attn_k.weight`, kvDim, dim),
      v: linear(`${b}attn_v.weight`, kvDim, dim), o: linear(`${b}attn_output.weight`, dim, dim),
      gate: linear(`${b}ffn_gate.weight`, hiddenDim, dim), down: linear(`${b}ffn_down.weight`, dim, hiddenDim),
      up: linear(`${b}ffn_up.weight`, hiddenDim, dim),
    };
  });
  return {
    file, bytes, config, layers,
    embedding: f32("token_embd.weight", [dim, vocabSize]),
    finalNorm: f32("output_norm.weight", [dim]),
    classifier: tensors.has("output.weight") ? f32("output.weight", [dim, vocabSize]) : undefined,
    vocabulary: readVocabulary(g, file, vocabSize),
  };
}

function readVocabulary(g: GgufFile, file: string, vocabSize: number): Checkpoint["vocabulary"] {
  if (!g.metadata.has("tokenizer.ggml.tokens")) return undefined;
  const model = ggufValue<string>(g, "tokenizer.ggml.model", file, [GgufType.STRING]);
  const tokens = ggufValue<string[]>(g, "tokenizer.ggml.tokens", file, [GgufType.ARRAY]);
  if (tokens.length !== vocabSize || tokens.some((t) => typeof t !== "string")) {
    throw new FormatError(file, `tokenizer.ggml.tokens holds ${tokens.length} strings, the model's vocabulary ${vocabSize}`);
  }
  if (model === "llama") {
    const scores = ggufValue<number[]>(g, "tokenizer.ggml.scores", file, [GgufType.ARRAY]);
    if (scores.length !== vocabSize) throw new FormatError(file, `tokenizer.ggml.scores holds ${scores.length} entries, the model's vocabulary ${vocabSize}`);
    return { kind: "spm", tokens, scores: scores.map(Number) };
  }
  if (model === "gpt2") return { kind: "bpe", ...ggufBpeVocabulary(g, file) };
  throw new FormatError(file, `tokenizer.ggml.model "${model}" is not supported here (supported: llama, gpt2)`);
}

/** A byte-level BPE vocabulary from GGUF metadata (tokenizer.ggml.model "gpt2"). */
export function ggufBpeVocabulary(g: GgufFile, file: string): BpeVocabulary {
  const tokens = ggufValue<string[]>(g, "tokenizer.ggml.tokens", file, [GgufType.ARRAY]);
  const merges = ggufValue<string[]>(g, "tokenizer.ggml.merges", file, [GgufType.ARRAY]);
  const types = g.metadata.has("tokenizer.ggml.token_type") ? ggufValue<number[]>(g, "tokenizer.ggml.token_type", file, [GgufType.ARRAY]).map(Number) : [];
  const id = (key: string) => Number(ggufValue(g, key, file, INTEGER));
  const pre = g.metadata.has("tokenizer.ggml.pre") ? ggufValue<string>(g, "tokenizer.ggml.pre", file, [GgufType.STRING]) : "default";
  const chatTemplate = g.metadata.has("tokenizer.chat_template") ? ggufValue<string>(g, "tokenizer.chat_template", file, [GgufType.STRING]) : undefined;
  return { tokens, merges, tokenTypes: types, bos: id("tokenizer.ggml.bos_token_id"), eos: id("tokenizer.ggml.eos_token_id"), pre, chatTemplate };
}
