// Synthetic BitNet b1.58 models: the 2B4T architecture with random weights, for measuring
// the full-size shape where the real checkpoint cannot be downloaded, and for testing the
// forward pass against an independent reference on small shapes. The same shapes can be
// made under llama's architecture (pre-norms only, SwiGLU, interleaved RoPE), in which
// llama.cpp also reads its ternary types.
// The checkpoint's file is virtual: each tensor's bytes are generated when it is read
// (deterministically from the seed and the tensor's index), so even the 2.4B-parameter
// shape never exists whole in memory: loading or converting it streams tensor by tensor.
// Ternary weights are I2_S (encoded by a private kernel instance) with one scale each;
// embedding values are exact in f32, f16 and bf16 alike, so the same model can be stored
// in any of them.
import { mulberry32 } from "../core/random.ts";
import type { RandomAccessFile } from "../runtime/files.ts";
import { type Kernels, loadKernels } from "../runtime/kernels.ts";
import type { Checkpoint, LayerTensors, LinearTensor, Span } from "../formats/checkpoint.ts";
import { type LayerRole, layerRoles, LINEAR_ROLES, roleShape, TENSOR_NAMES } from "../formats/architectures.ts";
import { scaleCount, TENSOR_TYPES, tensorBytes } from "../formats/tensor-types.ts";
import { makeConfig, type ModelConfig } from "../formats/config.ts";
import { BitNetError, OptionError } from "../core/errors.ts";

/** BitNet b1.58 2B4T's hyperparameters (Hugging Face config.json of microsoft/bitnet-b1.58-2B-4T). */
export const BITNET_2B4T_SHAPE = {
  dim: 2560,
  hiddenDim: 6912,
  nLayers: 30,
  nHeads: 20,
  nKvHeads: 5,
  vocabSize: 128256,
  seqLen: 4096,
} as const;

/** Sizes of a synthesized BitNet model (the fields of BITNET_2B4T_SHAPE). */
export type SynthShape = { [K in keyof typeof BITNET_2B4T_SHAPE]: number };

/** How synthesizeBitNet generates weights. */
export interface SynthOptions {
  /** Seed of the weights' random stream (default 1). */
  seed?: number;
  /** Storage of the embedding table (default f16, as in bitnet.cpp's I2_S GGUF). */
  embedding?: "f32" | "f16" | "bf16";
  /** Architecture (default bitnet-b1.58: sub-norms, ReLU^2 gating, NEOX RoPE; llama: none of those, SwiGLU, interleaved RoPE). */
  arch?: SynthArch;
}

/** The architectures synthesizeBitNet makes. */
export const SYNTH_ARCHITECTURES = ["bitnet-b1.58", "llama"] as const;
/** One of SYNTH_ARCHITECTURES. */
export type SynthArch = (typeof SYNTH_ARCHITECTURES)[number];

/** The seven projections of a block. */
export type LinearName = (typeof LINEAR_ROLES)[number];

/** The plain parameters behind a synthetic checkpoint (for reference implementations). */
export interface SynthWeights {
  /** Embedding table [vocab, dim] as f32. */
  embedding: Float32Array;
  /** Final RMSNorm weight. */
  finalNorm: Float32Array;
  /** Each block's tensors as plain arrays. */
  layers: {
    attnNorm: Float32Array;
    ffnNorm: Float32Array;
    attnSubNorm?: Float32Array;
    ffnSubNorm?: Float32Array;
    linears: Record<LinearName, { rows: number; cols: number; w: Int8Array; scale: number }>;
  }[];
}

/** A deterministic stream of u32 (mulberry32), seeded per tensor: the same model in every runtime. */
function stream(seed: number, index: number): () => number {
  return mulberry32(Math.imul(seed, 0x9e3779b1) ^ Math.imul(index + 1, 0x85ebca6b));
}

// Generators, one per kind of tensor.
function normValues(seed: number, index: number, n: number): Float32Array {
  const next = stream(seed, index);
  return Float32Array.from({ length: n }, () => 1 + ((next() / 2 ** 32) * 2 - 1) * 0.2);
}

