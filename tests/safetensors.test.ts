// safetensors: a file laid out by hand from the format's specification parses to its
// tensors; our writer round-trips; every malformed field is a FormatError naming it.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { FormatError } from "../core/errors.ts";
import { readSafetensors, readSafetensorsIndex, writeSafetensors } from "../formats/safetensors.ts";
import { throwsTyped } from "./helpers.ts";

const test = suite("safetensors");

/** header length (u64 LE) + JSON + data, exactly as the specification lays it out. */
function handMade(header: unknown, data: Uint8Array, headerBytes?: Uint8Array): Uint8Array {
  const json = headerBytes ?? new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

const DATA = Uint8Array.from({ length: 40 }, (_, i) => i);
const HEADER = {
  __metadata__: { format: "pt" },
  "a.weight": { dtype: "F32", shape: [2, 3], data_offsets: [0, 24] },
  "b.packed": { dtype: "U8", shape: [4, 2], data_offsets: [24, 32] },
  "c.bf16": { dtype: "BF16", shape: [4], data_offsets: [32, 40] },
};

test("a file written by the specification parses to its tensors and metadata", () => {
  const bytes = handMade(HEADER, DATA);
  const st = readSafetensors(bytes, "m.safetensors");
  assert.equal(st.metadata, { format: "pt" });
  assert.equal([...st.tensors.values()].map((t) => [t.name, t.dtype, t.shape, t.bytes]), [["a.weight", "F32", [2, 3], 24], ["b.packed", "U8", [4, 2], 8], [
    "c.bf16",
    "BF16",
    [4],
    8,
  ]]);
  const b = st.tensors.get("b.packed")!;
  assert.equal(Array.from(bytes.subarray(b.offset, b.offset + b.bytes)), [24, 25, 26, 27, 28, 29, 30, 31]);
});

test("our writer round-trips, with the header padded to 8 bytes", () => {
  const bytes = writeSafetensors([
    { name: "x", dtype: "F16", shape: [3], data: Uint8Array.of(1, 2, 3, 4, 5, 6) },
    { name: "y", dtype: "I8", shape: [2, 2], data: Uint8Array.of(255, 1, 0, 128) },
  ], { note: "hi" });
  assert.is(Number(new DataView(bytes.buffer).getBigUint64(0, true)) % 8, 0);
  const st = readSafetensors(bytes, "w");
  assert.equal(st.metadata, { note: "hi" });
  const y = st.tensors.get("y")!;
  assert.equal(Array.from(bytes.subarray(y.offset, y.offset + y.bytes)), [255, 1, 0, 128]);
});

test("malformed files are refused with the field and what was expected", () => {
  const fails = (bytes: Uint8Array, pattern: RegExp) =>
    assert.throws(
      () => readSafetensors(bytes, "bad.st"),
      (e: unknown) => e instanceof FormatError && /^bad\.st: /.test((e as Error).message) && pattern.test((e as Error).message),
      String(pattern),
    );
  const good = handMade(HEADER, DATA);
  fails(good.subarray(0, 5), /truncated: 5 bytes/);
  const huge = good.slice();
  new DataView(huge.buffer).setBigUint64(0, 2n ** 62n, true);
  fails(huge, /header length 4611686018427387904 is beyond the file/);
  fails(good.subarray(0, 50), /header length \d+ is beyond the file \(50 bytes\)/);
  fails(handMade(null, DATA, new TextEncoder().encode("{not json")), /header is not valid JSON/);
  fails(handMade([1, 2], DATA), /header is not a JSON object/);
  fails(handMade({ t: { dtype: "F64", shape: [1], data_offsets: [0, 8] } }, DATA), /tensor t: dtype "F64" is not supported \(supported: F32, F16, BF16, U8, I8\)/);
  fails(handMade({ t: { dtype: "F32", shape: [-1], data_offsets: [0, 4] } }, DATA), /tensor t: shape \[-1\] is not a list of sizes/);
  fails(handMade({ t: { dtype: "F32", shape: [1], data_offsets: [8, 4] } }, DATA), /tensor t: data_offsets \[8,4\] are not \[begin, end\]/);
  fails(handMade({ t: { dtype: "F32", shape: [20], data_offsets: [0, 80] } }, DATA), /tensor t: data_offsets \[0,80\] lie past the end of the data \(40 bytes\)/);
  fails(handMade({ t: { dtype: "F32", shape: [2, 3], data_offsets: [0, 20] } }, DATA), /tensor t: 20 bytes, F32 \[2, 3\] needs 24/);
  fails(handMade({ a: { dtype: "U8", shape: [8], data_offsets: [0, 8] }, b: { dtype: "U8", shape: [8], data_offsets: [4, 12] } }, DATA), /tensors a and b overlap/);
  fails(handMade({ __metadata__: { n: 3 } }, DATA), /__metadata__\.n is not a string/);
});

test("sharded index: weight_map of file names in the same folder", () => {
  const map = readSafetensorsIndex(JSON.stringify({ metadata: {}, weight_map: { "a.weight": "model-00001-of-00002.safetensors" } }), "index.json");
  assert.equal([...map], [["a.weight", "model-00001-of-00002.safetensors"]]);
  throwsTyped(() => readSafetensorsIndex("{}", "index.json"), FormatError, /index\.json: has no weight_map object/);
  throwsTyped(
    () => readSafetensorsIndex(JSON.stringify({ weight_map: { a: "../../etc/passwd" } }), "index.json"),
    FormatError,
    /weight_map\.a is "\.\.\/\.\.\/etc\/passwd", expected the name of a file in the same folder/,
  );
});

test.run();
