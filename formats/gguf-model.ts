// Models in GGUF files, with llama.cpp's tensor names and metadata keys. Which architecture a
// general.architecture names, and what it means, is in formats/architectures.ts: "llama" and
// "bitllama" as they are; "bitnet-b1.58" (bitnet.cpp's converter) and "bitnet" (llama.cpp's)
// are both BitNet b1.58, in NEOX RoPE pairing since neither converter permutes Q and K.
// Either may carry a one-value tensor per projection that multiplies its output (llama.cpp
// `*.scale`, bitnet.cpp `*.weight_scale`). Linear weights are ternary types (I2_S, TQ1_0,
// TQ2_0), or F32 for llama. The vocabulary, when present, is a SentencePiece "llama"
// vocabulary (tokenizer.ggml.tokens / scores) or a byte-level BPE "gpt2" one (tokens /
// merges / token_type, pre-tokenizer "llama-bpe").
import type { RandomAccessFile } from "../runtime/files.ts";
import type { BpeVocabulary, Checkpoint, LinearTensor, Span } from "./checkpoint.ts";
import { ARCHITECTURES, GGUF_ARCHITECTURES, ggufArchitecture, readLayers, TENSOR_NAMES } from "./architectures.ts";
import { type Activation, makeConfig } from "./config.ts";
import { FormatError } from "../core/errors.ts";
import { type GgufFile, GgufType, ggufValue, readGgufFile } from "./gguf.ts";
import { ggmlTypeName, isTernary, TENSOR_TYPES } from "./tensor-types.ts";

const INTEGER = [GgufType.UINT32, GgufType.INT32, GgufType.UINT64, GgufType.INT64, GgufType.UINT16, GgufType.INT16];
const FLOAT = [GgufType.FLOAT32, GgufType.FLOAT64];
/** llama.cpp's names for hidden_activation values (llm_ffn_op_type_from_string). */
const ACTIVATIONS: Record<string, Activation> = { silu: "silu", swiglu: "silu", relu2: "relu2", relu_sqr: "relu2", relu_squared: "relu2" };

export async function readGgufCheckpoint(source: RandomAccessFile): Promise<Checkpoint> {
  const file = source.name;
  const g = await readGgufFile(source);
  const name = ggufValue<string>(g, "general.architecture", file, [GgufType.STRING]);
  const arch = ggufArchitecture(name);
  if (!arch) throw new FormatError(file, `architecture "${name}" is not supported here (supported: ${GGUF_ARCHITECTURES.join(", ")})`);
  const optional = (key: string, types: GgufType[]) => (g.metadata.has(key) ? ggufValue(g, key, file, types) : undefined);
  const integer = (key: string) => Number(ggufValue(g, `${name}.${key}`, file, INTEGER));
  const tensors = new Map(g.tensors.map((t) => [t.name, t]));
  const tensor = (tensorName: string, dims: number[]) => {
    const t = tensors.get(tensorName);
    if (!t) throw new FormatError(file, `tensor ${tensorName} is missing`);
    if (t.dims.length !== dims.length || t.dims.some((d, i) => d !== dims[i])) {
      throw new FormatError(file, `tensor ${tensorName} has shape [${t.dims.join(", ")}], the config implies [${dims.join(", ")}]`);
    }
    return t;
  };
  const typeName = (t: { type: number }) => ggmlTypeName(t.type)!; // readGgufFile refuses unknown ids
  // GGUF dims run innermost first: a [rows, cols] tensor is stored as [cols, rows].
  const float = (tensorName: string, shape: number[]): Span => {
    const t = tensor(tensorName, [...shape].reverse());
    const precision = (TENSOR_TYPES[typeName(t)] as { float?: "f32" | "f16" | "bf16" }).float;
    if (!precision) throw new FormatError(file, `tensor ${tensorName} is ${TENSOR_TYPES[typeName(t)].name}, expected F32, F16 or BF16`);
    return { offset: t.offset, length: t.bytes, dtype: precision === "f32" ? undefined : precision };
  };
  const outputScale = (weight: string): Span | undefined => {
    const base = weight.replace(/\.weight$/, "");
    const t = tensors.get(`${base}.scale`) ?? tensors.get(`${weight}_scale`);
    if (!t) return undefined;
    if (t.type !== TENSOR_TYPES.F32.ggml || t.dims.reduce((a, b) => a * b, 1) !== 1) throw new FormatError(file, `tensor ${t.name} is not one F32 value`);
    return { offset: t.offset, length: 4 };
  };
  const linear = (tensorName: string, rows: number, cols: number): LinearTensor => {
    const t = tensor(tensorName, [cols, rows]), type = typeName(t);
    const data = { offset: t.offset, length: t.bytes };
    if (isTernary(type)) return { name: tensorName, encoding: type, rows, cols, data, outputScale: outputScale(tensorName) };
    const floats = ARCHITECTURES[arch].floatLinears;
    if (type === "F32" && floats) return { name: tensorName, encoding: "f32", rows, cols, data };
    throw new FormatError(file, `tensor ${tensorName} is ${TENSOR_TYPES[type].name}; ${name} linear layers are read as ${floats ? "F32, " : ""}I2_S, TQ1_0 or TQ2_0`);
  };

  const names = TENSOR_NAMES.gguf;
  const tokens = g.metadata.get("tokenizer.ggml.tokens");
  const embedding = tensors.get(names.embedding);
  const vocabSize = Number(
    optional(`${name}.vocab_size`, INTEGER) ??
      (tokens ? (tokens.value as unknown[]).length : embedding?.dims[1] ?? 0),
  );
  // llama.cpp's "bitnet" says its activation (SiLU when it does not); bitnet.cpp's "bitnet-b1.58" is ReLU^2.
  const act = name === "bitnet" ? String(optional("bitnet.hidden_activation", [GgufType.STRING]) ?? "silu") : ARCHITECTURES[arch].activation;
  if (!Object.hasOwn(ACTIVATIONS, act)) throw new FormatError(file, `bitnet.hidden_activation "${act}" is not supported (supported: ${Object.keys(ACTIVATIONS).join(", ")})`);
  const config = makeConfig(file, {
    arch,
    dim: integer("embedding_length"),
    hiddenDim: integer("feed_forward_length"),
    nLayers: integer("block_count"),
    nHeads: integer("attention.head_count"),
    nKvHeads: Number(optional(`${name}.attention.head_count_kv`, INTEGER) ?? integer("attention.head_count")),
    vocabSize,
    seqLen: integer("context_length"),
    normEps: Number(optional(`${name}.attention.layer_norm_rms_epsilon`, FLOAT) ?? 1e-5),
    ropeTheta: Number(optional(`${name}.rope.freq_base`, FLOAT) ?? 10000), // llama.cpp's default
    activation: ACTIVATIONS[act],
  }, (f, d) => new FormatError(f, d));
  const { dim } = config;
  return {
    file,
    source,
    config,
    layers: await readLayers(config, "gguf", { float, linear }),
    embedding: float(names.embedding, [vocabSize, dim]),
    finalNorm: float(names.finalNorm, [dim]),
    classifier: tensors.has(names.classifier) ? float(names.classifier, [vocabSize, dim]) : undefined,
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
