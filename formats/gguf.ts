// GGUF (ggml's container, versions 2 and 3): header, typed metadata, tensor infos and an
// aligned data section. We parse it ourselves from the file's first bytes so that every
// length and offset is checked against the file before anything is allocated, with errors
// that name the file and the field (the tests cross-check the parse against @huggingface/gguf).
import type { RandomAccessFile } from "../runtime/files.ts";
import { FormatError } from "../core/errors.ts";
import { ggmlTensorType, tensorBytes } from "./tensor-types.ts";

export const GGUF_MAGIC = 0x46554747; // "GGUF"

/** GGUF metadata value types. */
export enum GgufType {
  UINT8 = 0,
  INT8 = 1,
  UINT16 = 2,
  INT16 = 3,
  UINT32 = 4,
  INT32 = 5,
  FLOAT32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  UINT64 = 10,
  INT64 = 11,
  FLOAT64 = 12,
}

/** A GGUF metadata scalar (64-bit integers as bigint). */
export type GgufScalar = number | bigint | boolean | string;
/** A GGUF metadata value: a scalar or an array of values. */
export type GgufValue = GgufScalar | GgufValue[];

/** A metadata value with its stored type (`itemType` for arrays). */
export interface GgufEntry {
  /** The value's type. */
  type: GgufType;
  /** For arrays: the element type. */
  itemType?: GgufType;
  /** The value (arrays as JS arrays, 64-bit integers as bigint). */
  value: GgufValue;
}

// What each ggml type id means (blocks, bytes) is in the tensor-type table.
export { GgmlType } from "./tensor-types.ts";

/** A tensor's entry in a GGUF header. */
export interface GgufTensorInfo {
  /** Tensor name. */
  name: string;
  /** ggml order: dims[0] is the innermost (a [out, in] matrix has dims [in, out]). */
  dims: number[];
  /** ggml type (GgmlType). */
  type: number;
  /** Absolute byte offset in the file. */
  offset: number;
  /** Bytes of its data. */
  bytes: number;
}

/** A parsed GGUF header. */
export interface GgufFile {
  /** GGUF version (2 or 3). */
  version: number;
  /** Metadata by key. */
  metadata: Map<string, GgufEntry>;
  /** Tensor entries, in file order. */
  tensors: GgufTensorInfo[];
  /** Alignment of tensor data (general.alignment, default 32). */
  alignment: number;
  /** Where tensor data begins in the file. */
  dataOffset: number;
}

const MAX_DIMS = 4;
/** Arrays of arrays deeper than this are refused (ggml's own files nest at most 2). */
export const MAX_GGUF_NESTING = 8;

/** Thrown when the header runs past the bytes read so far but not past the file. */
class NeedMoreBytes extends Error {}

class Reader {
  pos = 0;
  readonly view: DataView;
  readonly #utf8 = new TextDecoder("utf-8", { fatal: true });
  /** `bytes` is the file's beginning; `size` the whole file's length. */
  constructor(readonly bytes: Uint8Array, readonly file: string, readonly size: number) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  fail(detail: string): FormatError {
    return new FormatError(this.file, detail);
  }
  need(n: number, what: string): void {
    if (this.pos + n > this.size) {
      throw this.fail(`truncated: ${what} needs bytes ${this.pos}..${this.pos + n}, file has ${this.size}`);
    }
    if (this.pos + n > this.bytes.length) throw new NeedMoreBytes();
  }
  u32(what: string): number {
    this.need(4, what);
    const v = this.view.getUint32(this.pos, true);
    this.pos += 4;
    return v;
  }
  /** A u64 that must be a safe integer no larger than `max` (a count or length). */
  count(what: string, max: number): number {
    this.need(8, what);
    const v = this.view.getBigUint64(this.pos, true);
    this.pos += 8;
    if (v > BigInt(max)) throw this.fail(`${what} is ${v}, more than the ${max} the rest of the file can hold`);
    return Number(v);
  }
  string(what: string): string {
    const len = this.count(`length of ${what}`, this.size - this.pos - 8);
    this.need(len, what);
    const s = this.bytes.subarray(this.pos, this.pos + len);
    this.pos += len;
    try {
      return this.#utf8.decode(s);
    } catch {
      throw this.fail(`${what} is not valid UTF-8`);
    }
  }
  value(type: number, what: string, depth = 0): GgufEntry {
    const v = this.view;
    const at = (n: number) => {
      this.need(n, what);
      const p = this.pos;
      this.pos += n;
      return p;
    };
    switch (type) {
      case GgufType.UINT8:
        return { type, value: v.getUint8(at(1)) };
      case GgufType.INT8:
        return { type, value: v.getInt8(at(1)) };
      case GgufType.UINT16:
        return { type, value: v.getUint16(at(2), true) };
      case GgufType.INT16:
        return { type, value: v.getInt16(at(2), true) };
      case GgufType.UINT32:
        return { type, value: v.getUint32(at(4), true) };
      case GgufType.INT32:
        return { type, value: v.getInt32(at(4), true) };
      case GgufType.FLOAT32:
        return { type, value: v.getFloat32(at(4), true) };
      case GgufType.BOOL: {
        const b = v.getUint8(at(1));
        if (b > 1) throw this.fail(`${what}: bool byte ${b}, expected 0 or 1`);
        return { type, value: b === 1 };
      }
      case GgufType.STRING:
        return { type, value: this.string(what) };
      case GgufType.UINT64:
        return { type, value: v.getBigUint64(at(8), true) };
      case GgufType.INT64:
        return { type, value: v.getBigInt64(at(8), true) };
      case GgufType.FLOAT64:
        return { type, value: v.getFloat64(at(8), true) };
      case GgufType.ARRAY: {
        if (depth >= MAX_GGUF_NESTING) throw this.fail(`${what}: arrays nested more than ${MAX_GGUF_NESTING} deep`);
        const itemType = this.u32(`${what} item type`);
        // Every item takes at least one byte: a count past the file's end is refused here.
        const n = this.count(`${what} item count`, this.size - this.pos - 8);
        const items: GgufValue[] = [];
        for (let i = 0; i < n; i++) items.push(this.value(itemType, `${what}[${i}]`, depth + 1).value);
        return { type, itemType, value: items };
      }
      default:
        throw this.fail(`${what}: unknown metadata value type ${type}`);
    }
  }
}

