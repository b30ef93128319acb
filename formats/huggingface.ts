// Hugging Face BitNet checkpoints (transformers' BitNetForCausalLM): config.json plus one
// or more safetensors shards. Two layouts:
// - packed ("microsoft/bitnet-b1.58-2B-4T", quantization_config.quant_method "bitnet"):
//   linear weights are uint8 [out / 4, in] (see assembly/formats/hf-packed.ts) with a
//   `weight_scale` that divides the output: y = (W x_q) / (weight_scale * x_scale);
// - master weights ("microsoft/bitnet-b1.58-2B-4T-bf16": quant_method "bitnet" with
//   linear_class "autobitlinear" and quantization_mode "online", or no quantization_config):
//   float [out, in], ternarized at load tensor by tensor with absmean, as the model was
//   trained (assembly/ternarize.ts).
// Which one is told by the tensors (U8 [out / 4, in] packed; F32 / F16 / BF16 [out, in]
// masters); config.json must agree, else a FormatError says how they differ.
import { concatFiles, type RandomAccessFile } from "../runtime/files.ts";
import type { Checkpoint, LinearTensor, Span } from "./checkpoint.ts";
import { readLayers, TENSOR_NAMES } from "./architectures.ts";
import { makeConfig } from "./config.ts";
import { FormatError } from "../core/errors.ts";
import { describe } from "../core/options.ts";
import { readSafetensorsFile, type SafetensorsTensor } from "./safetensors.ts";

interface HfConfig {
  architectures?: string[];
  quantization_config?: { quant_method?: string; linear_class?: string; quantization_mode?: string };
  hidden_size: number;
  intermediate_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  num_key_value_heads?: number;
  vocab_size: number;
  max_position_embeddings: number;
  rms_norm_eps?: number;
  rope_theta?: number;
  hidden_act?: string;
  tie_word_embeddings?: boolean;
}

const FLOAT_DTYPES = { F32: undefined, F16: "f16", BF16: "bf16" } as const;

/**
 * Reads a BitNet checkpoint from config.json text and its safetensors shards. `shardOf`,
 * from model.safetensors.index.json, says which shard must hold each tensor.
 */
