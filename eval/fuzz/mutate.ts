// Structure-aware mutations of the seed cases: each binary format is walked here (on our own,
// tolerant of damage, independent of the readers under test) into its integer fields and
// section boundaries, so a mutation hits a count, a length, an offset or a type and not
// only random bytes; JSON files are mutated as values (other types, prototype names, huge
// numbers, deep nesting); folders lose files or get directories where files belong.
import { uniform } from "../../core/random.ts";
import { type GgufEntry, GgufType, readGguf } from "../../formats/gguf.ts";
import { writeGguf } from "../../formats/gguf-writer.ts";
import type { FuzzCase } from "./seeds.ts";

type Rng = () => number;
const pick = <T>(r: Rng, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)];
const int = (r: Rng, n: number) => Math.floor(r() * n);

/** Integer values that break bounds checks: zero, -1, the 2^31 / 2^32 / 2^53 / 2^63 edges. */
const EXTREMES = [
  0n,
  1n,
  2n,
  3n,
  7n,
  -1n,
  255n,
  65535n,
  2n ** 31n - 1n,
  2n ** 31n,
  2n ** 32n - 1n,
  2n ** 32n,
  2n ** 53n,
  2n ** 53n + 1n,
  2n ** 63n - 1n,
  2n ** 63n,
  2n ** 64n - 1n,
  1000000n,
  800000n,
];
/** Names that pass an `in` check on a plain object. */
export const PROTOTYPE_NAMES = ["__proto__", "toString", "constructor", "hasOwnProperty", "valueOf", "__defineGetter__", "isPrototypeOf"];

/** An integer field of a binary file. */
interface Field {
  at: number;
  width: 4 | 8;
  what: string;
  float?: boolean;
}
/** What a walk of a binary file finds. */
interface Layout {
  fields: Field[];
  boundaries: number[];
}

function setField(bytes: Uint8Array, f: Field, r: Rng): string {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (f.float) {
    const x = pick(r, [NaN, Infinity, -Infinity, 0, -0, 1e38, -1e-45, 65504]);
    v.setFloat32(f.at, x, true);
    return `${f.what} (f32 at ${f.at}) = ${x}`;
  }
  const x = pick(r, EXTREMES);
  if (f.width === 4) v.setUint32(f.at, Number(BigInt.asUintN(32, x)), true);
  else v.setBigUint64(f.at, BigInt.asUintN(64, x), true);
  return `${f.what} (u${f.width * 8} at ${f.at}) = ${x}`;
}

/** Walks a GGUF file's header as far as it is consistent. */
function ggufLayout(b: Uint8Array): Layout {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength), fields: Field[] = [], boundaries: number[] = [];
  let p = 0;
  const u32 = (what: string) => (fields.push({ at: p, width: 4, what }), p += 4, v.getUint32(p - 4, true));
  const u64 = (what: string) => (fields.push({ at: p, width: 8, what }), p += 8, Number(v.getBigUint64(p - 8, true)));
  const sizes: Record<number, number> = { 0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8 };
  const value = (type: number, what: string, depth: number): void => {
    if (type === GgufType.STRING) p += u64(`${what} length`);
    else if (type === GgufType.ARRAY && depth < 4) {
      const item = u32(`${what} item type`), n = u64(`${what} count`);
      if (item === GgufType.STRING || item === GgufType.ARRAY) { for (let i = 0; i < n && p < b.length; i++) value(item, `${what}[${i}]`, depth + 1); }
      else p += n * (sizes[item] ?? 1);
    } else p += sizes[type] ?? 0;
  };
  try {
    u32("magic"), u32("version");
    const tensors = u64("tensor count"), kvs = u64("metadata count");
    for (let i = 0; i < kvs && p < b.length; i++) {
      boundaries.push(p);
      p += u64(`key ${i} length`);
      value(u32(`key ${i} type`), `key ${i}`, 0);
    }
    for (let i = 0; i < tensors && p < b.length; i++) {
      boundaries.push(p);
      p += u64(`tensor ${i} name length`);
      const dims = u32(`tensor ${i} dims`);
      for (let d = 0; d < dims && d < 4; d++) u64(`tensor ${i} dim ${d}`);
      u32(`tensor ${i} type`), u64(`tensor ${i} offset`);
    }
    boundaries.push(p, Math.ceil(p / 32) * 32);
  } catch { /* a damaged header ends the walk */ }
  return { fields: fields.filter((f) => f.at + f.width <= b.length), boundaries };
}

