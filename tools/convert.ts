// Writing a checkpoint in another format (`bitnet-wasm convert`, `bitnet-wasm synth`):
// GGUF under llama.cpp's tensor names, ternary layers re-encoded in WASM into I2_S, TQ1_0
// or TQ2_0 with the source's scale, with the vocabulary; or a Hugging Face folder (config.json and
// model.safetensors), packed or as bf16 master weights. Tensors are produced and written
// one at a time, so a model larger than the JS heap converts through a file sink.
import { type ByteSink, memorySink } from "../runtime/files.ts";
import type { Kernels } from "../runtime/kernels.ts";
import type { Ptr } from "../runtime/ptr.ts";
import type { Checkpoint, LinearTensor, Span } from "../formats/checkpoint.ts";
import { OptionError, ShapeError } from "../core/errors.ts";
import { type GgufEntry, GgufType } from "../formats/gguf.ts";
import { ARCHITECTURES, namedTensors } from "../formats/architectures.ts";
import { scaleCount, TENSOR_TYPES, tensorBytes, type TensorType, type TensorTypeName } from "../formats/tensor-types.ts";
import { type GgufTensorSource, writeGgufTo } from "../formats/gguf-writer.ts";
import { type SafetensorsSource, writeSafetensorsTo } from "../formats/safetensors.ts";
import { BpeTokenizer } from "../text/tokenizer/bpe.ts";
import { Llama2cTokenizer, type Tokenizer } from "../text/tokenizer/llama2c.ts";
import type { ResolvedTokenizer } from "../text/tokenizer/resolve.ts";
import { decodeTernary, readSpan, widen } from "../quant/weights.ts";

/** GGUF forms the converter writes. */
export const GGUF_TARGETS = ["gguf-f32", "gguf-i2s", "gguf-tq1", "gguf-tq2"] as const;
/** One of GGUF_TARGETS. */
export type GgufTarget = (typeof GGUF_TARGETS)[number];
/** Hugging Face folder forms the converter writes. */
export const HF_TARGETS = ["hf", "hf-bf16"] as const;
/** One of HF_TARGETS: packed weights or bf16 masters. */
export type HfTarget = (typeof HF_TARGETS)[number];

/** The tensor type each GGUF target stores its linear layers in. */
const TARGET_TYPES = { "gguf-f32": "F32", "gguf-i2s": "I2_S", "gguf-tq1": "TQ1_0", "gguf-tq2": "TQ2_0" } as const satisfies Record<GgufTarget, TensorTypeName>;

/** `count` int8 codes at `int8` with one scale, encoded into `type` in kernel memory; returns the bytes. */
function encodeTernary(kernels: Kernels, type: TensorType, int8: Ptr, count: number, scale: number): Uint8Array {
  const size = tensorBytes(type, count)!, out = kernels.allocBytes(size);
  const scales = kernels.put(new Float32Array(scaleCount(type, count)).fill(scale));
  kernels.k[type.ternary!.encode](int8, count, scales, out);
  return kernels.u8(out, size).slice();
}

/** Runs `use` on a tensor's int8 codes and scale in kernel memory, freeing them afterwards. */
async function withTernary<T>(kernels: Kernels, ckpt: Checkpoint, t: LinearTensor, target: string, use: (int8: Ptr, scale: number) => T): Promise<T> {
  if (t.encoding === "f32") throw new OptionError("to", `${t.name} is fp32; ${target} stores ternary weights (ternarize the model first; gguf-f32 keeps it as it is)`);
  const mark = kernels.arena.mark();
  try {
    const int8 = kernels.allocBytes(t.rows * t.cols);
    return use(int8, await decodeTernary(kernels, ckpt, t, int8));
  } finally {
    kernels.arena.release(mark);
  }
}

/** A float tensor's stored bytes (f32 on request). */
async function floatBytes(kernels: Kernels, ckpt: Checkpoint, span: Span, asF32: boolean): Promise<Uint8Array> {
  if (!span.dtype || !asF32) return ckpt.source.read(span.offset, span.length, new Uint8Array(span.length));
  const mark = kernels.arena.mark();
  try {
    const n = span.length / 2, out = kernels.allocF32(n);
    widen(kernels, span.dtype, await readSpan(kernels, ckpt, span), n, out);
    return kernels.u8(out, n * 4).slice();
  } finally {
    kernels.arena.release(mark);
  }
}