export async function readHfBitNet(configJson: string, shards: RandomAccessFile[], file: string, shardOf?: Map<string, string>): Promise<Checkpoint> {
  let hf: HfConfig;
  try {
    hf = JSON.parse(configJson);
  } catch (e) {
    throw new FormatError(`${file}/config.json`, `not valid JSON: ${(e as Error).message}`);
  }
  const cfgFail = (detail: string) => new FormatError(`${file}/config.json`, detail);
  if (typeof hf !== "object" || hf === null || Array.isArray(hf)) throw cfgFail(`is ${JSON.stringify(hf)?.slice(0, 40)}, expected a JSON object`);
  if (!Array.isArray(hf.architectures) || !hf.architectures.includes("BitNetForCausalLM")) {
    throw cfgFail(`architectures ${JSON.stringify(hf.architectures)}, expected ["BitNetForCausalLM"]`);
  }
  const quant = hf.quantization_config, method = quant?.quant_method;
  if (quant !== undefined && (typeof quant !== "object" || quant === null || Array.isArray(quant))) {
    throw cfgFail(`quantization_config is ${JSON.stringify(quant)?.slice(0, 40)}, expected an object`);
  }
  if (method !== undefined && method !== "bitnet") throw cfgFail(`quantization_config.quant_method is ${describe(method)}, expected "bitnet" (packed) or none (master weights)`);
  // transformers' BitNet quantizer: quantization_mode "online" (AutoBitLinear) quantizes float
  // master weights on the fly; "offline" (the default) reads packed weights.
  const mode = typeof quant?.quantization_mode === "string" ? quant.quantization_mode.trim().toLowerCase() : undefined;
  const configPacked = method === "bitnet" && mode !== "online";
  const configSays = quant === undefined || method === undefined
    ? "no quantization_config"
    : `quantization_config ${JSON.stringify({ quant_method: method, linear_class: quant.linear_class, quantization_mode: quant.quantization_mode })}`;
  if ((hf.hidden_act ?? "relu2") !== "relu2") throw cfgFail(`hidden_act is ${describe(hf.hidden_act)}, expected "relu2"`);
  const config = makeConfig(file, {
    arch: "bitnet-b1.58",
    dim: hf.hidden_size,
    hiddenDim: hf.intermediate_size,
    nLayers: hf.num_hidden_layers,
    nHeads: hf.num_attention_heads,
    nKvHeads: hf.num_key_value_heads ?? hf.num_attention_heads,
    vocabSize: hf.vocab_size,
    seqLen: hf.max_position_embeddings,
    normEps: hf.rms_norm_eps ?? 1e-5,
    ropeTheta: hf.rope_theta ?? 500000,
  }, (f, d) => new FormatError(`${f}/config.json`, d));

  // Every shard's tensors, at their offsets in the shards laid back to back.
  const { file: source, bases } = concatFiles(shards, file);
  const all = new Map<string, SafetensorsTensor & { shard: string }>();
  for (const [i, shard] of shards.entries()) {
    const shardName = shard.name.split("/").pop()!;
    for (const t of (await readSafetensorsFile(shard)).tensors.values()) {
      if (all.has(t.name)) throw new FormatError(shard.name, `tensor ${t.name} is also in ${all.get(t.name)!.shard}`);
      all.set(t.name, { ...t, offset: t.offset + bases[i], shard: shardName });
    }
  }
  const where = shards.length === 1 ? shards[0].name : `${file} (${shards.length} shards)`;
  const fail = (detail: string) => new FormatError(where, detail);
  for (const [name, shard] of shardOf ?? []) {
    const t = all.get(name);
    if (t && t.shard !== shard) throw fail(`the index puts ${name} in ${shard}, it is in ${t.shard}`);
    if (!t) throw fail(`the index puts ${name} in ${shard}, which does not hold it`);
  }
  // Packed or master weights, as the first projection's dtype says; config.json must say the same.
  const first = all.get(TENSOR_NAMES.hf.layer(0, "q"));
  const packed = first ? first.dtype === "U8" : configPacked;
  if (first && first.dtype !== "U8" && !Object.hasOwn(FLOAT_DTYPES, first.dtype)) {
    throw fail(`tensor ${first.name} is ${first.dtype}, expected packed U8 or F32, F16 or BF16 master weights`);
  }
  if (first && packed !== configPacked) {
    const is = `tensor ${first.name} is ${first.dtype} [${first.shape.join(", ")}]`;
    throw cfgFail(
      packed
        ? `${configSays} means float master weights, but ${is}: packed weights (add "quantization_config": { "quant_method": "bitnet", "quantization_mode": "offline" })`
        : `${configSays} means packed U8 weights, but ${is}: master weights (set quantization_mode "online", as Microsoft's -bf16 folder does)`,
    );
  }
  const tensor = (name: string, shape: number[]): SafetensorsTensor => {
    const t = all.get(name);
    if (!t) throw fail(`tensor ${name} is missing`);
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
      throw fail(`tensor ${name} has shape [${t.shape.join(", ")}], the config implies [${shape.join(", ")}]`);
    }
    return t;
  };
  const float = (name: string, shape: number[]): Span => {
    const t = tensor(name, shape);
    if (!Object.hasOwn(FLOAT_DTYPES, t.dtype)) throw fail(`tensor ${name} is ${t.dtype}, expected F32, F16 or BF16`);
    return { offset: t.offset, length: t.bytes, dtype: FLOAT_DTYPES[t.dtype as keyof typeof FLOAT_DTYPES] };
  };
  const scalar = async (name: string): Promise<number> => {
    const t = all.get(name);
    if (!t || t.shape.reduce((a, b) => a * b, 1) !== 1) throw fail(`tensor ${name} is missing or not a single value`);
    const view = new DataView((await source.read(t.offset, t.bytes, new Uint8Array(t.bytes))).buffer);
    const value = t.dtype === "F32" ? view.getFloat32(0, true) : t.dtype === "BF16" ? new Float32Array(new Uint32Array([view.getUint16(0, true) << 16]).buffer)[0] : NaN;
    if (!Number.isFinite(value) || value === 0) throw fail(`tensor ${name} is ${value} (${t.dtype}), expected a finite non-zero F32 or BF16 scale`);
    return value;
  };
  // A packed weight's scale is a tensor of its own, `<name>_scale` (…weight_scale).
  const linear = async (name: string, rows: number, cols: number): Promise<LinearTensor> => {
    if (!packed) return { name, encoding: "absmean", rows, cols, data: float(name, [rows, cols]) };
    if (rows % 4 !== 0) throw fail(`${name}: ${rows} output rows do not pack 4 to a byte`);
    const t = tensor(name, [rows / 4, cols]);
    if (t.dtype !== "U8") throw fail(`tensor ${name} is ${t.dtype}, expected packed U8`);
    return { name, encoding: "HF_PACKED", rows, cols, data: { offset: t.offset, length: t.bytes }, scale: 1 / (await scalar(`${name}_scale`)) };
  };
  const names = TENSOR_NAMES.hf;
  const layers = await readLayers(config, "hf", { float, linear });
  const { dim, vocabSize } = config;
  const tied = hf.tie_word_embeddings ?? true;
  if (typeof tied !== "boolean") throw cfgFail(`tie_word_embeddings is ${JSON.stringify(tied)}, expected true or false`);
  return {
    file,
    source,
    config,
    layers,
    embedding: float(names.embedding, [vocabSize, dim]),
    finalNorm: float(names.finalNorm, [dim]),
    classifier: tied ? undefined : float(names.classifier, [vocabSize, dim]),
  };
}