/** llama2.c v0: seven int32 header fields, then fp32 arrays. */
function llama2cLayout(b: Uint8Array): Layout {
  const v = new DataView(b.buffer, b.byteOffset), names = ["dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size", "seq_len"];
  const [dim, hidden, layers, , kvHeads, vocab] = names.map((_, i) => v.getInt32(i * 4, true));
  const kvDim = (dim * kvHeads) / v.getInt32(12, true),
    sections = [
      Math.abs(vocab) * dim,
      layers * dim,
      layers * dim * dim,
      layers * kvDim * dim,
      layers * kvDim * dim,
      layers * dim * dim,
      layers * dim,
      layers * hidden * dim,
      layers * dim * hidden,
      layers * hidden * dim,
      dim,
    ];
  const boundaries = [28];
  for (const s of sections) boundaries.push(boundaries[boundaries.length - 1] + s * 4);
  return { fields: names.map((what, i) => ({ at: i * 4, width: 4, what })), boundaries };
}

/** bitllama ak42: magic, version, seven int32 fields, a shared flag; 256-byte header. */
function ak42Layout(b: Uint8Array): Layout {
  const names = ["magic", "version", "dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size", "seq_len"];
  const v = new DataView(b.buffer, b.byteOffset), dim = v.getInt32(8, true), vocab = v.getInt32(28, true);
  return {
    fields: [...names.map((what, i) => ({ at: i * 4, width: 4 as const, what })), { at: 36, width: 4, what: "shared_classifier byte" }],
    boundaries: [256, 256 + dim * 4, 256 + dim * 4 + vocab * dim * 4],
  };
}

/** llama2.c tokenizer.bin: max_token_length, then per token an f32 score, an int32 length and the bytes. */
function tokenizerBinLayout(b: Uint8Array): Layout {
  const v = new DataView(b.buffer, b.byteOffset), fields: Field[] = [{ at: 0, width: 4, what: "max_token_length" }], boundaries: number[] = [4];
  for (let p = 4, i = 0; p + 8 <= b.length; i++) {
    fields.push({ at: p, width: 4, what: `token ${i} score`, float: true }, { at: p + 4, width: 4, what: `token ${i} length` });
    p += 8 + Math.max(0, v.getInt32(p + 4, true));
    boundaries.push(p);
  }
  return { fields, boundaries };
}

/** Generic byte damage over a file of the given layout: field extremes, truncation, bit flips. */
function damage(bytes: Uint8Array, layout: Layout, r: Rng): { bytes: Uint8Array; note: string } {
  const out = bytes.slice(), roll = r();
  if (roll < 0.5 && layout.fields.length) {
    const notes = Array.from({ length: 1 + int(r, 2) }, () => setField(out, pick(r, layout.fields), r));
    return { bytes: out, note: notes.join("; ") };
  }
  if (roll < 0.75) {
    const at = Math.max(0, Math.min(bytes.length - 1, (layout.boundaries.length && r() < 0.8 ? pick(r, layout.boundaries) : int(r, bytes.length)) + pick(r, [0, 0, -1, 1, -4, 4])));
    return { bytes: bytes.slice(0, at), note: `truncated to ${at} bytes` };
  }
  const flips = 1 + int(r, 8), head = Math.min(bytes.length, 1024);
  for (let i = 0; i < flips; i++) {
    const at = r() < 0.7 ? int(r, head) : int(r, bytes.length);
    out[at] ^= 1 << int(r, 8);
  }
  return { bytes: out, note: `${flips} bit flips` };
}

/** A JSON value of another type, or an extreme of the same kind. */
function hostileValue(r: Rng, depth = 0): unknown {
  const kinds = [
    () => null,
    () => pick(r, [true, false]),
    () => pick(r, [0, -1, 1.5, 1e9, 2 ** 31, 2 ** 32, 2 ** 53, 2 ** 63, 1e308, -1e308, -0]),
    () => pick(r, ["", ...PROTOTYPE_NAMES, "BitNetForCausalLM", "relu2", "BPE", "x".repeat(1000)]),
    () => [],
    () => ({}),
    () => (depth < 2 ? [hostileValue(r, depth + 1)] : [null]),
    () => (depth < 2 ? { [pick(r, PROTOTYPE_NAMES)]: hostileValue(r, depth + 1) } : {}),
    () => {
      let v: unknown = 1;
      for (let i = pick(r, [100, 1000]); i > 0; i--) v = [v];
      return v;
    },
  ];
  return pick(r, kinds)();
}