/** Codes -1/0/1 (0 with probability 1/2) and a scale in [0.5, 1.5). */
function ternaryValues(seed: number, index: number, n: number): { w: Int8Array; scale: number } {
  const next = stream(seed, index), w = new Int8Array(n);
  const scale = Math.fround(0.5 + next() / 2 ** 32);
  for (let i = 0; i < n; i += 16) {
    let r = next();
    for (let j = i; j < Math.min(n, i + 16); j++, r >>>= 2) w[j] = (r & 3) === 3 ? 0 : (r & 3) - 1;
  }
  return { w, scale };
}

/** Embedding values ±2^-e (1 + m/128), e in 1..5, m in 0..127: exact in f32, f16 and bf16. */
function embeddingBits(seed: number, index: number, n: number, dtype: "f32" | "f16" | "bf16"): Uint8Array {
  const next = stream(seed, index);
  const out = dtype === "f32" ? new Uint32Array(n) : new Uint16Array(n);
  for (let i = 0; i < n; i++) {
    const r = next(), sign = r >>> 31, e = ((r >>> 7) & 7) % 5, m = r & 127;
    out[i] = dtype === "f32"
      ? ((sign << 31) | ((126 - e) << 23) | (m << 16)) >>> 0
      : dtype === "f16"
      ? (sign << 15) | ((14 - e) << 10) | (m << 3)
      : (sign << 15) | ((126 - e) << 7) | m;
  }
  return new Uint8Array(out.buffer);
}

const f16Value = (h: number) => (h >> 15 ? -1 : 1) * 2 ** (((h >> 10) & 31) - 15) * (1 + (h & 1023) / 1024);

/** A file whose tensors are generated on demand (the last one is cached for partial reads). */
function generatedFile(name: string, tensors: { span: Span; make: () => Uint8Array | Promise<Uint8Array> }[]): RandomAccessFile {
  const size = tensors.length ? tensors[tensors.length - 1].span.offset + tensors[tensors.length - 1].span.length : 0;
  let cached: { index: number; bytes: Uint8Array } | null = null;
  return {
    name,
    size,
    async read(offset, length, into) {
      let lo = 0, hi = tensors.length - 1;
      while (lo < hi) {
        const mid = (lo + hi + 1) >> 1;
        if (tensors[mid].span.offset <= offset) lo = mid;
        else hi = mid - 1;
      }
      const t = tensors[lo];
      if (!t || offset < t.span.offset || offset + length > t.span.offset + t.span.length) {
        throw new BitNetError(`${name}: read of bytes ${offset}..${offset + length} does not lie within one generated tensor`);
      }
      if (cached?.index !== lo) cached = { index: lo, bytes: await t.make() };
      const part = cached.bytes.subarray(offset - t.span.offset, offset - t.span.offset + length);
      if (into) into.set(part);
      return into ?? part.slice();
    },
    close: () => Promise.resolve(),
  };
}

/** A synthesized model: its checkpoint and its weights. */
export interface SynthModel {
  /** The model as a checkpoint over a generated file. */
  checkpoint: Checkpoint;
  /** Regenerates the plain parameters (small shapes only: they are held as JS arrays). */
  weights(): SynthWeights;
}

