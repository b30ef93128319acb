// What each stored tensor type means, in one table (as ggml's type_traits): its blocks, its
// id in GGUF files, its float precision or, for ternary types, where the scale lives and the
// kernel codec pair (assembly/formats/, all of one shape: decodeX(src, count, codes, scales),
// encodeX(codes, count, scales, dst), returning how many codes or values were invalid). The
// GGUF reader and writer, the weight decoder and the converter read this table: adding a
// type is one codec plus one row.
import type { KernelExports } from "../runtime/kernels.ts";

/** Where a ternary type keeps its scale: one in the data, one per block, or elsewhere (a header, a tensor of its own). */
export type ScaleLayout = "tensor" | "block" | "outside";

/** The kernels' ternary codecs, by export name. */
export type CodecName = { [K in keyof KernelExports]: K extends `decode${string}` | `encode${string}` ? K : never }[keyof KernelExports];

/** One stored tensor type. */
export interface TensorType {
  /** The type's name (ggml's spelling where it has one), for messages. */
  readonly name: string;
  /** Its ggml type id in GGUF files; absent where GGUF has none. */
  readonly ggml?: number;
  /** Values per block. */
  readonly blockValues: number;
  /** Bytes per block. */
  readonly blockBytes: number;
  /** Bytes after the last block (I2_S: its f32 scale, padded to 32). */
  readonly tailBytes: number;
  /** Float types: the storage precision. */
  readonly float?: "f32" | "f16" | "bf16";
  /** Ternary types: where the scale is, what makes a code invalid (absent: none can be), the codec pair. */
  readonly ternary?: { readonly scales: ScaleLayout; readonly invalid?: string; readonly decode: CodecName; readonly encode: CodecName };
}

const CODE_3 = "are 3 (valid: 0, 1, 2)";

/** Every tensor type this library reads or writes, by name. */
export const TENSOR_TYPES = {
  F32: { name: "F32", ggml: 0, blockValues: 1, blockBytes: 4, tailBytes: 0, float: "f32" },
  F16: { name: "F16", ggml: 1, blockValues: 1, blockBytes: 2, tailBytes: 0, float: "f16" },
  BF16: { name: "BF16", ggml: 30, blockValues: 1, blockBytes: 2, tailBytes: 0, float: "bf16" },
  // Read for its size only (llama.cpp files may hold Q8_0 tensors this library does not use).
  Q8_0: { name: "Q8_0", ggml: 8, blockValues: 32, blockBytes: 34, tailBytes: 0 },
  // bitnet.cpp's: 2 bits per value as code w + 1, then one f32 scale padded to 32 bytes.
  I2_S: { name: "I2_S", ggml: 36, blockValues: 128, blockBytes: 32, tailBytes: 32, ternary: { scales: "tensor", invalid: CODE_3, decode: "decodeI2S", encode: "encodeI2S" } },
  // ggml's: base-3 digits five to a byte, an f16 scale per block (every byte is valid).
  TQ1_0: { name: "TQ1_0", ggml: 34, blockValues: 256, blockBytes: 54, tailBytes: 0, ternary: { scales: "block", decode: "decodeTQ1", encode: "encodeTQ1" } },
  // ggml's: 2 bits per value as code w + 1, an f16 scale per block.
  TQ2_0: { name: "TQ2_0", ggml: 35, blockValues: 256, blockBytes: 66, tailBytes: 0, ternary: { scales: "block", invalid: CODE_3, decode: "decodeTQ2", encode: "encodeTQ2" } },
  // Hugging Face BitNet: uint8 [rows / 4, cols], codes w + 1; the scale is weight_scale's inverse.
  HF_PACKED: {
    name: "HF packed",
    blockValues: 4,
    blockBytes: 1,
    tailBytes: 0,
    ternary: { scales: "outside", invalid: CODE_3, decode: "decodeHfPacked", encode: "encodeHfPacked" },
  },
  // bitllama2.c: 2-bit sign-magnitude codes (00 = 0, 01 = +1, 11 = -1), first code in bits 7-6
  // or, in some files, 1-0 (the header does not say); the scale is in the header.
  SM2: {
    name: "SM2",
    blockValues: 4,
    blockBytes: 1,
    tailBytes: 0,
    ternary: { scales: "outside", invalid: "use the unassigned 2-bit pattern 10", decode: "decodeSM2", encode: "encodeSM2" },
  },
  SM2_LSB: {
    name: "SM2 (first code in bits 1-0)",
    blockValues: 4,
    blockBytes: 1,
    tailBytes: 0,
    ternary: { scales: "outside", invalid: "use the unassigned 2-bit pattern 10", decode: "decodeSM2Lsb", encode: "encodeSM2Lsb" },
  },
} as const satisfies Record<string, TensorType>;

/** A name in TENSOR_TYPES. */
export type TensorTypeName = keyof typeof TENSOR_TYPES;
/** The ternary types' names. */
export type TernaryTypeName = { [K in TensorTypeName]: (typeof TENSOR_TYPES)[K] extends { ternary: object } ? K : never }[TensorTypeName];
/** The tensor types GGUF files hold (those with a ggml id). */
export type GgmlName = { [K in TensorTypeName]: (typeof TENSOR_TYPES)[K] extends { ggml: number } ? K : never }[TensorTypeName];

/** ggml type ids by name (the rows that have one). */
export const GgmlType = Object.fromEntries(
  Object.entries(TENSOR_TYPES).flatMap(([name, t]) => ("ggml" in t ? [[name, t.ggml]] : [])),
) as { readonly [K in GgmlName]: (typeof TENSOR_TYPES)[K]["ggml"] };

const BY_GGML = new Map<number, TensorTypeName>(
  (Object.entries(TENSOR_TYPES) as [TensorTypeName, TensorType][]).flatMap(([name, t]) => (t.ggml === undefined ? [] : [[t.ggml, name]])),
);

/** The name of a ggml type id's row, or undefined for an id this library does not know. */
export function ggmlTypeName(id: number): TensorTypeName | undefined {
  return BY_GGML.get(id);
}

/** The row of a ggml type id, or undefined for an id this library does not know. */
export function ggmlTensorType(id: number): TensorType | undefined {
  const name = BY_GGML.get(id);
  return name && TENSOR_TYPES[name];
}

/** Whether a row is a ternary type. */
export function isTernary(name: TensorTypeName): name is TernaryTypeName {
  return "ternary" in TENSOR_TYPES[name];
}

/** Bytes of `count` values of a type (undefined if they do not fill whole blocks). */
export function tensorBytes(type: TensorType, count: number): number | undefined {
  if (count % type.blockValues !== 0) return undefined;
  return (count / type.blockValues) * type.blockBytes + type.tailBytes;
}

/** How many f32 scales a ternary type's codec reads or writes for `count` values. */
export function scaleCount(type: TensorType, count: number): number {
  return type.ternary?.scales === "block" ? count / type.blockValues : 1;
}