/** The GGUF architecture name a checkpoint is written under (formats/architectures.ts). */
function ggufArch(ckpt: Checkpoint, target: GgufTarget): string {
  const arch = ckpt.config.arch, names = ARCHITECTURES[arch].gguf;
  if (!ARCHITECTURES[arch].floatLinears && target === "gguf-f32") throw new OptionError("to", `${arch} models are ternary: write gguf-i2s, gguf-tq1 or gguf-tq2`);
  return target === "gguf-i2s" ? names[names.length - 1] : names[0];
}

/** The tokenizers whose vocabulary GGUF can carry: SentencePiece ("llama") and byte-level BPE ("gpt2"). */
export type GgufVocabularySource = Llama2cTokenizer | BpeTokenizer;

/** A tokenizer as one GGUF can carry (null stays null); other Tokenizer implementations are refused. */
export function ggufVocabularySource(tokenizer: Tokenizer | null): GgufVocabularySource | null {
  if (tokenizer === null || tokenizer instanceof BpeTokenizer || tokenizer instanceof Llama2cTokenizer) return tokenizer;
  throw new OptionError("tokenizer", "only a byte-level BPE (tokenizer.json) or SentencePiece (llama2.c tokenizer.bin) vocabulary can be written into a model file");
}

const utf8 = (text: string) => new TextEncoder().encode(text);

/**
 * The tokenizer files of a Hugging Face folder, by name. Byte-level BPE: tokenizer.json (the bytes
 * it was read from, else built from the vocabulary) and tokenizer_config.json (the one read with
 * it, else BOS / EOS and the chat template when there is one). SentencePiece: llama2.c's
 * tokenizer.bin (the resolver finds it in the folder; Hugging Face has no tokenizer.json form of it here).
 */
export function hfTokenizerFiles(source: ResolvedTokenizer | Tokenizer | null): Map<string, Uint8Array> {
  const resolved: ResolvedTokenizer | null = source === null ? null : "encode" in source ? { tokenizer: source, from: "the tokenizer option" } : source;
  const files = new Map<string, Uint8Array>();
  const t = ggufVocabularySource(resolved?.tokenizer ?? null);
  if (!t) return files;
  if (t instanceof Llama2cTokenizer) {
    files.set("tokenizer.bin", resolved!.bin ?? t.toBin());
    return files;
  }
  files.set("tokenizer.json", resolved!.json ?? utf8(t.toJson()));
  if (resolved!.config) {
    files.set("tokenizer_config.json", resolved!.config);
  } else {
    const text = (id: number) => (id >= 0 ? t.tokenText(id) : undefined);
    const config = { bos_token: text(t.bos), eos_token: text(t.eos), ...(t.chatTemplate !== undefined ? { chat_template: t.chatTemplate } : {}) };
    files.set("tokenizer_config.json", utf8(JSON.stringify(config, null, 2)));
  }
  return files;
}

