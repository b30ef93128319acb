// GGUF: our writer and reader agree on every value type; @huggingface/gguf parses our files
// to the same metadata and tensor infos; bad files fail with errors that name the field.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { gguf as hfGguf } from "@huggingface/gguf";
import { FormatError } from "../core/errors.ts";
import { GgmlType, type GgufEntry, GgufType, readGguf, readGgufFile } from "../formats/gguf.ts";
import { openFile } from "../runtime/files.ts";
import "../runtime/node.ts"; // openFile of paths
import { writeGguf } from "../formats/gguf-writer.ts";

const test = suite("gguf");

const METADATA: [string, GgufEntry][] = [
  ["general.architecture", { type: GgufType.STRING, value: "bitllama" }],
  ["test.u8", { type: GgufType.UINT8, value: 200 }],
  ["test.i8", { type: GgufType.INT8, value: -100 }],
  ["test.u16", { type: GgufType.UINT16, value: 60000 }],
  ["test.i16", { type: GgufType.INT16, value: -30000 }],
  ["test.u32", { type: GgufType.UINT32, value: 4000000000 }],
  ["test.i32", { type: GgufType.INT32, value: -2000000000 }],
  ["test.f32", { type: GgufType.FLOAT32, value: Math.fround(0.1) }],
  ["test.bool", { type: GgufType.BOOL, value: true }],
  ["test.string", { type: GgufType.STRING, value: "héllo ▁wörld 🙂" }],
  ["test.u64", { type: GgufType.UINT64, value: 2n ** 60n + 7n }],
  ["test.i64", { type: GgufType.INT64, value: -(2n ** 62n) }],
  ["test.f64", { type: GgufType.FLOAT64, value: Math.PI }],
  ["test.strings", { type: GgufType.ARRAY, itemType: GgufType.STRING, value: ["<unk>", "▁the", ""] }],
  ["test.floats", { type: GgufType.ARRAY, itemType: GgufType.FLOAT32, value: [1.5, -2, 0] }],
  ["test.nested", { type: GgufType.ARRAY, itemType: GgufType.ARRAY, value: [] }],
];

const TENSORS = [
  { name: "a.f32", dims: [3, 2], type: GgmlType.F32, data: new Uint8Array(24).fill(1) },
  { name: "b.tq2", dims: [256, 2], type: GgmlType.TQ2_0, data: new Uint8Array(132).fill(2) },
  { name: "c.i2s", dims: [128, 1], type: GgmlType.I2_S, data: new Uint8Array(64).fill(3) },
];

function sample(alignment = 32): Uint8Array {
  return writeGguf(METADATA, TENSORS, alignment);
}

test("write then read: every value type, tensor infos, aligned offsets", () => {
  for (const alignment of [32, 64]) {
    const bytes = sample(alignment);
    const g = readGguf(bytes, "t.gguf");
    assert.is(g.version, 3);
    assert.is(g.alignment, alignment);
    for (const [key, entry] of METADATA) assert.equal(g.metadata.get(key), entry, key);
    assert.equal(g.tensors.map((t) => [t.name, t.dims, t.type, t.bytes]), [["a.f32", [3, 2], 0, 24], ["b.tq2", [256, 2], 35, 132], ["c.i2s", [128, 1], 36, 64]]);
    for (const t of g.tensors) {
      assert.is(t.offset % alignment, 0);
      assert.ok(bytes.subarray(t.offset, t.offset + t.bytes).every((b) => b === bytes[t.offset]));
    }
  }
});

test("@huggingface/gguf reads our file to the same metadata and tensor infos", async () => {
  const path = `${mkdtempSync(`${tmpdir()}/gguf-`)}/sample.gguf`;
  writeFileSync(path, sample());
  const { metadata, tensorInfos } = await hfGguf(path, { allowLocalFile: true });
  const ours = readGguf(sample(), "t.gguf");
  for (const [key, entry] of ours.metadata) {
    const theirs = (metadata as Record<string, unknown>)[key];
    assert.equal(theirs, entry.value, key);
  }
  assert.is(Number(metadata.version), 3);
  assert.equal(
    tensorInfos.map((t) => [t.name, t.shape.map(Number), t.dtype, Number(t.offset)]),
    ours.tensors.map((t) => [t.name, t.dims, t.type, t.offset - ours.dataOffset]),
  );
});

function fails(bytes: Uint8Array, pattern: RegExp): void {
  assert.throws(
    () => readGguf(bytes, "bad.gguf"),
    (e: unknown) => e instanceof FormatError && /^bad\.gguf: /.test((e as Error).message) && pattern.test((e as Error).message),
    String(pattern),
  );
}

test("truncation at every section boundary and in between is a FormatError naming what was cut", () => {
  const bytes = sample();
  const dataEnd = readGguf(bytes, "t").tensors.reduce((m, t) => Math.max(m, t.offset + t.bytes), 0);
  for (let cut = 0; cut < dataEnd; cut += cut < 600 ? 1 : 37) {
    assert.throws(() => readGguf(bytes.subarray(0, cut), "bad.gguf"), (e: unknown) => e instanceof FormatError, `cut at ${cut}`);
  }
  fails(bytes.subarray(0, 6), /truncated: version needs bytes 4\.\.8/);
});