/** Parses a GGUF file's header, metadata and tensor infos from its first bytes (`bytes`,
 *  of a file of `size` bytes), checking every bound. */
export function readGguf(bytes: Uint8Array, file: string, size = bytes.length): GgufFile {
  const r = new Reader(bytes, file, size);
  const magic = r.u32("magic");
  if (magic !== GGUF_MAGIC) throw r.fail(`wrong magic 0x${magic.toString(16)}, expected 0x${GGUF_MAGIC.toString(16)} ("GGUF")`);
  const version = r.u32("version");
  if (version !== 2 && version !== 3) throw r.fail(`unsupported GGUF version ${version}, expected 2 or 3`);
  // Each tensor info takes at least 24 bytes and each metadata entry at least 13.
  const tensorCount = r.count("tensor count", Math.floor(size / 24));
  const kvCount = r.count("metadata count", Math.floor(size / 13));
  const metadata = new Map<string, GgufEntry>();
  for (let i = 0; i < kvCount; i++) {
    const key = r.string(`metadata key ${i}`);
    metadata.set(key, r.value(r.u32(`type of ${key}`), key));
  }
  const alignEntry = metadata.get("general.alignment");
  const alignment = alignEntry === undefined ? 32 : Number(alignEntry.value);
  if (!Number.isInteger(alignment) || alignment < 1 || (alignment & (alignment - 1)) !== 0 || alignment > 1 << 20) {
    throw r.fail(`general.alignment = ${alignEntry?.value}, expected a power of two`);
  }
  const infos: { name: string; dims: number[]; type: number; rel: number }[] = [];
  for (let i = 0; i < tensorCount; i++) {
    const name = r.string(`tensor ${i} name`);
    const nDims = r.u32(`${name} dimension count`);
    if (nDims < 1 || nDims > MAX_DIMS) throw r.fail(`tensor ${name}: ${nDims} dimensions, expected 1..${MAX_DIMS}`);
    const dims = Array.from({ length: nDims }, (_, d) => r.count(`${name} dimension ${d}`, Number.MAX_SAFE_INTEGER));
    const type = r.u32(`${name} type`);
    const rel = r.count(`${name} offset`, Number.MAX_SAFE_INTEGER);
    infos.push({ name, dims, type, rel });
  }
  const dataOffset = Math.ceil(r.pos / alignment) * alignment;
  const tensors = infos.map(({ name, dims, type, rel }) => {
    const t = ggmlTensorType(type);
    if (!t) throw r.fail(`tensor ${name}: unknown or unsupported ggml type ${type}`);
    const count = dims.reduce((a, b) => a * b, 1);
    const bytes = Number.isSafeInteger(count) ? tensorBytes(t, count) : undefined;
    if (bytes === undefined) throw r.fail(`tensor ${name}: ${dims.join(" x ")} values do not fit ${t.name} blocks of ${t.blockValues}`);
    if (rel % alignment !== 0) throw r.fail(`tensor ${name}: offset ${rel} is not a multiple of the alignment ${alignment}`);
    const offset = dataOffset + rel;
    if (offset + bytes > size) throw r.fail(`tensor ${name}: bytes ${offset}..${offset + bytes} lie past the end of the file (${size} bytes)`);
    return { name, dims, type, offset, bytes };
  });
  const byOffset = [...tensors].sort((a, b) => a.offset - b.offset);
  for (let i = 1; i < byOffset.length; i++) {
    const prev = byOffset[i - 1], cur = byOffset[i];
    if (prev.offset + prev.bytes > cur.offset) throw r.fail(`tensors ${prev.name} and ${cur.name} overlap`);
  }
  return { version, metadata, tensors, alignment, dataOffset };
}

/** Reads a GGUF header from a file, fetching more of its beginning until the header fits. */
export async function readGgufFile(file: RandomAccessFile): Promise<GgufFile> {
  for (let head = Math.min(file.size, 1 << 20);; head = Math.min(file.size, head * 4)) {
    try {
      return readGguf(await file.read(0, head), file.name, file.size);
    } catch (e) {
      if (!(e instanceof NeedMoreBytes)) throw e;
    }
  }
}

/** A metadata value that must be present with one of the given types. */
export function ggufValue<T extends GgufValue>(gguf: GgufFile, key: string, file: string, types: GgufType[]): T {
  const entry = gguf.metadata.get(key);
  if (!entry) throw new FormatError(file, `metadata ${key} is missing`);
  if (!types.includes(entry.type)) throw new FormatError(file, `metadata ${key} has type ${GgufType[entry.type]}, expected ${types.map((t) => GgufType[t]).join(" or ")}`);
  return entry.value as T;
}