/** Mutates a parsed JSON document in place at a node found by a random walk from the root (shallow fields are the likeliest). */
function mutateJson(doc: unknown, r: Rng): { doc: unknown; note: string } {
  if (r() < 0.05) {
    const v = hostileValue(r);
    return { doc: v, note: `document replaced by ${describe(v)}` };
  }
  let node = doc as Record<string, unknown> | unknown[], path = "$";
  for (;;) {
    const keys = Object.keys(node);
    if (!keys.length) break;
    const key = pick(r, keys), child = (node as Record<string, unknown>)[key];
    if (child === null || typeof child !== "object" || r() < 0.35) {
      const op = r();
      if (op < 0.6) {
        const v = hostileValue(r);
        (node as Record<string, unknown>)[key] = v;
        return { doc, note: `${path}.${key} = ${describe(v)}` };
      }
      if (op < 0.75 && !Array.isArray(node)) {
        delete (node as Record<string, unknown>)[key];
        return { doc, note: `${path}.${key} deleted` };
      }
      if (op < 0.9 && !Array.isArray(node)) {
        const name = pick(r, PROTOTYPE_NAMES);
        Object.defineProperty(node, name, { value: child, enumerable: true, configurable: true, writable: true });
        delete (node as Record<string, unknown>)[key];
        return { doc, note: `${path}.${key} renamed ${name}` };
      }
      if (typeof child === "number") {
        const v = pick(r, [child * 2 ** 20, -child, child + 0.5, 1e9, 2 ** 32]);
        (node as Record<string, unknown>)[key] = v;
        return { doc, note: `${path}.${key} = ${v} (was ${child})` };
      }
      (node as Record<string, unknown>)[key] = hostileValue(r);
      return { doc, note: `${path}.${key} = ${describe((node as Record<string, unknown>)[key])}` };
    }
    node = child as Record<string, unknown>;
    path += `.${key}`;
  }
  return { doc, note: `${path}: empty, left as is` };
}

function describe(v: unknown): string {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 60 ? `${s.slice(0, 40)}… (${s.length} chars)` : s;
}

const TEMPLATE_DAMAGE = [
  "{%",
  "%}",
  "{{",
  "}}",
  "{% endif %}",
  "{% for x in %}",
  "{{ messages[",
  "|",
  "((",
  "{% set %}",
  "{{ raise_exception('no') }}",
  "{% for i in range(100000000) %}x{% endfor %}",
  "{{ messages[0]['content'].x.y }}",
  "{{ 1/0 }}",
];

/** Mutates a chat template (text inside tokenizer_config.json or GGUF metadata). */
function mutateTemplate(t: string, r: Rng): { text: string; note: string } {
  if (r() < 0.4) {
    const at = int(r, t.length);
    return { text: t.slice(0, at), note: `chat_template cut at ${at}` };
  }
  const piece = pick(r, TEMPLATE_DAMAGE), at = int(r, t.length + 1);
  return { text: t.slice(0, at) + piece + t.slice(at), note: `chat_template: ${JSON.stringify(piece)} inserted at ${at}` };
}

const utf8 = new TextEncoder(), text = new TextDecoder();