/** Writes the checkpoint as a GGUF file of the given target encoding. */
export async function writeCheckpointGguf(kernels: Kernels, ckpt: Checkpoint, tokenizer: GgufVocabularySource | null, target: GgufTarget, sink: ByteSink): Promise<void> {
  if (!(GGUF_TARGETS as readonly string[]).includes(target)) {
    throw new OptionError("to", `expected one of ${[...GGUF_TARGETS, ...HF_TARGETS].join(", ")}, got ${JSON.stringify(target)}`);
  }
  const c = ckpt.config, arch = ggufArch(ckpt, target), type: TensorType = TENSOR_TYPES[TARGET_TYPES[target]];
  const ggml = (span: Span) => TENSOR_TYPES[span.dtype === "f16" ? "F16" : span.dtype === "bf16" ? "BF16" : "F32"].ggml;
  const linear = (name: string, t: LinearTensor): GgufTensorSource => {
    const dims = [t.cols, t.rows];
    if (target === "gguf-f32") {
      if (t.encoding !== "f32") throw new OptionError("to", `${name} is ternary; gguf-f32 takes fp32 models (convert ternary models to gguf-i2s, gguf-tq1 or gguf-tq2)`);
      return { name, dims, type: type.ggml!, data: () => floatBytes(kernels, ckpt, t.data, true) };
    }
    if (t.encoding === "f32") throw new OptionError("to", `${name} is fp32; ${target} stores ternary weights (ternarize the model first; gguf-f32 keeps it as it is)`);
    if (t.cols % type.blockValues !== 0) {
      throw new ShapeError(`${name}: rows of ${t.cols} values; ${target} needs a multiple of ${type.blockValues} (llama.cpp's block size)`);
    }
    return { name, dims, type: type.ggml!, data: () => withTernary(kernels, ckpt, t, target, (int8, scale) => encodeTernary(kernels, type, int8, t.rows * t.cols, scale)) };
  };
  // Tables keep their stored precision; norms are written as F32, as llama.cpp expects. GGUF dims run innermost first.
  const tensors: GgufTensorSource[] = [...namedTensors(ckpt, "gguf")].map((n) =>
    n.kind === "linear"
      ? linear(n.name, n.tensor)
      : n.kind === "table"
      ? { name: n.name, dims: [...n.shape].reverse(), type: ggml(n.span), data: () => floatBytes(kernels, ckpt, n.span, false) }
      : { name: n.name, dims: [...n.shape].reverse(), type: TENSOR_TYPES.F32.ggml, data: () => floatBytes(kernels, ckpt, n.span, true) }
  );

  const u32 = (value: number): GgufEntry => ({ type: GgufType.UINT32, value });
  const metadata: [string, GgufEntry][] = [
    ["general.architecture", { type: GgufType.STRING, value: arch }],
    ["general.name", { type: GgufType.STRING, value: ckpt.file.split("/").pop() ?? ckpt.file }],
    [`${arch}.context_length`, u32(c.seqLen)],
    [`${arch}.embedding_length`, u32(c.dim)],
    [`${arch}.feed_forward_length`, u32(c.hiddenDim)],
    [`${arch}.block_count`, u32(c.nLayers)],
    [`${arch}.attention.head_count`, u32(c.nHeads)],
    [`${arch}.attention.head_count_kv`, u32(c.nKvHeads)],
    [`${arch}.rope.dimension_count`, u32(c.headSize)],
    [`${arch}.rope.freq_base`, { type: GgufType.FLOAT32, value: c.ropeTheta }],
    [`${arch}.attention.layer_norm_rms_epsilon`, { type: GgufType.FLOAT32, value: c.normEps }],
    [`${arch}.vocab_size`, u32(c.vocabSize)],
  ];
  if (arch === "bitnet") metadata.push(["bitnet.hidden_activation", { type: GgufType.STRING, value: c.activation }]);
  if (tokenizer instanceof BpeTokenizer) {
    const v = tokenizer.ggufVocabulary();
    metadata.push(
      ["tokenizer.ggml.model", { type: GgufType.STRING, value: "gpt2" }],
      ["tokenizer.ggml.pre", { type: GgufType.STRING, value: v.pre }],
      ["tokenizer.ggml.tokens", { type: GgufType.ARRAY, itemType: GgufType.STRING, value: v.tokens }],
      ["tokenizer.ggml.token_type", { type: GgufType.ARRAY, itemType: GgufType.INT32, value: v.tokenTypes }],
      ["tokenizer.ggml.merges", { type: GgufType.ARRAY, itemType: GgufType.STRING, value: v.merges }],
      ["tokenizer.ggml.bos_token_id", u32(v.bos)],
      ["tokenizer.ggml.eos_token_id", u32(v.eos)],
    );
    if (v.chatTemplate !== undefined) metadata.push(["tokenizer.chat_template", { type: GgufType.STRING, value: v.chatTemplate }]);
  } else if (tokenizer) {
    const types = tokenizer.pieces.map((p, i) => (i === 0 ? 2 : i === tokenizer.bos || i === tokenizer.eos ? 3 : /^<0x[0-9A-F]{2}>$/.test(p) ? 6 : 1));
    metadata.push(
      ["tokenizer.ggml.model", { type: GgufType.STRING, value: "llama" }],
      ["tokenizer.ggml.tokens", { type: GgufType.ARRAY, itemType: GgufType.STRING, value: tokenizer.ggufTokens() }],
      ["tokenizer.ggml.scores", { type: GgufType.ARRAY, itemType: GgufType.FLOAT32, value: Array.from(tokenizer.scores) }],
      ["tokenizer.ggml.token_type", { type: GgufType.ARRAY, itemType: GgufType.INT32, value: types }],
      ["tokenizer.ggml.bos_token_id", u32(tokenizer.bos)],
      ["tokenizer.ggml.eos_token_id", u32(tokenizer.eos)],
    );
  }
  await writeGgufTo(sink, metadata, tensors);
}