/** A BitNet b1.58 model with random ternary weights of the given shape, as a checkpoint over a generated virtual file (written tensor by tensor, never held whole) and the same weights as arrays. */
// deno-lint-ignore require-await -- async so that bad options reject, as every loader does
export async function synthesizeBitNet(shape: SynthShape, { seed = 1, embedding = "f16", arch = "bitnet-b1.58" }: SynthOptions = {}): Promise<SynthModel> {
  const file = `synthetic ${arch} (seed ${seed})`;
  if (!["f32", "f16", "bf16"].includes(embedding)) throw new OptionError("embedding", `expected f32, f16 or bf16, got ${JSON.stringify(embedding)}`);
  if (!SYNTH_ARCHITECTURES.includes(arch)) throw new OptionError("arch", `expected ${SYNTH_ARCHITECTURES.join(" or ")}, got ${JSON.stringify(arch)}`);
  // 2B4T's RoPE base for either architecture (llama's default would be 10000).
  const config: ModelConfig = makeConfig(file, { arch, ...shape, ropeTheta: 500000 }, (_, d) => new OptionError("shape", d));
  const { dim, hiddenDim, kvDim, vocabSize, nLayers } = config;
  for (const [what, n] of [["dim", dim], ["hiddenDim", hiddenDim], ["kv dim", kvDim]] as const) {
    if (n % 128 !== 0) throw new OptionError("shape", `${what} ${n} must be a multiple of 128 (I2_S blocks)`);
  }
  let encoder: Kernels | null = null; // private memory: generating never touches a model's kernels
  const tensors: { span: Span; make: () => Uint8Array | Promise<Uint8Array> }[] = [];
  let size = 0;
  const place = (length: number, make: () => Uint8Array | Promise<Uint8Array>, dtype?: Span["dtype"]): Span => {
    const span: Span = { offset: size, length, dtype };
    tensors.push({ span, make });
    size += length;
    return span;
  };
  const norm = (n: number) => {
    const index = tensors.length;
    return place(n * 4, () => new Uint8Array(normValues(seed, index, n).buffer));
  };
  const I2_S = TENSOR_TYPES.I2_S;
  const ternary = (name: string, rows: number, cols: number): LinearTensor => {
    const index = tensors.length, count = rows * cols, bytes = tensorBytes(I2_S, count)!;
    const make = async () => {
      encoder ??= await loadKernels({ simd: "strict" });
      const { w, scale } = ternaryValues(seed, index, count);
      const k = encoder, mark = k.arena.mark();
      try {
        const out = k.allocBytes(bytes);
        k.k[I2_S.ternary.encode](k.put(w), count, k.put(new Float32Array(scaleCount(I2_S, count)).fill(scale)), out);
        return k.u8(out, bytes).slice();
      } finally {
        k.arena.release(mark);
      }
    };
    return { name, encoding: "I2_S", rows, cols, data: place(bytes, make) };
  };

  const embeddingSpan = place(
    vocabSize * dim * (embedding === "f32" ? 4 : 2),
    () => embeddingBits(seed, 0, vocabSize * dim, embedding),
    embedding === "f32" ? undefined : embedding,
  );
  const finalNorm = norm(dim);
  // Tensors are generated in the table's order: a tensor's index seeds its values.
  const layers: LayerTensors[] = [];
  for (let l = 0; l < nLayers; l++) {
    const layer: Partial<Record<LayerRole, Span | LinearTensor>> = {};
    for (const role of layerRoles(arch)) {
      const shape = roleShape(role, config);
      layer[role] = shape.length === 1 ? norm(shape[0]) : ternary(TENSOR_NAMES.gguf.layer(l, role), shape[0], shape[1]);
    }
    layers.push(layer as LayerTensors);
  }
  const checkpoint: Checkpoint = { file, source: generatedFile(file, tensors), config, embedding: embeddingSpan, finalNorm, layers };

  const weights = (): SynthWeights => {
    const indexOf = (span: Span) => tensors.findIndex((t) => t.span === span);
    const values = (span: Span, n: number) => normValues(seed, indexOf(span), n);
    const bits = embeddingBits(seed, 0, vocabSize * dim, "f16");
    const table = Float32Array.from(new Uint16Array(bits.buffer), f16Value);
    return {
      embedding: table,
      finalNorm: values(finalNorm, dim),
      layers: layers.map((l) => {
        const linear = (t: LinearTensor) => ({ rows: t.rows, cols: t.cols, ...ternaryValues(seed, indexOf(t.data), t.rows * t.cols) });
        return {
          attnNorm: values(l.attnNorm!, dim),
          ffnNorm: values(l.ffnNorm!, dim),
          attnSubNorm: l.attnSubNorm && values(l.attnSubNorm, dim),
          ffnSubNorm: l.ffnSubNorm && values(l.ffnSubNorm, hiddenDim),
          linears: { q: linear(l.q), k: linear(l.k), v: linear(l.v), o: linear(l.o), gate: linear(l.gate), up: linear(l.up), down: linear(l.down) },
        };
      }),
    };
  };
  return { checkpoint, weights };
}
