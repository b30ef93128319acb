// What each architecture means, in one table (as llama.cpp's LLM_TENSOR_NAMES): its recipe
// (the flags the forward pass reads), the file formats that hold it, and every tensor's name
// in each format. Readers look tensors up by these names and shapes, writers and synth
// iterate them; nothing else spells a tensor name.
import type { Activation, ModelConfig } from "./config.ts";
import type { Checkpoint, LayerTensors, LinearTensor, Span } from "./checkpoint.ts";
import { ShapeError } from "../core/errors.ts";

/** File formats, by what their tensor names look like. */
export type FileFormat = "gguf" | "hf" | "llama2c" | "ak42";

/** An architecture's recipe. */
export interface Architecture {
  /** RMSNorm with weights before attention and before the FFN (attn_norm, ffn_norm). */
  readonly preNorms: boolean;
  /** RMSNorms before o_proj and down_proj (attn_sub_norm, ffn_sub_norm: BitNet b1.58 2B4T). */
  readonly subNorms: boolean;
  /** Every BitLinear RMS-normalises its input, without weights, before quantizing it (bitllama2.c). */
  readonly bitLinearNorm: boolean;
  /** RoPE pairing: (2i, 2i + 1) or NEOX's (i, i + headSize / 2). */
  readonly rope: "interleaved" | "neox";
  /** Linear layers may be float weights used as they are (else they are ternary, or ternarized at load). */
  readonly floatLinears: boolean;
  /** The FFN gate's activation, where the file does not say. */
  readonly activation: Activation;
  /** RoPE base frequency, where the file does not say. */
  readonly ropeTheta: number;
  /** Formats that hold it. */
  readonly formats: readonly FileFormat[];
  /** Its names in GGUF files: the first is llama.cpp's, written for every tensor type but
   *  I2_S, which is written under the last (bitnet.cpp's); readers take any. */
  readonly gguf: readonly string[];
}

/** Every architecture the forward pass runs, by ModelConfig.arch. */
export const ARCHITECTURES = {
  // llama2.c's models and llama.cpp's llama GGUF (whose converter permutes Q and K to interleaved pairs).
  llama: {
    preNorms: true,
    subNorms: false,
    bitLinearNorm: false,
    floatLinears: true,
    rope: "interleaved",
    activation: "silu",
    ropeTheta: 10000,
    formats: ["llama2c", "gguf"],
    gguf: ["llama"],
  },
  // bitllama2.c: no pre-norms; each BitLinear normalises and int8-quantizes its own input.
  bitllama: {
    preNorms: false,
    subNorms: false,
    bitLinearNorm: true,
    floatLinears: false,
    rope: "interleaved",
    activation: "silu",
    ropeTheta: 10000,
    formats: ["ak42", "gguf"],
    gguf: ["bitllama"],
  },
  // BitNet b1.58 2B4T (transformers' modeling_bitnet.py): sub-norms, ReLU^2 gate, RoPE on split halves.
  "bitnet-b1.58": {
    preNorms: true,
    subNorms: true,
    bitLinearNorm: false,
    floatLinears: false,
    rope: "neox",
    activation: "relu2",
    ropeTheta: 500000,
    formats: ["hf", "gguf"],
    gguf: ["bitnet", "bitnet-b1.58"],
  },
} as const satisfies Record<string, Architecture>;

/** A name in ARCHITECTURES. */
export type ArchName = keyof typeof ARCHITECTURES;

/** A layer tensor's role (a field of LayerTensors). */
export type LayerRole = keyof LayerTensors;
/** The linear roles, in the order every writer and synth produces them. */
export const LINEAR_ROLES = ["q", "k", "v", "o", "gate", "up", "down"] as const;
/** The norm roles, in the same sense. */
export const NORM_ROLES = ["attnNorm", "ffnNorm", "attnSubNorm", "ffnSubNorm"] as const;

/** The roles a layer of `arch` has: its norms, then its linear layers. */
export function layerRoles(arch: ArchName): LayerRole[] {
  const a: Architecture = ARCHITECTURES[arch];
  const norms = NORM_ROLES.filter((r) => (r === "attnNorm" || r === "ffnNorm" ? a.preNorms : a.subNorms));
  return [...norms, ...LINEAR_ROLES];
}

/** A role's shape: [rows, cols] of a linear layer, [n] of a norm. */
export function roleShape(role: LayerRole, c: ModelConfig): number[] {
  const { dim, hiddenDim, kvDim } = c;
  const shapes: Record<LayerRole, number[]> = {
    attnNorm: [dim],
    ffnNorm: [dim],
    attnSubNorm: [dim],
    ffnSubNorm: [hiddenDim],
    q: [dim, dim],
    k: [kvDim, dim],
    v: [kvDim, dim],
    o: [dim, dim],
    gate: [hiddenDim, dim],
    up: [hiddenDim, dim],
    down: [dim, hiddenDim],
  };
  return shapes[role];
}

/** Names of the model-level tensors and of each layer role, in one file format. */
export interface TensorNames {
  /** The token embedding table. */
  readonly embedding: string;
  /** The norm after the last layer. */
  readonly finalNorm: string;
  /** The output projection (absent when the embedding is tied). */
  readonly classifier: string;
  /** A layer tensor's name. */
  layer(l: number, role: LayerRole): string;
}

