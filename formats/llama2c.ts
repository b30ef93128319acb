// llama2.c "legacy v0" checkpoints (karpathy/llama2.c export.py, version 0):
// 7 int32 header fields, then fp32 tensors in a fixed order; vocab_size < 0 means
// an unshared classifier follows the (skipped) legacy RoPE tables.
import type { RandomAccessFile } from "../runtime/files.ts";
import { type Checkpoint, type LayerTensors, type LinearTensor, type Span, SpanCursor } from "./checkpoint.ts";
import { FILE_ORDER, type LayerRole, roleShape, TENSOR_NAMES } from "./architectures.ts";
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
    arch: "llama",
    dim: h(0),
    hiddenDim: h(1),
    nLayers: h(2),
    nHeads: h(3),
    nKvHeads: h(4),
    vocabSize: Math.abs(h(5)),
    seqLen: h(6),
  }, (f, d) => new FormatError(f, d));
  const { dim, hiddenDim: hidden, nLayers: L, vocabSize, seqLen, kvDim, headSize } = config;

  // Check the total before handing out any span: a wrong header fails here, whole.
  const floats = vocabSize * dim + L * (2 * dim + 2 * dim * dim + 2 * kvDim * dim + 3 * hidden * dim) + dim +
    seqLen * headSize + (shared ? 0 : vocabSize * dim);
  const expected = HEADER_BYTES + floats * 4;
  if (size !== expected) {
    throw new FormatError(
      file,
      `size ${size} does not match the header (dim ${dim}, hidden ${hidden}, layers ${L}, vocab ${vocabSize}, seq ${seqLen}): expected ${expected} bytes`,
    );
  }

  const cur = new SpanCursor(HEADER_BYTES, size, (d) => new FormatError(file, d));
  const names = TENSOR_NAMES.llama2c;
  const embedding = cur.f32(vocabSize * dim, names.embedding);
  // Each run holds one role's tensor for every layer, in the file's order.
  const runs = new Map<LayerRole, (Span | LinearTensor)[]>();
  for (const role of FILE_ORDER.llama2c) {
    const shape = roleShape(role, config), count = shape.reduce((a, b) => a * b, 1);
    runs.set(
      role,
      Array.from({ length: L }, (_, l) => {
        const name = names.layer(l, role), data = cur.f32(count, name);
        return shape.length === 1 ? data : { name, encoding: "f32" as const, rows: shape[0], cols: shape[1], data };
      }),
    );
  }
  const finalNorm = cur.f32(dim, names.finalNorm);
  cur.f32(seqLen * headSize, "legacy RoPE tables");
  const classifier = shared ? undefined : cur.f32(vocabSize * dim, names.classifier);
  const layers = Array.from({ length: L }, (_, l) => Object.fromEntries([...runs].map(([role, run]) => [role, run[l]])) as unknown as LayerTensors);
  return { file, source, config, embedding, finalNorm, classifier, layers };
}
