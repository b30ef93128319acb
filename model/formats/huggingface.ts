// Hugging Face BitNet checkpoints (transformers' BitNetForCausalLM, the packed
// "microsoft/bitnet-b1.58-2B-4T" layout): config.json plus safetensors whose linear
// weights are uint8 [out / 4, in] (see assembly/formats/hf-packed.ts) with a
// `weight_scale` that divides the output: y = (W x_q) / (weight_scale * x_scale).
import type { Checkpoint, LayerTensors, LinearTensor, Span } from "../checkpoint.ts";
import { makeConfig } from "../config.ts";
import { FormatError } from "../errors.ts";
import { readSafetensors, type SafetensorsTensor } from "./safetensors.ts";

interface HfConfig {
  architectures?: string[];
  quantization_config?: { quant_method?: string };
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

/** Reads a packed BitNet checkpoint: config.json text and one safetensors file. */
export function readHfBitNet(configJson: string, weights: Uint8Array, file: string): Checkpoint {
  let hf: HfConfig;
  try {
    hf = JSON.parse(configJson);
  } catch (e) {
    throw new FormatError(`${file}/config.json`, `not valid JSON: ${(e as Error).message}`);
  }
  const cfgFail = (detail: string) => new FormatError(`${file}/config.json`, detail);
  if (!hf.architectures?.includes("BitNetForCausalLM")) throw cfgFail(`architectures ${JSON.stringify(hf.architectures)}, expected ["BitNetForCausalLM"]`);
  if (hf.quantization_config?.quant_method !== "bitnet") {
    throw cfgFail("no quantization_config with quant_method \"bitnet\": bf16 master-weight checkpoints are not supported yet (use the packed one)");
  }
  if ((hf.hidden_act ?? "relu2") !== "relu2") throw cfgFail(`hidden_act "${hf.hidden_act}", expected "relu2"`);
  const config = makeConfig(file, {
    arch: "bitnet-b1.58", dim: hf.hidden_size, hiddenDim: hf.intermediate_size, nLayers: hf.num_hidden_layers,
    nHeads: hf.num_attention_heads, nKvHeads: hf.num_key_value_heads ?? hf.num_attention_heads, vocabSize: hf.vocab_size,
    seqLen: hf.max_position_embeddings, normEps: hf.rms_norm_eps ?? 1e-5, ropeTheta: hf.rope_theta ?? 500000,
    rope: "neox", activation: "relu2",
  }, (f, d) => new FormatError(`${f}/config.json`, d));

  const st = readSafetensors(weights, `${file}/model.safetensors`);
  const fail = (detail: string) => new FormatError(`${file}/model.safetensors`, detail);
  const tensor = (name: string, shape: number[]): SafetensorsTensor => {
    const t = st.tensors.get(name);
    if (!t) throw fail(`tensor ${name} is missing`);
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
      throw fail(`tensor ${name} has shape [${t.shape.join(", ")}], the config implies [${shape.join(", ")}]`);
    }
    return t;
  };
  const float = (name: string, shape: number[]): Span => {
    const t = tensor(name, shape);
    if (!(t.dtype in FLOAT_DTYPES)) throw fail(`tensor ${name} is ${t.dtype}, expected F32, F16 or BF16`);
    return { offset: t.offset, length: t.bytes, dtype: FLOAT_DTYPES[t.dtype as keyof typeof FLOAT_DTYPES] };
  };
  const scalar = (name: string): number => {
    const t = st.tensors.get(name);
    if (!t || t.shape.reduce((a, b) => a * b, 1) !== 1) throw fail(`tensor ${name} is missing or not a single value`);
    const view = new DataView(weights.buffer, weights.byteOffset + t.offset, t.bytes);
    const value = t.dtype === "F32" ? view.getFloat32(0, true) : t.dtype === "BF16" ? new Float32Array(new Uint32Array([view.getUint16(0, true) << 16]).buffer)[0] : NaN;
    if (!Number.isFinite(value) || value === 0) throw fail(`tensor ${name} is ${value} (${t.dtype}), expected a finite non-zero F32 or BF16 scale`);
    return value;
  };
  const linear = (name: string, rows: number, cols: number): LinearTensor => {
    if (rows % 4 !== 0) throw fail(`${name}: ${rows} output rows do not pack 4 to a byte`);
    const t = tensor(`${name}.weight`, [rows / 4, cols]);
    if (t.dtype !== "U8") throw fail(`tensor ${name}.weight is ${t.dtype}, expected packed U8`);
    return { name: `${name}.weight`, encoding: "hf-packed", rows, cols, data: { offset: t.offset, length: t.bytes }, scale: 1 / scalar(`${name}.weight_scale`) };
  };
  const { dim, hiddenDim, kvDim, vocabSize } = config;
  const layers: LayerTensors[] = Array.from({ length: config.nLayers }, (_, l) => {
    const p = `model.layers.${l}.`;
    return {
      attnNorm: float(`${p}input_layernorm.weight`, [dim]),
      q: linear(`${p}self_attn.q_proj`, dim, dim), k: linear(`${p}self_attn.k_proj`, kvDim, dim),
      v: linear(`${p}self_attn.v_proj`, kvDim, dim), o: linear(`${p}self_attn.o_proj`, dim, dim),
      attnSubNorm: float(`${p}self_attn.attn_sub_norm.weight`, [dim]),
      ffnNorm: float(`${p}post_attention_layernorm.weight`, [dim]),
      gate: linear(`${p}mlp.gate_proj`, hiddenDim, dim), up: linear(`${p}mlp.up_proj`, hiddenDim, dim),
      down: linear(`${p}mlp.down_proj`, dim, hiddenDim),
      ffnSubNorm: float(`${p}mlp.ffn_sub_norm.weight`, [hiddenDim]),
    };
  });
  const tied = hf.tie_word_embeddings ?? true;
  return {
    file, bytes: weights, config, layers,
    embedding: float("model.embed_tokens.weight", [vocabSize, dim]),
    finalNorm: float("model.norm.weight", [dim]),
    classifier: tied ? undefined : float("lm_head.weight", [vocabSize, dim]),
  };
}