test("a header larger than the first read is fetched in growing pieces from a file; the same file cut short fails", async () => {
  // A 5 MB vocabulary: more than the 1 MiB the reader starts with.
  const tokens = Array.from({ length: 200000 }, (_, i) => `token-${i}-${"x".repeat(i % 40)}`);
  const bytes = writeGguf([...METADATA, ["tokenizer.ggml.tokens", { type: GgufType.ARRAY, itemType: GgufType.STRING, value: tokens }]], TENSORS);
  assert.ok(bytes.length > 4 << 20);
  const dir = mkdtempSync(`${tmpdir()}/gguf-big-`);
  writeFileSync(`${dir}/big.gguf`, bytes);
  const file = await openFile(`${dir}/big.gguf`);
  const g = await readGgufFile(file);
  assert.equal(g.metadata.get("tokenizer.ggml.tokens")?.value, tokens);
  assert.equal(g.tensors, readGguf(bytes, `${dir}/big.gguf`).tensors);
  await file.close();
  for (const cut of [3 << 20, bytes.length - 10]) {
    writeFileSync(`${dir}/cut.gguf`, bytes.subarray(0, cut));
    const cutFile = await openFile(`${dir}/cut.gguf`);
    const e = await readGgufFile(cutFile).then(() => null, (e) => e);
    await cutFile.close();
    assert.ok(e instanceof FormatError && /cut\.gguf: (truncated: |tensor .* lie past the end of the file|.* the rest of the file can hold)/.test(e.message), String(e));
  }
});

test("bad magic, versions, lengths, types, offsets and shapes are refused before allocating", () => {
  const bytes = sample();
  const patch = (_at: number, f: (d: DataView) => void) => {
    const copy = bytes.slice();
    f(new DataView(copy.buffer));
    return copy;
  };
  fails(patch(0, (d) => d.setUint32(0, 0x12345678, true)), /wrong magic 0x12345678/);
  fails(patch(4, (d) => d.setUint32(4, 1, true)), /unsupported GGUF version 1, expected 2 or 3/);
  fails(patch(8, (d) => d.setBigUint64(8, 2n ** 40n, true)), /tensor count is 1099511627776, more than/);
  fails(patch(16, (d) => d.setBigUint64(16, 2n ** 63n, true)), /metadata count is 9223372036854775808/);
  // The first key's length (offset 24): 2^63.
  fails(patch(24, (d) => d.setBigUint64(24, 2n ** 63n, true)), /length of metadata key 0 is 9223372036854775808, more than/);
  // The first value's type (after "general.architecture": 24 + 8 + 20).
  fails(patch(52, (d) => d.setUint32(52, 99, true)), /general\.architecture: unknown metadata value type 99/);
  const g = readGguf(bytes, "t");
  // Find the first tensor info (name "a.f32") and corrupt its fields.
  const nameAt = indexOf(bytes, "a.f32");
  fails(patch(nameAt, (d) => d.setUint32(nameAt, 5, true)), /tensor a\.f32: 5 dimensions, expected 1\.\.4/);
  fails(patch(nameAt + 20, (d) => d.setUint32(nameAt + 20, 77, true)), /tensor a\.f32: unknown or unsupported ggml type 77/);
  fails(patch(nameAt + 24, (d) => d.setBigUint64(nameAt + 24, 8n, true)), /tensor a\.f32: offset 8 is not a multiple of the alignment 32/);
  fails(patch(nameAt + 24, (d) => d.setBigUint64(nameAt + 24, 64n, true)), /tensors b\.tq2 and a\.f32 overlap/);
  fails(patch(nameAt + 24, (d) => d.setBigUint64(nameAt + 24, 1024n, true)), /tensor a\.f32: bytes \d+\.\.\d+ lie past the end of the file/);
  fails(patch(nameAt + 4, (d) => d.setBigUint64(nameAt + 4, 1000n, true)), /tensor a\.f32: bytes \d+\.\.\d+ lie past the end/);
  const tq2At = indexOf(bytes, "b.tq2");
  fails(patch(tq2At + 4, (d) => d.setBigUint64(tq2At + 4, 100n, true)), /tensor b\.tq2: 100 x 2 values do not fit TQ2_0 blocks of 256/);
  assert.is(g.tensors.length, 3);
});

function indexOf(bytes: Uint8Array, text: string): number {
  const needle = new TextEncoder().encode(text);
  outer: for (let i = 0; i + needle.length <= bytes.length; i++) {
    for (let j = 0; j < needle.length; j++) if (bytes[i + j] !== needle[j]) continue outer;
    return i + needle.length;
  }
  throw new Error(`${text} not found`);
}

test.run();
