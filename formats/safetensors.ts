// safetensors (Hugging Face): an 8-byte little-endian header length, a JSON header naming
// every tensor's dtype, shape and data_offsets (relative to the end of the header), then
// the data. Read here directly (the safetensors-js package is not published); every field
// is checked against the file before use: header length bounded, offsets inside the data
// and non-overlapping, sizes equal to product(shape) x dtype size.
import type { ByteSink, RandomAccessFile } from "../runtime/files.ts";
import { FormatError, ShapeError } from "../core/errors.ts";

/** Bytes per element of each safetensors dtype this library reads. */
export const SAFETENSORS_DTYPES = { F32: 4, F16: 2, BF16: 2, U8: 1, I8: 1 } as const;
/** A safetensors dtype this library reads. */
export type SafetensorsDtype = keyof typeof SAFETENSORS_DTYPES;
const MAX_HEADER = 100 * 1024 * 1024;

/** A tensor's entry in a safetensors header. */
export interface SafetensorsTensor {
  /** Tensor name. */
  name: string;
  /** Element type. */
  dtype: SafetensorsDtype;
  /** Dimensions. */
  shape: number[];
  /** Absolute byte offset in the file and length. */
  offset: number;
  /** Bytes of its data. */
  bytes: number;
}

/** A parsed safetensors header. */
export interface SafetensorsFile {
  /** The header's __metadata__ strings. */
  metadata: Record<string, string>;
  /** Tensor entries by name. */
  tensors: Map<string, SafetensorsTensor>;
}

/** The JSON header's length from the file's first 8 bytes, checked against the file's size. */
function headerLength(first8: Uint8Array, file: string, size: number): number {
  if (size < 8 || first8.length < 8) throw new FormatError(file, `truncated: ${size} bytes, the header length needs 8`);
  const n = new DataView(first8.buffer, first8.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(MAX_HEADER) || 8n + n > BigInt(size)) {
    throw new FormatError(file, `header length ${n} is beyond ${8n + n > BigInt(size) ? `the file (${size} bytes)` : "the 100 MiB limit"}`);
  }
  return Number(n);
}

/** Parses the header from the file's first bytes (at least 8 + header length) of a file of `size` bytes. */
export function readSafetensors(bytes: Uint8Array, file: string, size = bytes.length): SafetensorsFile {
  const fail = (detail: string) => new FormatError(file, detail);
  const n = headerLength(bytes, file, size);
  const dataStart = 8 + n, dataSize = size - dataStart;
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(8, dataStart)));
  } catch (e) {
    throw fail(`header is not valid JSON: ${(e as Error).message}`);
  }
  if (typeof header !== "object" || header === null || Array.isArray(header)) throw fail("header is not a JSON object");
  const metadata: Record<string, string> = {};
  const tensors = new Map<string, SafetensorsTensor>();
  for (const [name, entry] of Object.entries(header as Record<string, unknown>)) {
    if (name === "__metadata__") {
      if (typeof entry !== "object" || entry === null) throw fail("__metadata__ is not an object");
      for (const [k, v] of Object.entries(entry)) {
        if (typeof v !== "string") throw fail(`__metadata__.${k} is not a string`);
        metadata[k] = v;
      }
      continue;
    }
    const { dtype, shape, data_offsets: offsets } = (entry ?? {}) as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (typeof dtype !== "string" || !Object.hasOwn(SAFETENSORS_DTYPES, dtype)) {
      throw fail(`tensor ${name}: dtype ${JSON.stringify(dtype)} is not supported (supported: ${Object.keys(SAFETENSORS_DTYPES).join(", ")})`);
    }
    if (!Array.isArray(shape) || shape.some((d) => !Number.isSafeInteger(d) || d < 0)) throw fail(`tensor ${name}: shape ${JSON.stringify(shape)} is not a list of sizes`);
    if (!Array.isArray(offsets) || offsets.length !== 2 || offsets.some((o) => !Number.isSafeInteger(o) || o < 0) || offsets[0] > offsets[1]) {
      throw fail(`tensor ${name}: data_offsets ${JSON.stringify(offsets)} are not [begin, end]`);
    }
    if (offsets[1] > dataSize) throw fail(`tensor ${name}: data_offsets ${JSON.stringify(offsets)} lie past the end of the data (${dataSize} bytes)`);
    const size = (shape as number[]).reduce((a, b) => a * b, 1) * SAFETENSORS_DTYPES[dtype as SafetensorsDtype];
    if (offsets[1] - offsets[0] !== size) throw fail(`tensor ${name}: ${offsets[1] - offsets[0]} bytes, ${dtype} [${shape.join(", ")}] needs ${size}`);
    tensors.set(name, { name, dtype: dtype as SafetensorsDtype, shape: shape as number[], offset: dataStart + offsets[0], bytes: size });
  }
  const sorted = [...tensors.values()].sort((a, b) => a.offset - b.offset);
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i - 1].offset + sorted[i - 1].bytes > sorted[i].offset) throw fail(`tensors ${sorted[i - 1].name} and ${sorted[i].name} overlap`);
  }
  return { metadata, tensors };
}

