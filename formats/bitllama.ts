// bitllama2.c "ak42" checkpoints (natively trained ternary BitNet b1.58 models):
// a 256-byte header, fp32 final norm and embedding, then every layer's wq, then every
// wk, ... w3; each matrix is an fp32 scale followed by 2-bit sign-magnitude codes.
// The header does not record which end of a byte holds the first code: `msbFirst` says.
import type { RandomAccessFile } from "../runtime/files.ts";
import { type Checkpoint, type LayerTensors, type LinearTensor, SpanCursor } from "./checkpoint.ts";
import { FILE_ORDER, type LayerRole, roleShape, TENSOR_NAMES } from "./architectures.ts";
import { makeConfig } from "./config.ts";
import { FormatError } from "../core/errors.ts";

export const BITLLAMA_MAGIC = 0x616b3432; // "ak42"
const HEADER_BYTES = 256;

export interface BitllamaOptions {
  /** First weight of each byte in bits 7-6 (default, bitllama-*.bin) or in bits 1-0. */
  msbFirst?: boolean;
}

export async function readBitllama(source: RandomAccessFile, { msbFirst = true }: BitllamaOptions = {}): Promise<Checkpoint> {
  const file = source.name, size = source.size;
  if (size < HEADER_BYTES) throw new FormatError(file, `truncated: ${size} bytes, an ak42 header needs ${HEADER_BYTES}`);
  const bytes = await source.read(0, HEADER_BYTES);
  const view = new DataView(bytes.buffer, bytes.byteOffset, HEADER_BYTES);
  const magic = view.getUint32(0, true);
  if (magic !== BITLLAMA_MAGIC) throw new FormatError(file, `wrong magic 0x${magic.toString(16)}, expected 0x${BITLLAMA_MAGIC.toString(16)} ("ak42")`);
  const version = view.getInt32(4, true);
  if (version !== 1) throw new FormatError(file, `unsupported ak42 version ${version}, expected 1`);
  const h = (i: number) => view.getInt32(8 + i * 4, true);
  if (bytes[36] === 0) throw new FormatError(file, "ak42 header says the classifier is not shared; only shared-classifier files are supported");
  const config = makeConfig(file, {
    arch: "bitllama",
    dim: h(0),
    hiddenDim: h(1),
    nLayers: h(2),
    nHeads: h(3),
    nKvHeads: h(4),
    vocabSize: h(5),
    seqLen: h(6),
  }, (f, d) => new FormatError(f, d));
  const { dim, hiddenDim: hidden, nLayers: L, vocabSize } = config;

  const order = FILE_ORDER.ak42, names = TENSOR_NAMES.ak42;
  const codeBytes = (role: LayerRole) => Math.ceil(roleShape(role, config).reduce((a, b) => a * b, 1) / 4);
  const expected = HEADER_BYTES + 4 * (dim + vocabSize * dim) + L * order.reduce((sum, role) => sum + 4 + codeBytes(role), 0);
  if (size !== expected) {
    throw new FormatError(file, `size ${size} does not match the header (dim ${dim}, hidden ${hidden}, layers ${L}, vocab ${vocabSize}): expected ${expected} bytes`);
  }

  const cur = new SpanCursor(HEADER_BYTES, size, (d) => new FormatError(file, d));
  const finalNorm = cur.f32(dim, names.finalNorm);
  const embedding = cur.f32(vocabSize * dim, names.embedding);
  // One run per role, a record per layer: an f32 scale (read now), then the codes.
  const encoding = msbFirst ? "SM2" : "SM2_LSB";
  const layers = Array.from({ length: L }, () => ({}) as Partial<Record<LayerRole, LinearTensor>>);
  for (const role of order) {
    const [rows, cols] = roleShape(role, config);
    for (let l = 0; l < L; l++) {
      const name = names.layer(l, role), scaleSpan = cur.take(4, `${name} scale`);
      const scale = new DataView((await source.read(scaleSpan.offset, 4, new Uint8Array(4))).buffer).getFloat32(0, true);
      if (!Number.isFinite(scale)) throw new FormatError(file, `${name} scale is ${scale}, expected a finite number`);
      layers[l][role] = { name, encoding, rows, cols, scale, data: cur.take(codeBytes(role), `${name} codes`) };
    }
  }
  return { file, source, config, embedding, finalNorm, layers: layers as unknown as LayerTensors[] };
}
