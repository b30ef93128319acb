// Writing a loaded checkpoint as GGUF (`bitnet-wasm convert`): the same tensors under
// llama.cpp's names, ternary layers re-encoded in WASM into I2_S, TQ1_0 or TQ2_0 with the
// source's scale, and the vocabulary as a SentencePiece "llama" vocabulary.
import type { Kernels } from "../runtime/kernels.ts";
import type { Checkpoint, LinearTensor, Span } from "./checkpoint.ts";
import { OptionError, ShapeError } from "./errors.ts";
import { GgmlType, type GgufEntry, GgufType } from "./formats/gguf.ts";
import { type GgufTensorData, writeGguf } from "./formats/gguf-writer.ts";
import { writeSafetensors } from "./formats/safetensors.ts";
import { GGUF_ARCHITECTURES } from "./formats/gguf-model.ts";
import type { Llama2cTokenizer } from "./tokenizer/llama2c.ts";
import { decodeTernary } from "./weights.ts";

export const GGUF_TARGETS = ["gguf-f32", "gguf-i2s", "gguf-tq1", "gguf-tq2"] as const;
export type GgufTarget = (typeof GGUF_TARGETS)[number];

const TERNARY_TYPES = {
  "gguf-i2s": { type: GgmlType.I2_S, rowMultiple: 128, bytes: (k: Kernels, n: number) => k.k.i2sBytes(n), encode: (k: Kernels) => k.k.encodeI2S },
  "gguf-tq1": { type: GgmlType.TQ1_0, rowMultiple: 256, bytes: (_: Kernels, n: number) => (n / 256) * 54, encode: (k: Kernels) => k.k.encodeTQ1 },
  "gguf-tq2": { type: GgmlType.TQ2_0, rowMultiple: 256, bytes: (_: Kernels, n: number) => (n / 256) * 66, encode: (k: Kernels) => k.k.encodeTQ2 },
};