/** Reads a safetensors header from a file: 8 bytes, then exactly the header. */
export async function readSafetensorsFile(file: RandomAccessFile): Promise<SafetensorsFile> {
  const n = headerLength(await file.read(0, Math.min(8, file.size)), file.name, file.size);
  return readSafetensors(await file.read(0, 8 + n), file.name, file.size);
}

/** model.safetensors.index.json: which shard holds each tensor. */
export function readSafetensorsIndex(json: string, file: string): Map<string, string> {
  let index: unknown;
  try {
    index = JSON.parse(json);
  } catch (e) {
    throw new FormatError(file, `not valid JSON: ${(e as Error).message}`);
  }
  const map = (index as { weight_map?: unknown })?.weight_map;
  if (typeof map !== "object" || map === null) throw new FormatError(file, "has no weight_map object");
  const shards = new Map<string, string>();
  for (const [name, shard] of Object.entries(map)) {
    if (typeof shard !== "string" || shard.includes("/") || shard.includes("\\") || shard === "" || shard === "." || shard === "..") {
      throw new FormatError(file, `weight_map.${name} is ${JSON.stringify(shard)}, expected the name of a file in the same folder`);
    }
    shards.set(name, shard);
  }
  return shards;
}

/** A tensor to write; its data is produced when its turn comes. */
export interface SafetensorsSource {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  data: () => Uint8Array | Promise<Uint8Array>;
}

/** The 8-byte length and JSON header (padded with spaces to 8 bytes, as the official writer does). */
function safetensorsHeader(tensors: { name: string; dtype: SafetensorsDtype; shape: number[] }[], metadata?: Record<string, string>): { header: Uint8Array; sizes: number[] } {
  const header: Record<string, unknown> = metadata ? { __metadata__: metadata } : {};
  let offset = 0;
  const sizes = tensors.map((t) => {
    const size = t.shape.reduce((a, b) => a * b, 1) * SAFETENSORS_DTYPES[t.dtype];
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + size] };
    offset += size;
    return size;
  });
  let json = JSON.stringify(header);
  json += " ".repeat((8 - (new TextEncoder().encode(json).length % 8)) % 8);
  const text = new TextEncoder().encode(json), out = new Uint8Array(8 + text.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(text.length), true);
  out.set(text, 8);
  return { header: out, sizes };
}

/** Writes a safetensors file to a sink, one tensor at a time. */
export async function writeSafetensorsTo(sink: ByteSink, tensors: SafetensorsSource[], metadata?: Record<string, string>): Promise<void> {
  const { header, sizes } = safetensorsHeader(tensors, metadata);
  await sink.write(header);
  for (const [i, t] of tensors.entries()) {
    const data = await t.data();
    if (data.length !== sizes[i]) throw new ShapeError(`tensor ${t.name}: ${data.length} bytes, ${t.dtype} [${t.shape.join(", ")}] needs ${sizes[i]}`);
    await sink.write(data);
  }
}

/** A safetensors file of these tensors, in memory. */
export function writeSafetensors(tensors: { name: string; dtype: SafetensorsDtype; shape: number[]; data: Uint8Array }[], metadata?: Record<string, string>): Uint8Array {
  const { header, sizes } = safetensorsHeader(tensors, metadata);
  const out = new Uint8Array(header.length + sizes.reduce((a, b) => a + b, 0));
  out.set(header);
  let at = header.length;
  tensors.forEach((t, i) => {
    if (t.data.length !== sizes[i]) throw new ShapeError(`tensor ${t.name}: ${t.data.length} bytes, ${t.dtype} [${t.shape.join(", ")}] needs ${sizes[i]}`);
    out.set(t.data, at);
    at += t.data.length;
  });
  return out;
}