/** A semantic GGUF mutation: metadata values retyped or pushed to extremes, tensor infos changed, re-written by the library's writer. */
function mutateGgufSemantics(bytes: Uint8Array, r: Rng): { bytes: Uint8Array; note: string } | null {
  let gguf;
  try {
    gguf = readGguf(bytes, "seed.gguf");
  } catch {
    return null;
  }
  const metadata = [...gguf.metadata.entries()].filter(([k]) => k !== "general.alignment");
  const tensors = gguf.tensors.map((t) => ({ name: t.name, dims: [...t.dims], type: t.type, data: bytes.subarray(t.offset, t.offset + t.bytes) }));
  let note: string;
  const roll = r();
  if (roll < 0.55) {
    const i = int(r, metadata.length), [key, entry] = metadata[i];
    const replacements: GgufEntry[] = [
      { type: GgufType.UINT32, value: pick(r, [0, 1, 4294967295, 2147483648, 800000]) },
      { type: GgufType.INT32, value: pick(r, [-1, -2147483648, 0]) },
      { type: GgufType.UINT64, value: pick(r, [2n ** 63n, 2n ** 64n - 1n, 2n ** 53n + 1n]) },
      { type: GgufType.FLOAT32, value: pick(r, [NaN, Infinity, -1, 0, 1.5]) },
      { type: GgufType.STRING, value: pick(r, [...PROTOTYPE_NAMES, "", "llama", "bitnet-b1.58", "gpt2", "\u0000"]) },
      { type: GgufType.BOOL, value: true },
      { type: GgufType.ARRAY, itemType: GgufType.STRING, value: [] },
      { type: GgufType.ARRAY, itemType: GgufType.INT32, value: [-1, 2147483647] },
    ];
    if (entry.type === GgufType.ARRAY && Array.isArray(entry.value) && r() < 0.5) {
      const items = entry.value, cut = int(r, items.length + 1);
      const damaged = r() < 0.5
        ? items.slice(0, cut)
        : items.map((x, j) => (j === cut && typeof x === "number" ? pick(r, [NaN, -1, 1e9, 2 ** 32]) : j === cut && typeof x === "string" ? pick(r, PROTOTYPE_NAMES) : x));
      metadata[i] = [key, { ...entry, value: damaged }];
      note = `metadata ${key}: array of ${items.length} damaged at ${cut}`;
    } else if (entry.type === GgufType.STRING && key.includes("chat_template")) {
      const m = mutateTemplate(String(entry.value), r);
      metadata[i] = [key, { ...entry, value: m.text }];
      note = m.note;
    } else {
      const v = pick(r, replacements);
      metadata[i] = [key, v];
      note = `metadata ${key} = ${GgufType[v.type]} ${describe(typeof v.value === "bigint" ? String(v.value) : v.value)}`;
    }
  } else if (roll < 0.65) {
    const i = int(r, metadata.length);
    note = `metadata ${metadata[i][0]} removed`;
    metadata.splice(i, 1);
  } else {
    const i = int(r, tensors.length), t = tensors[i], op = int(r, 4);
    if (op === 0) {
      t.name = pick(r, [...PROTOTYPE_NAMES, tensors[(i + 1) % tensors.length].name, ""]);
      note = `tensor ${i} renamed ${JSON.stringify(t.name)}`;
    } else if (op === 1) {
      tensors.splice(i, 1);
      note = `tensor ${t.name} removed`;
    } else {
      // Retyping or reshaping keeps the bytes: the file's sizes then disagree, or the values are misread.
      const was = `${t.type} [${t.dims}]`;
      if (op === 2) t.type = pick(r, [0, 1, 16, 34, 35, 36, 30]);
      else t.dims = t.dims.map((d, j) => (j === 0 ? pick(r, [d * 2, d / 2, 1, d + 1]) : d));
      const need = { ...t };
      note = `tensor ${t.name} ${was} -> ${need.type} [${need.dims}]`;
    }
  }
  try {
    return { bytes: writeGguf(metadata, tensors), note };
  } catch {
    return null; // the writer refuses what cannot be laid out (blocks that do not fit): fall back to raw damage
  }
}

/** A metadata entry of nested arrays `depth` deep inserted first, padded so the data section stays aligned. */
export function deepGguf(bytes: Uint8Array, depth: number): Uint8Array {
  const levelBytes = 12, inner = 4 + 8 + 4; // each level: item type ARRAY + count 1; innermost: UINT32 x1 + value
  const fixed = 8 + 4 + depth * levelBytes + inner; // key length u64, value type u32
  const keyLength = 8 + ((32 - ((fixed + 8) % 32)) % 32);
  const entry = new Uint8Array(fixed + keyLength), v = new DataView(entry.buffer);
  let p = 0;
  v.setBigUint64(p, BigInt(keyLength), true), p += 8;
  entry.set(utf8.encode("fuzz.deep".padEnd(keyLength, "x").slice(0, keyLength)), p), p += keyLength;
  v.setUint32(p, GgufType.ARRAY, true), p += 4;
  for (let i = 0; i < depth; i++) v.setUint32(p, GgufType.ARRAY, true), v.setBigUint64(p + 4, 1n, true), p += 12;
  v.setUint32(p, GgufType.UINT32, true), v.setBigUint64(p + 4, 1n, true), v.setUint32(p + 12, 7, true);
  const out = new Uint8Array(bytes.length + entry.length), dv = new DataView(out.buffer);
  out.set(bytes.subarray(0, 24)), out.set(entry, 24), out.set(bytes.subarray(24), 24 + entry.length);
  dv.setBigUint64(16, dv.getBigUint64(16, true) + 1n, true);
  return out;
}