/** The checkpoint as a GGUF file of the given target encoding. */
export function checkpointToGguf(kernels: Kernels, ckpt: Checkpoint, tokenizer: Llama2cTokenizer | null, target: GgufTarget): Uint8Array {
  if (!(GGUF_TARGETS as readonly string[]).includes(target)) {
    throw new OptionError("to", `expected one of ${GGUF_TARGETS.join(", ")}, got ${JSON.stringify(target)}`);
  }
  const c = ckpt.config, arch = c.arch;
  if (!(GGUF_ARCHITECTURES as readonly string[]).includes(arch)) {
    throw new OptionError("to", `writing the ${arch} architecture to GGUF is not supported yet (supported: ${GGUF_ARCHITECTURES.join(", ")})`);
  }
  const bytesOf = (span: Span) => ckpt.bytes.subarray(span.offset, span.offset + span.length);
  const f32 = (name: string, dims: number[], span: Span): GgufTensorData => {
    if (span.dtype) throw new OptionError("to", `${name} is ${span.dtype}; GGUF output keeps F32 float tensors only so far`);
    return { name, dims, type: GgmlType.F32, data: bytesOf(span) };
  };

  const linear = (name: string, t: LinearTensor): GgufTensorData => {
    const dims = [t.cols, t.rows];
    if (target === "gguf-f32") {
      if (t.encoding !== "f32") throw new OptionError("to", `${name} is ternary; gguf-f32 takes fp32 models (convert ternary models to gguf-i2s, gguf-tq1 or gguf-tq2)`);
      return f32(name, dims, t.data);
    }
    if (t.encoding === "f32") throw new OptionError("to", `${name} is fp32; ${target} stores ternary weights (ternarize the model first; gguf-f32 keeps it as it is)`);
    const spec = TERNARY_TYPES[target];
    if (t.cols % spec.rowMultiple !== 0) {
      throw new ShapeError(`${name}: rows of ${t.cols} values; ${target} needs a multiple of ${spec.rowMultiple} (llama.cpp's block size)`);
    }
    const count = t.rows * t.cols, size = spec.bytes(kernels, count);
    const mark = kernels.arena.mark();
    try {
      const int8 = kernels.allocBytes(count), out = kernels.allocBytes(size);
      const scale = decodeTernary(kernels, ckpt, t, int8);
      spec.encode(kernels)(int8, count, scale, out);
      return { name, dims, type: spec.type, data: kernels.u8(out, size).slice() };
    } finally {
      kernels.arena.release(mark);
    }
  };

  const tensors: GgufTensorData[] = [
    f32("token_embd.weight", [c.dim, c.vocabSize], ckpt.embedding),
    f32("output_norm.weight", [c.dim], ckpt.finalNorm),
  ];
  if (ckpt.classifier) tensors.push(f32("output.weight", [c.dim, c.vocabSize], ckpt.classifier));
  ckpt.layers.forEach((l, i) => {
    const b = `blk.${i}.`;
    if (l.attnNorm) tensors.push(f32(`${b}attn_norm.weight`, [c.dim], l.attnNorm));
    tensors.push(linear(`${b}attn_q.weight`, l.q), linear(`${b}attn_k.weight`, l.k), linear(`${b}attn_v.weight`, l.v), linear(`${b}attn_output.weight`, l.o));
    if (l.ffnNorm) tensors.push(f32(`${b}ffn_norm.weight`, [c.dim], l.ffnNorm));
    tensors.push(linear(`${b}ffn_gate.weight`, l.gate), linear(`${b}ffn_down.weight`, l.down), linear(`${b}ffn_up.weight`, l.up));
  });

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
  if (tokenizer) {
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
  return writeGguf(metadata, tensors);
}

/** A BitNet b1.58 checkpoint as a Hugging Face packed checkpoint: config.json and model.safetensors. */
export function checkpointToHf(kernels: Kernels, ckpt: Checkpoint): { configJson: string; weights: Uint8Array } {
  const c = ckpt.config;
  if (c.arch !== "bitnet-b1.58") throw new OptionError("to", `the Hugging Face BitNet layout holds the bitnet-b1.58 architecture, not ${c.arch}`);
  const tensors: { name: string; dtype: "F32" | "F16" | "BF16" | "U8"; shape: number[]; data: Uint8Array }[] = [];
  const float = (name: string, shape: number[], span: Span | undefined) => {
    if (!span) throw new ShapeError(`${name} is missing from the checkpoint`);
    const dtype = span.dtype === "f16" ? "F16" : span.dtype === "bf16" ? "BF16" : "F32";
    tensors.push({ name, dtype, shape, data: ckpt.bytes.subarray(span.offset, span.offset + span.length) });
  };
  const linear = (name: string, t: LinearTensor) => {
    if (t.encoding === "f32") throw new OptionError("to", `${t.name} is fp32; the Hugging Face BitNet layout stores ternary weights`);
    const count = t.rows * t.cols, mark = kernels.arena.mark();
    try {
      const int8 = kernels.allocBytes(count), out = kernels.allocBytes(count / 4);
      const scale = decodeTernary(kernels, ckpt, t, int8);
      kernels.k.encodeHfPacked(int8, t.rows, t.cols, out);
      tensors.push({ name: `${name}.weight`, dtype: "U8", shape: [t.rows / 4, t.cols], data: kernels.u8(out, count / 4).slice() });
      tensors.push({ name: `${name}.weight_scale`, dtype: "F32", shape: [1], data: new Uint8Array(Float32Array.of(1 / scale).buffer) });
    } finally {
      kernels.arena.release(mark);
    }
  };
  float("model.embed_tokens.weight", [c.vocabSize, c.dim], ckpt.embedding);
  ckpt.layers.forEach((l, i) => {
    const p = `model.layers.${i}.`;
    float(`${p}input_layernorm.weight`, [c.dim], l.attnNorm);
    linear(`${p}self_attn.q_proj`, l.q);
    linear(`${p}self_attn.k_proj`, l.k);
    linear(`${p}self_attn.v_proj`, l.v);
    linear(`${p}self_attn.o_proj`, l.o);
    float(`${p}self_attn.attn_sub_norm.weight`, [c.dim], l.attnSubNorm);
    float(`${p}post_attention_layernorm.weight`, [c.dim], l.ffnNorm);
    linear(`${p}mlp.gate_proj`, l.gate);
    linear(`${p}mlp.up_proj`, l.up);
    linear(`${p}mlp.down_proj`, l.down);
    float(`${p}mlp.ffn_sub_norm.weight`, [c.hiddenDim], l.ffnSubNorm);
  });
  float("model.norm.weight", [c.dim], ckpt.finalNorm);
  if (ckpt.classifier) float("lm_head.weight", [c.vocabSize, c.dim], ckpt.classifier);
  const config = {
    architectures: ["BitNetForCausalLM"], model_type: "bitnet", hidden_act: "relu2",
    hidden_size: c.dim, intermediate_size: c.hiddenDim, num_hidden_layers: c.nLayers,
    num_attention_heads: c.nHeads, num_key_value_heads: c.nKvHeads, vocab_size: c.vocabSize,
    max_position_embeddings: c.seqLen, rms_norm_eps: c.normEps, rope_theta: c.ropeTheta,
    tie_word_embeddings: !ckpt.classifier,
    quantization_config: { quant_method: "bitnet", linear_class: "autobitlinear", quantization_mode: "offline" },
  };
  return { configJson: JSON.stringify(config, null, 2), weights: writeSafetensors(tensors) };
}
