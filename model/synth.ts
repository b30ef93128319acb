// Synthetic BitNet b1.58 models: the 2B4T architecture with random weights, for measuring
// the full-size shape where the real checkpoint cannot be downloaded, and for testing the
// forward pass against an independent reference on small shapes. Ternary weights are
// stored as I2_S (encoded by the kernels) with an absmean-like scale per tensor.
import type { Kernels } from "../runtime/kernels.ts";
import type { Checkpoint, LayerTensors, LinearTensor, Span } from "./checkpoint.ts";
import { makeConfig, type ModelConfig } from "./config.ts";
import { FormatError, OptionError } from "./errors.ts";

/** BitNet b1.58 2B4T's hyperparameters (Hugging Face config.json of microsoft/bitnet-b1.58-2B-4T). */
export const BITNET_2B4T_SHAPE = {
  dim: 2560, hiddenDim: 6912, nLayers: 30, nHeads: 20, nKvHeads: 5, vocabSize: 128256, seqLen: 4096,
} as const;

export type SynthShape = { [K in keyof typeof BITNET_2B4T_SHAPE]: number };

/** The plain parameters behind a synthetic checkpoint (for reference implementations). */
export interface SynthWeights {
  embedding: Float32Array;
  finalNorm: Float32Array;
  layers: {
    attnNorm: Float32Array; ffnNorm: Float32Array; attnSubNorm: Float32Array; ffnSubNorm: Float32Array;
    linears: Record<"q" | "k" | "v" | "o" | "gate" | "up" | "down", { rows: number; cols: number; w: Int8Array; scale: number }>;
  }[];
}

/** A deterministic stream in [0, 1) (mulberry32): the same model in every runtime. */
function stream(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function synthesizeBitNet(kernels: Kernels, shape: SynthShape, seed = 1): { checkpoint: Checkpoint; weights: SynthWeights } {
  const file = `synthetic bitnet-b1.58 (seed ${seed})`;
  const config: ModelConfig = makeConfig(file, {
    arch: "bitnet-b1.58", ...shape, normEps: 1e-5, ropeTheta: 500000, rope: "neox", activation: "relu2",
  }, (_, d) => new OptionError("shape", d));
  const { dim, hiddenDim, kvDim, vocabSize, nLayers } = config;
  for (const [what, n] of [["dim", dim], ["hiddenDim", hiddenDim], ["kv dim", kvDim]] as const) {
    if (n % 128 !== 0) throw new OptionError("shape", `${what} ${n} must be a multiple of 128 (I2_S blocks)`);
  }
  const next = stream(seed);
  const chunks: Uint8Array[] = [];
  let size = 0;
  const place = (bytes: Uint8Array): Span => {
    chunks.push(bytes);
    size += bytes.length;
    return { offset: size - bytes.length, length: bytes.length };
  };
  const floats = (n: number, around: number, spread: number) => Float32Array.from({ length: n }, () => around + (next() * 2 - 1) * spread);
  const f32 = (a: Float32Array) => place(new Uint8Array(a.buffer));
  const ternary = (name: string, rows: number, cols: number) => {
    const w = Int8Array.from({ length: rows * cols }, () => Math.floor(next() * 3) - 1);
    const scale = Math.fround(0.5 + next());
    const count = rows * cols, bytes = kernels.k.i2sBytes(count);
    const mark = kernels.arena.mark();
    try {
      const out = kernels.allocBytes(bytes);
      kernels.k.encodeI2S(kernels.put(w), count, scale, out);
      const tensor: LinearTensor = { name, encoding: "i2s", rows, cols, data: place(kernels.u8(out, bytes).slice()) };
      return { tensor, raw: { rows, cols, w, scale } };
    } finally {
      kernels.arena.release(mark);
    }
  };

  const embedding = floats(vocabSize * dim, 0, 1), finalNorm = floats(dim, 1, 0.2);
  const embeddingSpan = f32(embedding), finalNormSpan = f32(finalNorm);
  const weights: SynthWeights = { embedding, finalNorm, layers: [] };
  const layers: LayerTensors[] = [];
  for (let l = 0; l < nLayers; l++) {
    const b = `blk.${l}.`;
    const norms = { attnNorm: floats(dim, 1, 0.2), ffnNorm: floats(dim, 1, 0.2), attnSubNorm: floats(dim, 1, 0.2), ffnSubNorm: floats(hiddenDim, 1, 0.2) };
    const q = ternary(`${b}attn_q.weight`, dim, dim), k = ternary(`${b}attn_k.weight`, kvDim, dim);
    const v = ternary(`${b}attn_v.weight`, kvDim, dim), o = ternary(`${b}attn_output.weight`, dim, dim);
    const gate = ternary(`${b}ffn_gate.weight`, hiddenDim, dim), up = ternary(`${b}ffn_up.weight`, hiddenDim, dim);
    const down = ternary(`${b}ffn_down.weight`, dim, hiddenDim);
    layers.push({
      attnNorm: f32(norms.attnNorm), ffnNorm: f32(norms.ffnNorm), attnSubNorm: f32(norms.attnSubNorm), ffnSubNorm: f32(norms.ffnSubNorm),
      q: q.tensor, k: k.tensor, v: v.tensor, o: o.tensor, gate: gate.tensor, up: up.tensor, down: down.tensor,
    });
    weights.layers.push({ ...norms, linears: { q: q.raw, k: k.raw, v: v.raw, o: o.raw, gate: gate.raw, up: up.raw, down: down.raw } });
  }
  if (!Number.isSafeInteger(size) || size > 2 ** 32) throw new FormatError(file, `${size} bytes do not fit in memory`);
  const bytes = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    bytes.set(c, at);
    at += c.length;
  }
  return { checkpoint: { file, bytes, config, embedding: embeddingSpan, finalNorm: finalNormSpan, layers }, weights };
}
