// llama2.c "legacy v0" checkpoints (karpathy/llama2.c export.py, version 0):
// 7 int32 header fields, then fp32 tensors in a fixed order; vocab_size < 0 means
// an unshared classifier follows the (skipped) legacy RoPE tables.
import type { RandomAccessFile } from "../runtime/files.ts";
import { type Checkpoint, type LayerTensors, type LinearTensor, SpanCursor } from "./checkpoint.ts";
import { makeConfig } from "./config.ts";
import { FormatError } from "../core/errors.ts";

const HEADER_BYTES = 28;

export async function readLlama2c(source: RandomAccessFile): Promise<Checkpoint> {
  const file = source.name, size = source.size;
  if (size < HEADER_BYTES) throw new FormatError(file, `truncated: ${size} bytes, a llama2.c header needs ${HEADER_BYTES}`);
  const head = await source.read(0, HEADER_BYTES);
  const view = new DataView(head.buffer, head.byteOffset, HEADER_BYTES);
  const h = (i: number) => view.getInt32(i * 4, true);
  const shared = h(5) > 0;
  const config = makeConfig(file, {
    arch: "llama", dim: h(0), hiddenDim: h(1), nLayers: h(2), nHeads: h(3), nKvHeads: h(4),
    vocabSize: Math.abs(h(5)), seqLen: h(6), normEps: 1e-5, ropeTheta: 10000, rope: "interleaved", activation: "silu",
  }, (f, d) => new FormatError(f, d));
  const { dim, hiddenDim: hidden, nLayers: L, vocabSize, seqLen, kvDim, headSize } = config;

  // Check the total before handing out any span: a wrong header fails here, whole.
  const floats = vocabSize * dim + L * (2 * dim + 2 * dim * dim + 2 * kvDim * dim + 3 * hidden * dim) + dim +
    seqLen * headSize + (shared ? 0 : vocabSize * dim);
  const expected = HEADER_BYTES + floats * 4;
  if (size !== expected) {
    throw new FormatError(file, `size ${size} does not match the header (dim ${dim}, hidden ${hidden}, layers ${L}, vocab ${vocabSize}, seq ${seqLen}): expected ${expected} bytes`);
  }

  const cur = new SpanCursor(HEADER_BYTES, size, (d) => new FormatError(file, d));
  const embedding = cur.f32(vocabSize * dim, "token_embedding");
  const perLayer = (count: number, what: string) => Array.from({ length: L }, (_, l) => cur.f32(count, `${what}[${l}]`));
  const linears = (rows: number, cols: number, what: string): LinearTensor[] =>
    perLayer(rows * cols, what).map((data, l) => ({ name: `${what}[${l}]`, encoding: "f32" as const, rows, cols, data }));
  const attnNorm = perLayer(dim, "rms_att");
  const q = linears(dim, dim, "wq"), k = linears(kvDim, dim, "wk"), v = linears(kvDim, dim, "wv"), o = linears(dim, dim, "wo");
  const ffnNorm = perLayer(dim, "rms_ffn");
  const gate = linears(hidden, dim, "w1"), down = linears(dim, hidden, "w2"), up = linears(hidden, dim, "w3");
  const finalNorm = cur.f32(dim, "rms_final");
  cur.f32(seqLen * headSize, "legacy RoPE tables");
  const classifier = shared ? undefined : cur.f32(vocabSize * dim, "wcls");

  const layers: LayerTensors[] = Array.from({ length: L }, (_, l) => ({
    attnNorm: attnNorm[l], ffnNorm: ffnNorm[l], q: q[l], k: k[l], v: v[l], o: o[l], gate: gate[l], up: up[l], down: down[l],
  }));
  return { file, source, config, embedding, finalNorm, classifier, layers };
}