const GGUF_LAYER: Record<LayerRole, string> = {
  attnNorm: "attn_norm.weight",
  ffnNorm: "ffn_norm.weight",
  attnSubNorm: "attn_sub_norm.weight",
  ffnSubNorm: "ffn_sub_norm.weight",
  q: "attn_q.weight",
  k: "attn_k.weight",
  v: "attn_v.weight",
  o: "attn_output.weight",
  gate: "ffn_gate.weight",
  up: "ffn_up.weight",
  down: "ffn_down.weight",
};
// transformers' names; a packed linear layer's scale is `<name>_scale` (…weight_scale).
const HF_LAYER: Record<LayerRole, string> = {
  attnNorm: "input_layernorm.weight",
  ffnNorm: "post_attention_layernorm.weight",
  attnSubNorm: "self_attn.attn_sub_norm.weight",
  ffnSubNorm: "mlp.ffn_sub_norm.weight",
  q: "self_attn.q_proj.weight",
  k: "self_attn.k_proj.weight",
  v: "self_attn.v_proj.weight",
  o: "self_attn.o_proj.weight",
  gate: "mlp.gate_proj.weight",
  up: "mlp.up_proj.weight",
  down: "mlp.down_proj.weight",
};
// llama2.c's run.c names (its files are positional: these name tensors in messages).
const LLAMA2C_LAYER: Record<LayerRole, string> = {
  attnNorm: "rms_att",
  ffnNorm: "rms_ffn",
  attnSubNorm: "",
  ffnSubNorm: "",
  q: "wq",
  k: "wk",
  v: "wv",
  o: "wo",
  gate: "w1",
  down: "w2",
  up: "w3",
};

/** Tensor names per file format. */
export const TENSOR_NAMES: Record<FileFormat, TensorNames> = {
  gguf: { embedding: "token_embd.weight", finalNorm: "output_norm.weight", classifier: "output.weight", layer: (l, r) => `blk.${l}.${GGUF_LAYER[r]}` },
  hf: { embedding: "model.embed_tokens.weight", finalNorm: "model.norm.weight", classifier: "lm_head.weight", layer: (l, r) => `model.layers.${l}.${HF_LAYER[r]}` },
  llama2c: { embedding: "token_embedding", finalNorm: "rms_final", classifier: "wcls", layer: (l, r) => `${LLAMA2C_LAYER[r]}[${l}]` },
  ak42: { embedding: "token embedding", finalNorm: "final norm", classifier: "", layer: (l, r) => `${LLAMA2C_LAYER[r]}[${l}]` },
};

/** Order of the per-layer tensor runs in the positional formats (each run holds one role for every layer). */
export const FILE_ORDER: Record<"llama2c" | "ak42", readonly LayerRole[]> = {
  llama2c: ["attnNorm", "q", "k", "v", "o", "ffnNorm", "gate", "down", "up"],
  ak42: ["q", "k", "v", "o", "gate", "down", "up"],
};

/** How a reader turns one named tensor into a span or a linear layer (after checking its shape). */
export interface TensorReader {
  float(name: string, shape: number[]): Span | Promise<Span>;
  linear(name: string, rows: number, cols: number): LinearTensor | Promise<LinearTensor>;
}

/** Every layer's tensors of a named-tensor format, looked up by the table's names and shapes. */
export async function readLayers(c: ModelConfig, format: FileFormat, read: TensorReader): Promise<LayerTensors[]> {
  const names = TENSOR_NAMES[format], roles = layerRoles(c.arch);
  const layers: LayerTensors[] = [];
  for (let l = 0; l < c.nLayers; l++) {
    const layer: Partial<Record<LayerRole, Span | LinearTensor>> = {};
    for (const role of roles) {
      const shape = roleShape(role, c), name = names.layer(l, role);
      layer[role] = shape.length === 1 ? await read.float(name, shape) : await read.linear(name, shape[0], shape[1]);
    }
    layers.push(layer as LayerTensors);
  }
  return layers;
}

/** A checkpoint's tensors in the table's order, with their names in `format`: what writers iterate. */
export function* namedTensors(ckpt: Checkpoint, format: FileFormat): Generator<
  { kind: "table" | "norm"; name: string; shape: number[]; span: Span } | { kind: "linear"; name: string; tensor: LinearTensor }
> {
  const c = ckpt.config, names = TENSOR_NAMES[format];
  yield { kind: "table", name: names.embedding, shape: [c.vocabSize, c.dim], span: ckpt.embedding };
  yield { kind: "norm", name: names.finalNorm, shape: [c.dim], span: ckpt.finalNorm };
  if (ckpt.classifier) yield { kind: "table", name: names.classifier, shape: [c.vocabSize, c.dim], span: ckpt.classifier };
  for (const [l, layer] of ckpt.layers.entries()) {
    for (const role of layerRoles(c.arch)) {
      const t = layer[role], name = names.layer(l, role);
      if (t === undefined) throw new ShapeError(`${name} is missing from the checkpoint (${c.arch} layers have it)`);
      if ("encoding" in t) yield { kind: "linear", name, tensor: t };
      else yield { kind: "norm", name, shape: roleShape(role, c), span: t };
    }
  }
}

/** The architecture a GGUF file's general.architecture names, or undefined. */
export function ggufArchitecture(name: string): ArchName | undefined {
  return (Object.keys(ARCHITECTURES) as ArchName[]).find((a) => (ARCHITECTURES[a].gguf as readonly string[]).includes(name));
}

/** Every GGUF architecture name readers take. */
export const GGUF_ARCHITECTURES: readonly string[] = Object.values(ARCHITECTURES).flatMap((a) => a.gguf);
