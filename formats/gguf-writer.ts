// Writes GGUF version 3 files: the inverse of readGguf, used by `bitnet-wasm convert`.
import type { ByteSink } from "../runtime/files.ts";
import { ShapeError } from "../core/errors.ts";
import { type GgufEntry, GgufType, type GgufValue } from "./gguf.ts";
import { ggmlTensorType, tensorBytes } from "./tensor-types.ts";

/** A tensor to write into a GGUF file. */
export interface GgufTensorData {
  /** Tensor name. */
  name: string;
  /** ggml order (innermost first). */
  dims: number[];
  /** ggml type (GgmlType). */
  type: number;
  /** Its data, already in that type's layout. */
  data: Uint8Array;
}

const utf8 = new TextEncoder();
const SIZES: Partial<Record<GgufType, number>> = {
  [GgufType.UINT8]: 1,
  [GgufType.INT8]: 1,
  [GgufType.BOOL]: 1,
  [GgufType.UINT16]: 2,
  [GgufType.INT16]: 2,
  [GgufType.UINT32]: 4,
  [GgufType.INT32]: 4,
  [GgufType.FLOAT32]: 4,
  [GgufType.UINT64]: 8,
  [GgufType.INT64]: 8,
  [GgufType.FLOAT64]: 8,
};

class Writer {
  #chunks: Uint8Array[] = [];
  length = 0;
  push(bytes: Uint8Array): void {
    this.#chunks.push(bytes);
    this.length += bytes.length;
  }
  fixed(size: number, set: (v: DataView) => void): void {
    const b = new Uint8Array(size);
    set(new DataView(b.buffer));
    this.push(b);
  }
  u32(v: number): void {
    this.fixed(4, (d) => d.setUint32(0, v, true));
  }
  u64(v: number | bigint): void {
    this.fixed(8, (d) => d.setBigUint64(0, BigInt(v), true));
  }
  string(s: string): void {
    const b = utf8.encode(s);
    this.u64(b.length);
    this.push(b);
  }
  value(type: GgufType, value: GgufValue, itemType?: GgufType): void {
    if (type === GgufType.STRING) return this.string(value as string);
    if (type === GgufType.ARRAY) {
      if (itemType === undefined) throw new ShapeError("GGUF array value without itemType");
      this.u32(itemType);
      this.u64((value as GgufValue[]).length);
      for (const item of value as GgufValue[]) this.value(itemType, item);
      return;
    }
    const size = SIZES[type];
    if (size === undefined) throw new ShapeError(`unknown GGUF value type ${type}`);
    this.fixed(size, (d) => {
      switch (type) {
        case GgufType.UINT8:
          return d.setUint8(0, value as number);
        case GgufType.INT8:
          return d.setInt8(0, value as number);
        case GgufType.BOOL:
          return d.setUint8(0, value ? 1 : 0);
        case GgufType.UINT16:
          return d.setUint16(0, value as number, true);
        case GgufType.INT16:
          return d.setInt16(0, value as number, true);
        case GgufType.UINT32:
          return d.setUint32(0, value as number, true);
        case GgufType.INT32:
          return d.setInt32(0, value as number, true);
        case GgufType.FLOAT32:
          return d.setFloat32(0, value as number, true);
        case GgufType.UINT64:
          return d.setBigUint64(0, BigInt(value as number), true);
        case GgufType.INT64:
          return d.setBigInt64(0, BigInt(value as number), true);
        case GgufType.FLOAT64:
          return d.setFloat64(0, value as number, true);
      }
    });
  }
  pad(alignment: number): void {
    const rest = (alignment - (this.length % alignment)) % alignment;
    if (rest) this.push(new Uint8Array(rest));
  }
  bytes(): Uint8Array {
    const out = new Uint8Array(this.length);
    let at = 0;
    for (const c of this.#chunks) {
      out.set(c, at);
      at += c.length;
    }
    return out;
  }
}

/** A tensor to write: its data is produced when its turn comes (one tensor in memory at a time). */
export interface GgufTensorSource {
  name: string;
  /** ggml order (innermost first). */
  dims: number[];
  type: number;
  data: () => Uint8Array | Promise<Uint8Array>;
}

/** Header, metadata and tensor infos of a GGUF v3 file, padded to the data section. */
function ggufHeader(metadata: [string, GgufEntry][], tensors: { name: string; dims: number[]; type: number }[], alignment: number): { header: Uint8Array; sizes: number[] } {
  const w = new Writer();
  w.u32(0x46554747);
  w.u32(3);
  w.u64(tensors.length);
  const entries = alignment === 32 ? metadata : [...metadata, ["general.alignment", { type: GgufType.UINT32, value: alignment }] as [string, GgufEntry]];
  w.u64(entries.length);
  for (const [key, { type, value, itemType }] of entries) {
    w.string(key);
    w.u32(type);
    w.value(type, value, itemType);
  }
  let offset = 0;
  const sizes: number[] = [];
  for (const t of tensors) {
    const type = ggmlTensorType(t.type);
    const size = type && tensorBytes(type, t.dims.reduce((a, b) => a * b, 1));
    if (size === undefined) throw new ShapeError(`tensor ${t.name}: ${t.dims.join(" x ")} values do not fit ${type?.name ?? `ggml type ${t.type}`} blocks`);
    sizes.push(size);
    w.string(t.name);
    w.u32(t.dims.length);
    for (const d of t.dims) w.u64(d);
    w.u32(t.type);
    w.u64(offset);
    offset += Math.ceil(size / alignment) * alignment;
  }
  w.pad(alignment);
  return { header: w.bytes(), sizes };
}

/** Writes a GGUF v3 file to a sink, producing and writing one tensor at a time. */
export async function writeGgufTo(sink: ByteSink, metadata: [string, GgufEntry][], tensors: GgufTensorSource[], alignment = 32): Promise<void> {
  const { header, sizes } = ggufHeader(metadata, tensors, alignment);
  await sink.write(header);
  for (const [i, t] of tensors.entries()) {
    const data = await t.data();
    if (data.length !== sizes[i]) {
      throw new ShapeError(`tensor ${t.name}: ${data.length} bytes, a ${ggmlTensorType(t.type)?.name ?? t.type} tensor of ${t.dims.join(" x ")} needs ${sizes[i]}`);
    }
    await sink.write(data);
    const pad = (alignment - (data.length % alignment)) % alignment;
    if (pad) await sink.write(new Uint8Array(pad));
  }
}

/** A GGUF v3 file with these metadata entries (in order) and tensors (data aligned), in memory. */
export function writeGguf(metadata: [string, GgufEntry][], tensors: GgufTensorData[], alignment = 32): Uint8Array {
  const { header, sizes } = ggufHeader(metadata, tensors, alignment);
  const w = new Writer();
  w.push(header);
  tensors.forEach((t, i) => {
    if (t.data.length !== sizes[i]) {
      throw new ShapeError(`tensor ${t.name}: ${t.data.length} bytes, a ${ggmlTensorType(t.type)?.name ?? t.type} tensor of ${t.dims.join(" x ")} needs ${sizes[i]}`);
    }
    w.push(t.data);
    w.pad(alignment);
  });
  return w.bytes();
}