/** A safetensors file's data under another JSON header (its length field rewritten). */
export function withSafetensorsHeader(bytes: Uint8Array, header: unknown): Uint8Array {
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  const json = utf8.encode(JSON.stringify(header) ?? "null"), out = new Uint8Array(8 + json.length + bytes.length - 8 - n);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8), out.set(bytes.subarray(8 + n), 8 + json.length);
  return out;
}

/** safetensors: the JSON header mutated as a value, or its length field / sections damaged. */
function mutateSafetensors(bytes: Uint8Array, r: Rng): { bytes: Uint8Array; note: string } {
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  const header = JSON.parse(text.decode(bytes.subarray(8, 8 + n)));
  const offsets = Object.values(header as Record<string, { data_offsets?: number[] }>).flatMap((t) => t.data_offsets ?? []).map((o) => 8 + n + o);
  if (r() < 0.7) {
    const m = mutateJson(header, r);
    return { bytes: withSafetensorsHeader(bytes, m.doc), note: `header: ${m.note}` };
  }
  return damage(bytes, { fields: [{ at: 0, width: 8, what: "header length" }], boundaries: [8, 8 + n, ...offsets] }, r);
}

/** Folder damage: a file missing, a directory where a file belongs, files swapped, an index naming what is not a shard. */
function mutateFolder(c: FuzzCase, r: Rng): string {
  const names = [...c.files.keys()], roll = r();
  if (roll < 0.25) {
    const name = pick(r, names);
    c.files.delete(name);
    return `${name} missing`;
  }
  if (roll < 0.5) {
    const name = pick(r, names);
    c.files.set(name, "dir");
    return `${name} is a directory`;
  }
  if (roll < 0.65) {
    const a = pick(r, names), b = pick(r, names), bytes = c.files.get(a)!;
    c.files.set(a, c.files.get(b)!), c.files.set(b, bytes);
    return `${a} and ${b} swapped`;
  }
  const index = c.files.get("model.safetensors.index.json");
  const map = index instanceof Uint8Array ? JSON.parse(text.decode(index)).weight_map : { "model.embed_tokens.weight": "model.safetensors" };
  const key = pick(r, Object.keys(map)),
    shard = pick(r, ["", ".", "..", "./", "config.json", "model.safetensors.index.json", "tokenizer.json", "missing.safetensors", ...PROTOTYPE_NAMES]);
  map[key] = shard;
  if (r() < 0.3) c.files.set(shard || "empty", "dir");
  c.files.set("model.safetensors.index.json", utf8.encode(JSON.stringify({ weight_map: map })));
  return `index puts ${key} in ${JSON.stringify(shard)}`;
}

/** Hostile caller arguments for a good model. */
function hostileCall(r: Rng): NonNullable<FuzzCase["call"]> {
  const roll = r();
  if (roll < 0.35) {
    const variant = pick(r, [
      ...PROTOTYPE_NAMES,
      "",
      "a4.8",
      "weights=toString",
      "activations=constructor",
      "weights=median:group:0",
      "kv=__proto__",
      "q-sparse:toString",
      "weights=absmean;activations=int4",
      "hadamard:3",
    ]);
    const key = pick(r, ["variant", "lmHead", "contextLength", "threads", "simd", "bitOrder", "toString", "__proto__"]);
    return { load: { [key]: key === "variant" ? variant : hostileValue(r) } };
  }
  if (roll < 0.7) {
    return { ids: Array.from({ length: 2 + int(r, 4) }, () => pick(r, [0, 1, 2, 511, 512, 513, -1, 1.5, NaN, 2 ** 31, 2 ** 32, 1e9])) };
  }
  const key = pick(r, [
    "maxTokens",
    "temperature",
    "topP",
    "topK",
    "seed",
    "stop",
    "repetitionPenalty",
    "presencePenalty",
    "frequencyPenalty",
    "signal",
    "toString",
    "constructor",
  ]);
  return { generate: { [key]: hostileValue(r) } };
}

