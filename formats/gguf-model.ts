// Models in GGUF files, with llama.cpp's tensor names and metadata keys. Architectures:
// - "llama": llama2.c-style models (pre-RMSNorm, SwiGLU, RoPE on interleaved pairs, as
//   llama.cpp's converter permutes Q and K); linear weights F32 or ternary types.
// - "bitllama": this project's name for the bitllama2.c architecture (no pre-norms; every
//   BitLinear normalises and int8-quantizes its input), ternary weights.
// - "bitnet-b1.58" (bitnet.cpp's converter) and "bitnet" (llama.cpp's): BitNet b1.58 with
//   pre-norms and the sub-norms before o_proj and ffn_down, RoPE in NEOX (rotate-half)
//   pairing since neither converter permutes Q and K. bitnet.cpp's build uses ReLU^2;
//   llama.cpp's reads `bitnet.hidden_activation` and defaults to SiLU. Either may carry a
//   one-value tensor per projection that multiplies its output (llama.cpp `*.scale`,
//   bitnet.cpp `*.weight_scale`).
// Ternary weights come as I2_S, TQ1_0 or TQ2_0. The vocabulary, when present, is a
// SentencePiece "llama" vocabulary (tokenizer.ggml.tokens / scores) or a byte-level BPE
// "gpt2" one (tokens / merges / token_type, pre-tokenizer "llama-bpe").
import type { RandomAccessFile } from "../runtime/files.ts";
import type { BpeVocabulary, Checkpoint, LayerTensors, LinearTensor, Span } from "./checkpoint.ts";
import { type Activation, makeConfig } from "./config.ts";
import { FormatError } from "../core/errors.ts";
import { GGML_TYPES, GgmlType, type GgufFile, GgufType, ggufValue, readGgufFile } from "./gguf.ts";

export const GGUF_ARCHITECTURES = ["llama", "bitllama", "bitnet-b1.58", "bitnet"] as const;
const INTEGER = [GgufType.UINT32, GgufType.INT32, GgufType.UINT64, GgufType.INT64, GgufType.UINT16, GgufType.INT16];
const FLOAT = [GgufType.FLOAT32, GgufType.FLOAT64];
const TERNARY_ENCODINGS: Record<number, "i2s" | "tq1" | "tq2"> = { [GgmlType.I2_S]: "i2s", [GgmlType.TQ1_0]: "tq1", [GgmlType.TQ2_0]: "tq2" };
const FLOAT_DTYPES: Record<number, Span["dtype"]> = { [GgmlType.F32]: undefined, [GgmlType.F16]: "f16", [GgmlType.BF16]: "bf16" };
/** llama.cpp's names for hidden_activation values (llm_ffn_op_type_from_string). */
const ACTIVATIONS: Record<string, Activation> = { silu: "silu", swiglu: "silu", relu2: "relu2", relu_sqr: "relu2", relu_squared: "relu2" };

