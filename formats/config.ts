// The shape and recipe of a transformer, whatever file it came from.
import { ARCHITECTURES, type ArchName } from "./architectures.ts";
import { describe } from "../core/options.ts";

/** A model's architecture and sizes, as every reader fills it in. */
export interface ModelConfig {
  /** Architecture: a row of formats/architectures.ts, whose recipe the forward pass follows. */
  arch: ArchName;
  /** Width of the residual stream. */
  dim: number;
  /** Width of the feed-forward hidden layer. */
  hiddenDim: number;
  /** Number of transformer blocks. */
  nLayers: number;
  /** Attention (query) heads. */
  nHeads: number;
  /** Key / value heads (fewer than nHeads: grouped-query attention). */
  nKvHeads: number;
  /** Tokens in the vocabulary. */
  vocabSize: number;
  /** Longest context the model was trained for (and the KV cache's length). */
  seqLen: number;
  /** dim / nHeads. */
  headSize: number;
  /** Width of the keys and values: headSize * nKvHeads. */
  kvDim: number;
  /** RMSNorm epsilon. */
  normEps: number;
  /** RoPE base frequency. */
  ropeTheta: number;
  /** RoPE pairing: "interleaved" (2i, 2i+1) or "neox" (i, i + headSize/2). */
  rope: "interleaved" | "neox";
  /** FFN gate activation: SwiGLU or ReLU^2-GLU. */
  activation: Activation;
}

/** Feed-forward gate activation: SiLU (Llama) or squared ReLU (BitNet b1.58 2B4T). */
export type Activation = "silu" | "relu2";

/** Fills the derived fields, and the architecture's defaults for what the file leaves out, and checks that the numbers fit together. */
export function makeConfig(
  file: string,
  given: Omit<ModelConfig, "headSize" | "kvDim" | "rope" | "activation" | "ropeTheta" | "normEps"> & Partial<Pick<ModelConfig, "activation" | "ropeTheta" | "normEps">>,
  fail: (file: string, detail: string) => Error,
): ModelConfig {
  const a = ARCHITECTURES[given.arch];
  const fields = { normEps: 1e-5, ropeTheta: a.ropeTheta, activation: a.activation, ...given, rope: a.rope };
  const { dim, hiddenDim, nLayers, nHeads, nKvHeads, vocabSize, seqLen } = fields;
  const dims = { dim, hiddenDim, nLayers, nHeads, nKvHeads, vocabSize, seqLen };
  for (const [name, v] of Object.entries(dims)) {
    if (!Number.isInteger(v) || v <= 0 || v > 1 << 24) throw fail(file, `header field ${name} = ${describe(v)}, expected an integer in 1..${1 << 24}`);
  }
  for (const [name, v] of Object.entries({ normEps: fields.normEps, ropeTheta: fields.ropeTheta })) {
    if (typeof v !== "number" || !Number.isFinite(v) || v <= 0) throw fail(file, `${name} = ${describe(v)}, expected a finite positive number`);
  }
  if (dim % nHeads !== 0) throw fail(file, `dim ${dim} is not a multiple of n_heads ${nHeads}`);
  if (nHeads % nKvHeads !== 0) throw fail(file, `n_heads ${nHeads} is not a multiple of n_kv_heads ${nKvHeads}`);
  const headSize = dim / nHeads;
  if (headSize % 2 !== 0) throw fail(file, `head size ${headSize} is odd; RoPE needs pairs`);
  return { ...fields, headSize, kvDim: headSize * nKvHeads };
}