/** Case number `id` of a run seeded `seed`: a copy of one seed with one or two mutations. */
export function makeCase(seeds: Map<string, FuzzCase>, seed: number, id: number): FuzzCase {
  const r = uniform(seed * 0x9e3779b1 + id * 0x85ebca77); // every case is reproducible from (seed, case number)
  const base = pick(r, [...seeds.values()]);
  const c: FuzzCase = { ...base, files: new Map(base.files), mutations: [] };
  const rounds = r() < 0.8 ? 1 : 2;
  for (let round = 0; round < rounds; round++) {
    try {
      c.mutations.push(mutateOnce(c, r));
    } catch (e) {
      c.mutations.push(`a mutation did not apply to what the last one left (${(e as Error).message})`);
    }
  }
  return c;
}

function mutateOnce(c: FuzzCase, r: Rng): string {
  const file = (name: string) => c.files.get(name);
  const edit = (name: string, f: (b: Uint8Array) => { bytes: Uint8Array; note: string }) => {
    const b = file(name);
    if (!(b instanceof Uint8Array)) return `${name}: not a file, left as is`;
    const m = f(b);
    c.files.set(name, m.bytes);
    return `${name}: ${m.note}`;
  };
  const json = (name: string) =>
    edit(name, (b) => {
      const m = mutateJson(JSON.parse(text.decode(b)), r);
      return { bytes: utf8.encode(JSON.stringify(m.doc) ?? "null"), note: m.note };
    });
  switch (c.reader) {
    case "gguf":
      return edit("model.gguf", (b) => {
        const roll = r();
        if (roll < 0.05) {
          const depth = pick(r, [16, 64, 10000, 100000]);
          return { bytes: deepGguf(b, depth), note: `metadata arrays nested ${depth} deep` };
        }
        return (roll < 0.5 ? mutateGgufSemantics(b, r) : null) ?? damage(b, ggufLayout(b), r);
      });
    case "llama2c":
      return edit("model.bin", (b) => damage(b, llama2cLayout(b), r));
    case "ak42":
      return edit("model.bin", (b) => damage(b, ak42Layout(b), r));
    case "tokenizer-bin":
      return edit("tok512.bin", (b) => damage(b, tokenizerBinLayout(b), r));
    case "safetensors": {
      if (r() < 0.3) return mutateFolder(c, r);
      const shards = [...c.files.keys()].filter((n) => n.endsWith(".safetensors"));
      return edit(pick(r, shards), (b) => mutateSafetensors(b, r));
    }
    case "hf-json":
      if (r() < 0.25) return mutateFolder(c, r);
      return json("config.json");
    case "tokenizer-json": {
      const roll = r();
      if (roll < 0.3) {
        return edit("tokenizer_config.json", (b) => {
          const config = JSON.parse(text.decode(b));
          if (r() < 0.6) {
            const m = mutateTemplate(config.chat_template, r);
            config.chat_template = m.text;
            return { bytes: utf8.encode(JSON.stringify(config)), note: m.note };
          }
          const m = mutateJson(config, r);
          return { bytes: utf8.encode(JSON.stringify(m.doc) ?? "null"), note: m.note };
        });
      }
      if (roll < 0.45) {
        return edit("tokenizer.json", (b) => {
          const doc = JSON.parse(text.decode(b)), vocab = doc.model.vocab, key = pick(r, Object.keys(vocab));
          vocab[key] = pick(r, [1e9, 2 ** 32, 2 ** 31, -1, 1.5, 1e6, 512]);
          return { bytes: utf8.encode(JSON.stringify(doc)), note: `vocab[${JSON.stringify(key)}] = ${vocab[key]}` };
        });
      }
      return json("tokenizer.json");
    }
    case "caller":
      c.call = hostileCall(r);
      return `call ${describe(c.call)}`;
  }
  throw new Error(`no mutator for reader ${c.reader}`);
}