export async function readGgufCheckpoint(source: RandomAccessFile): Promise<Checkpoint> {
  const file = source.name;
  const g = await readGgufFile(source);
  const arch = ggufValue<string>(g, "general.architecture", file, [GgufType.STRING]);
  if (!(GGUF_ARCHITECTURES as readonly string[]).includes(arch)) {
    throw new FormatError(file, `architecture "${arch}" is not supported here (supported: ${GGUF_ARCHITECTURES.join(", ")})`);
  }
  const bitnet = arch === "bitnet-b1.58" || arch === "bitnet";
  const optional = (key: string, types: GgufType[]) => (g.metadata.has(key) ? ggufValue(g, key, file, types) : undefined);
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
  const float = (name: string, dims: number[]): Span => {
    const t = tensor(name, dims);
    if (!(t.type in FLOAT_DTYPES)) throw new FormatError(file, `tensor ${name} is ${GGML_TYPES[t.type].name}, expected F32, F16 or BF16`);
    return { offset: t.offset, length: t.bytes, dtype: FLOAT_DTYPES[t.type] };
  };
  const outputScale = (weight: string): Span | undefined => {
    const base = weight.replace(/\.weight$/, "");
    const t = tensors.get(`${base}.scale`) ?? tensors.get(`${weight}_scale`);
    if (!t) return undefined;
    if (t.type !== GgmlType.F32 || t.dims.reduce((a, b) => a * b, 1) !== 1) throw new FormatError(file, `tensor ${t.name} is not one F32 value`);
    return { offset: t.offset, length: 4 };
  };
  const linear = (name: string, rows: number, cols: number): LinearTensor => {
    const t = tensor(name, [cols, rows]);
    const data = { offset: t.offset, length: t.bytes };
    const ternary = TERNARY_ENCODINGS[t.type];
    if (ternary) return { name, encoding: ternary, rows, cols, data, outputScale: outputScale(name) };
    if (t.type === GgmlType.F32 && arch === "llama") return { name, encoding: "f32", rows, cols, data };
    throw new FormatError(file, `tensor ${name} is ${GGML_TYPES[t.type].name}; ${arch} linear layers are read as ${arch === "llama" ? "F32, " : ""}I2_S, TQ1_0 or TQ2_0`);
  };

  const tokens = g.metadata.get("tokenizer.ggml.tokens");
  const embedding = g.tensors.find((t) => t.name === "token_embd.weight");
  const vocabSize = Number(optional(`${arch}.vocab_size`, INTEGER) ??
    (tokens ? (tokens.value as unknown[]).length : embedding?.dims[1] ?? 0));
  const act = arch === "bitnet" ? String(optional("bitnet.hidden_activation", [GgufType.STRING]) ?? "silu") : arch === "bitnet-b1.58" ? "relu2" : "silu";
  if (!(act in ACTIVATIONS)) throw new FormatError(file, `bitnet.hidden_activation "${act}" is not supported (supported: ${Object.keys(ACTIVATIONS).join(", ")})`);
  const config = makeConfig(file, {
    arch: bitnet ? "bitnet-b1.58" : arch === "llama" ? "llama" : "bitllama",
    dim: integer("embedding_length"), hiddenDim: integer("feed_forward_length"), nLayers: integer("block_count"),
    nHeads: integer("attention.head_count"),
    nKvHeads: Number(optional(`${arch}.attention.head_count_kv`, INTEGER) ?? integer("attention.head_count")),
    vocabSize, seqLen: integer("context_length"),
    normEps: Number(optional(`${arch}.attention.layer_norm_rms_epsilon`, FLOAT) ?? 1e-5),
    ropeTheta: Number(optional(`${arch}.rope.freq_base`, FLOAT) ?? 10000),
    rope: bitnet ? "neox" : "interleaved", activation: ACTIVATIONS[act],
  }, (f, d) => new FormatError(f, d));
  const { dim, hiddenDim, kvDim, nLayers } = config;
  const hasNorms = arch !== "bitllama";
  const layers: LayerTensors[] = Array.from({ length: nLayers }, (_, l) => {
    const b = `blk.${l}.`;
    return {
      attnNorm: hasNorms ? float(`${b}attn_norm.weight`, [dim]) : undefined,
      ffnNorm: hasNorms ? float(`${b}ffn_norm.weight`, [dim]) : undefined,
      attnSubNorm: bitnet ? float(`${b}attn_sub_norm.weight`, [dim]) : undefined,
      ffnSubNorm: bitnet ? float(`${b}ffn_sub_norm.weight`, [hiddenDim]) : undefined,
      q: linear(`${b}attn_q.weight`, dim, dim), k: linear(`${b}attn_k.weight`, kvDim, dim),
      v: linear(`${b}attn_v.weight`, kvDim, dim), o: linear(`${b}attn_output.weight`, dim, dim),
      gate: linear(`${b}ffn_gate.weight`, hiddenDim, dim), down: linear(`${b}ffn_down.weight`, dim, hiddenDim),
      up: linear(`${b}ffn_up.weight`, hiddenDim, dim),
    };
  });
  return {
    file, source, config, layers,
    embedding: float("token_embd.weight", [dim, vocabSize]),
    finalNorm: float("output_norm.weight", [dim]),
    classifier: tensors.has("output.weight") ? float("output.weight", [dim, vocabSize]) : undefined,
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