/** The checkpoint as a GGUF file in memory. */
export async function checkpointToGguf(kernels: Kernels, ckpt: Checkpoint, tokenizer: GgufVocabularySource | null, target: GgufTarget): Promise<Uint8Array> {
  const sink = memorySink();
  await writeCheckpointGguf(kernels, ckpt, tokenizer, target, sink);
  return sink.bytes();
}

/**
 * Writes a BitNet b1.58 checkpoint as a Hugging Face checkpoint's model.safetensors and
 * returns its config.json. "hf": packed uint8 weights with weight_scale (the
 * microsoft/bitnet-b1.58-2B-4T layout). "hf-bf16": bf16 master weights; from a ternary
 * model these are codes * scale / p (p the fraction of non-zero codes), the values whose
 * absmean ternarization gives back the same codes and, up to bf16 rounding, the same scale.
 */
export async function writeCheckpointHf(kernels: Kernels, ckpt: Checkpoint, target: HfTarget, sink: ByteSink): Promise<string> {
  const c = ckpt.config;
  if (!(HF_TARGETS as readonly string[]).includes(target)) throw new OptionError("to", `expected one of ${HF_TARGETS.join(", ")}, got ${JSON.stringify(target)}`);
  if (!(ARCHITECTURES[c.arch].formats as readonly string[]).includes("hf")) {
    throw new OptionError("to", `the Hugging Face BitNet layout holds the bitnet-b1.58 architecture, not ${c.arch}`);
  }
  const masters = target === "hf-bf16";
  const tensors: SafetensorsSource[] = [];
  const float = (name: string, shape: number[], span: Span) => {
    const dtype = span.dtype === "f16" ? "F16" : span.dtype === "bf16" ? "BF16" : "F32";
    tensors.push({ name, dtype, shape, data: () => floatBytes(kernels, ckpt, span, false) });
  };
  const linear = (name: string, t: LinearTensor) => {
    const count = t.rows * t.cols;
    if (masters) {
      tensors.push({
        name,
        dtype: "BF16",
        shape: [t.rows, t.cols],
        data: () =>
          withTernary(kernels, ckpt, t, target, (int8, scale) => {
            const nonZero = kernels.k.countNonZeroI8(int8, count), out = kernels.allocBytes(count * 2);
            kernels.k.int8ToBF16(int8, count, nonZero > 0 ? (scale * count) / nonZero : scale, out);
            return kernels.u8(out, count * 2).slice();
          }),
      });
      return;
    }
    if (t.rows % 4 !== 0) throw new ShapeError(`${t.name}: ${t.rows} output rows do not pack 4 to a byte`);
    let scale = NaN; // known once the weights are decoded; weight_scale is written right after them
    tensors.push({
      name,
      dtype: "U8",
      shape: [t.rows / 4, t.cols],
      data: () => withTernary(kernels, ckpt, t, target, (int8, s) => encodeTernary(kernels, TENSOR_TYPES.HF_PACKED, int8, count, scale = s)),
    });
    tensors.push({ name: `${name}_scale`, dtype: "F32", shape: [1], data: () => new Uint8Array(Float32Array.of(1 / scale).buffer) });
  };
  for (const n of namedTensors(ckpt, "hf")) n.kind === "linear" ? linear(n.name, n.tensor) : float(n.name, n.shape, n.span);
  await writeSafetensorsTo(sink, tensors);
  const config = {
    architectures: ["BitNetForCausalLM"],
    model_type: "bitnet",
    hidden_act: c.activation,
    hidden_size: c.dim,
    intermediate_size: c.hiddenDim,
    num_hidden_layers: c.nLayers,
    num_attention_heads: c.nHeads,
    num_key_value_heads: c.nKvHeads,
    vocab_size: c.vocabSize,
    max_position_embeddings: c.seqLen,
    rms_norm_eps: c.normEps,
    rope_theta: c.ropeTheta,
    tie_word_embeddings: !ckpt.classifier,
    torch_dtype: "bfloat16",
    ...(masters ? {} : { quantization_config: { quant_method: "bitnet", linear_class: "autobitlinear", quantization_mode: "offline" } }),
  };
  return JSON.stringify(config, null, 2);
}

/** The checkpoint as a Hugging Face checkpoint in memory: config.json text and model.safetensors bytes. */
export async function checkpointToHf(kernels: Kernels, ckpt: Checkpoint, target: HfTarget = "hf"): Promise<{ configJson: string; weights: Uint8Array }> {
  const sink = memorySink();
  const configJson = await writeCheckpointHf(kernels, ckpt, target, sink);
  return { configJson, weights: sink.bytes() };
}
