// Hostile files and callers (issue 15): one test per kind of broken promise the fuzzer
// (eval/fuzz.ts) found. Each input is a real model or tokenizer with one thing wrong, and each
// must give a typed error naming the file, the field and what was expected: never a RangeError
// from deep nesting, a raw EISDIR, a TypeError from JSON of the wrong shape, a loop sized by an
// id from the file, a template library's SyntaxError, NaN logits, a 3 GiB allocation for a
// 1 MB model, or a half-written output file.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BitNetError, FormatError, NonFiniteError, OptionError, ShapeError } from "../core/errors.ts";
import { loadBitNet, readCheckpoint } from "../model/load.ts";
import { fileSink, memoryFile, writeThrough } from "../runtime/files.ts";
import { loadKernels } from "../runtime/kernels.ts";
import { checkpointToGguf, writeCheckpointGguf } from "../tools/convert.ts";
import { readGguf } from "../formats/gguf.ts";
import { buildSeeds, type FuzzCase, SEED_FILES } from "../eval/fuzz/seeds.ts";
import { writeCase } from "../eval/fuzz/exercise.ts";
import { deepGguf, withSafetensorsHeader } from "../eval/fuzz/mutate.ts";
import { dataPath, rejects, throwsTyped, withData } from "./helpers.ts";
import { renderChat } from "../text/chat.ts";
import { Template } from "@huggingface/jinja";

const test = suite("hostile");
const MODEL_1M = "models/bitllama-1M.bin", STORIES = "models/stories260K.bin", TOK = "models/tok512.bin";
const text = new TextDecoder(), utf8 = new TextEncoder();

let seeds: Promise<Map<string, FuzzCase>> | undefined;
/** A seed case of the fuzzer written to a fresh folder, after `edit` changed its files. */
async function folderOf(seed: string, edit: (files: FuzzCase["files"]) => void): Promise<string> {
  const c = (await (seeds ??= buildSeeds())).get(seed)!;
  const files = new Map(c.files);
  edit(files);
  const dir = mkdtempSync(join(tmpdir(), `bitnet-hostile-${seed}-`));
  writeCase({ ...c, files }, dir);
  return join(dir, c.entry);
}
const json = (files: FuzzCase["files"], name: string, edit: (doc: Record<string, unknown>) => unknown) => {
  const doc = JSON.parse(text.decode(files.get(name) as Uint8Array));
  const replaced = edit(doc); // undefined: edited in place
  files.set(name, utf8.encode(JSON.stringify(replaced === undefined ? doc : replaced)));
};
/** stories260K with its fp32 values from `from` on replaced. */
const storiesWith = (bytes: Uint8Array, from: number, values: number[]) => {
  const out = bytes.slice();
  new Float32Array(out.buffer, from, values.length).set(values);
  return out;
};

withData(test, "GGUF metadata arrays nested 10,000 deep: a FormatError naming the limit, not a stack overflow", [MODEL_1M, TOK], async (model) => {
  const kx = await loadKernels({ simd: "strict" });
  const gguf = await writeToMemory(kx, model);
  for (const depth of [9, 10_000]) {
    const e = await rejects(loadBitNet(deepGguf(gguf, depth), { tokenizer: "none" }), FormatError, /nested more than 8 deep/);
    assert.match(e.message, /fuzz\.deep/, "names the key");
  }
  assert.is(readGguf(deepGguf(gguf, 7), "shallow.gguf").metadata.size, readGguf(gguf, "g").metadata.size + 1, "nesting within the limit reads");
});

async function writeToMemory(kx: Awaited<ReturnType<typeof loadKernels>>, model: Uint8Array): Promise<Uint8Array> {
  return checkpointToGguf(kx, await readCheckpoint(memoryFile(model, "bitllama-1M.bin")), null, "gguf-i2s");
}

withData(test, "a directory where a file belongs, and index shards named '', '.' or '..': typed errors, not EISDIR", SEED_FILES, async () => {
  await rejects(loadBitNet(await folderOf("hf", (f) => f.set("model.safetensors", "dir"))), BitNetError, /model\.safetensors is a directory or device, expected a file/);
  await rejects(loadBitNet(await folderOf("hf", (f) => f.set("tokenizer.json", "dir"))), BitNetError, /tokenizer\.json/);
  for (const shard of ["", ".", ".."]) {
    const dir = await folderOf("hf-sharded", (f) => json(f, "model.safetensors.index.json", (d) => void ((d.weight_map as Record<string, string>)["model.norm.weight"] = shard)));
    await rejects(
      loadBitNet(dir),
      FormatError,
      new RegExp(`weight_map\\.model\\.norm\\.weight is ${JSON.stringify(JSON.stringify(shard)).slice(1, -1).replace(/\./g, "\\.")}, expected the name of a file`),
    );
  }
});

withData(test, "config.json of the wrong shape: FormatErrors naming config.json and the field", SEED_FILES, async () => {
  const cases: [(d: Record<string, unknown>) => unknown, RegExp][] = [
    [() => null, /config\.json: is null, expected a JSON object/],
    [() => [1], /config\.json: is \[1\], expected a JSON object/],
    [(d) => void (d.architectures = { BitNetForCausalLM: 1 }), /architectures \{"BitNetForCausalLM":1\}, expected \["BitNetForCausalLM"\]/],
    [(d) => void (d.architectures = 7), /architectures 7/],
    [(d) => void (d.num_hidden_layers = { toString: "x" }), /header field nLayers = an object, expected an integer/],
    [(d) => void (d.rms_norm_eps = "1e-5"), /normEps = the string "1e-5", expected a finite positive number/],
    [(d) => void (d.quantization_config = 3), /quantization_config is 3, expected an object/],
    [(d) => void (d.tie_word_embeddings = "yes"), /tie_word_embeddings is "yes", expected true or false/],
  ];
  for (const [edit, pattern] of cases) await rejects(loadBitNet(await folderOf("hf", (f) => json(f, "config.json", edit))), FormatError, pattern);
});

withData(test, "tokenizer.json of the wrong shape fails at load, naming the file, not at the first generate()", SEED_FILES, async () => {
  const cases: [(d: Record<string, unknown>) => unknown, RegExp][] = [
    [(d) => void (d.added_tokens = "none"), /tokenizer\.json: added_tokens is not a list of \{ id, content, special \}/],
    [(d) => void (d.added_tokens = [null]), /added_tokens is not a list/],
    [(d) => void ((d.model as Record<string, unknown>).merges = [1, 2]), /model\.merges is not a list/],
    [(d) => void ((d.model as Record<string, unknown>).vocab = []), /model\.vocab is not an object/],
    [(d) => void (d.pre_tokenizer = { type: "Sequence", pretokenizers: 5 }), /tokenizer\.json: not a usable tokenizer/],
    [(d) => void (d.decoder = { type: "Sequence", decoders: "x" }), /tokenizer\.json: not a usable tokenizer/],
  ];
  for (const [edit, pattern] of cases) await rejects(loadBitNet(await folderOf("tokenizer-json", (f) => json(f, "tokenizer.json", edit))), FormatError, pattern);
  const config = await folderOf("tokenizer-json", (f) => f.set("tokenizer_config.json", utf8.encode("null")));
  await rejects(loadBitNet(config), FormatError, /tokenizer_config\.json is not a JSON object/);
});

withData(test, "a vocabulary id of 10^9 or 2^32 is refused at once (ids are dense), not used to size an array", SEED_FILES, async () => {
  for (const id of [1e9, 2 ** 32, -1, 1.5]) {
    const dir = await folderOf("tokenizer-json", (f) => json(f, "tokenizer.json", (d) => void ((d.model as { vocab: Record<string, number> }).vocab["!"] = id)));
    await rejects(loadBitNet(dir), FormatError, new RegExp(`tokenizer\\.json: token id ${String(id).replace(".", "\\.")} is not an integer in 0\\.\\.404`));
  }
});

withData(test, "a chat template that does not parse or fails to render: a FormatError naming the model", SEED_FILES, async () => {
  for (const template of ["{% for m in messages %}{{ m.content }}", "{{ 1 * }}", "{{ raise_exception('no system role') }}"]) {
    const dir = await folderOf("tokenizer-json", (f) => json(f, "tokenizer_config.json", (d) => void (d.chat_template = template)));
    const model = await loadBitNet(dir);
    await rejects(
      async () => {
        for await (const _ of model.chat([{ role: "user", content: "Hi" }], { maxTokens: 1 }));
      },
      FormatError,
      /its chat template cannot be used: /,
    );
    model.dispose();
  }
});

test("a template that would loop 10^8 times or build a range of 10^8: a FormatError, within the step budget", () => {
  const tokenizer = { bos: 1, eos: 2, vocabSize: 3, stopTokens: new Set([2]), encode: () => [], decode: () => "", decodeBytes: () => new Uint8Array() };
  const user = [{ role: "user" as const, content: "Hi" }];
  const render = (chatTemplate: string) => renderChat({ ...tokenizer, chatTemplate }, user, "m.gguf");
  throwsTyped(() => render("{% for i in range(100000000) %}x{% endfor %}"), FormatError, /m\.gguf: its chat template cannot be used: range\(100000000\) is longer than 100000/);
  throwsTyped(() => render("{% for i in range(10000) %}{% for j in range(10000) %}x{% endfor %}{% endfor %}"), FormatError, /more than 1000000 evaluation steps/);
  assert.is(render("{% for i in range(3) %}{{ i }}{% endfor %}{{ messages[0].content }}"), "012Hi", "bounded, not broken");
  assert.is(new Template("{% for i in range(200000) %}{% endfor %}ok").render({}), "ok", "the library itself is left as it was outside our renders");
});

withData(test, "token ids outside the vocabulary never reach the kernels: perplexity, logits and step refuse them", [MODEL_1M, TOK], async () => {
  const model = await loadBitNet(dataPath(MODEL_1M), { tokenizer: dataPath(TOK) });
  for (const bad of [512, -1, 1.5, NaN, 2 ** 32]) {
    await rejects(model.perplexity([1, bad, 3]), OptionError, /not an integer within the vocabulary/);
    await rejects(() => model.logits([1, bad]), OptionError, /not an integer within the vocabulary/);
  }
  assert.ok(Number.isFinite((await model.perplexity([1, 511, 3])).loss), "the last id of the vocabulary is fine");
  model.dispose();
});

withData(test, "names from Object.prototype are not presets, dtypes or shards", [MODEL_1M, TOK, ...SEED_FILES], async () => {
  for (const variant of ["toString", "constructor", "__proto__", "hasOwnProperty:1", "valueOf,qkv=int4"]) {
    await rejects(loadBitNet(dataPath(MODEL_1M), { tokenizer: dataPath(TOK), variant }), OptionError, /option variant/);
  }
  const dtype = await folderOf("hf-safetensors", (f) => {
    const bytes = f.get("model.safetensors") as Uint8Array, n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
    const header = JSON.parse(text.decode(bytes.subarray(8, 8 + n)));
    header["model.norm.weight"].dtype = "toString";
    f.set("model.safetensors", withSafetensorsHeader(bytes, header));
  });
  await rejects(loadBitNet(dtype), FormatError, /dtype "toString" is not supported/);
});

withData(test, "fp32 weights holding NaN or infinity: a FormatError naming the tensor, unless allowNonFinite", [STORIES, TOK], async (stories) => {
  const dim = 64, vocab = 512, finalNorm = 28 + 4 * (vocab * dim + 5 * (dim + 2 * dim * dim + 2 * 32 * dim + dim + 3 * 172 * dim));
  const cases: [number, string][] = [[28 + 4 * 7, "embedding"], [28 + 4 * (vocab * dim + 3), "layer 0 attention norm"], [finalNorm + 8, "final norm"]];
  for (const [at, name] of cases) {
    for (const bad of [NaN, Infinity]) {
      const bytes = storiesWith(stories, at, [bad]);
      await rejects(loadBitNet(bytes, { tokenizer: dataPath(TOK) }), FormatError, new RegExp(`${name}: 1 of its \\d+ values are infinite or NaN`));
    }
  }
  const model = await loadBitNet(storiesWith(stories, finalNorm, [NaN]), { tokenizer: dataPath(TOK), allowNonFinite: true });
  assert.ok(model.logits([1])[0].some(Number.isNaN), "allowed: the NaN reaches the logits, as asked");
  model.dispose();
});

withData(test, "finite weights that overflow f32 on the way: a NonFiniteError, never NaN logits", [STORIES, TOK], async (stories) => {
  const dim = 64, vocab = 512, finalNorm = 28 + 4 * (vocab * dim + 5 * (dim + 2 * dim * dim + 2 * 32 * dim + dim + 3 * 172 * dim));
  const model = await loadBitNet(storiesWith(stories, finalNorm, new Array(dim).fill(3e38)), { tokenizer: dataPath(TOK) });
  await rejects(() => model.logits([1, 2]), NonFiniteError, /logits at position \d: \d+ values are NaN or infinite/);
  await rejects(
    async () => {
      for await (const _ of model.generate("Once", { maxTokens: 2 }));
    },
    NonFiniteError,
    /logits/,
  );
  model.dispose();
});

withData(test, "an ak42 header's seq_len of 800,000 gets the default 4096-token context, not a 3 GiB KV cache", [MODEL_1M, TOK], async (model) => {
  const bytes = model.slice();
  new DataView(bytes.buffer).setInt32(32, 800_000, true);
  const m = await loadBitNet(bytes, { tokenizer: dataPath(TOK) });
  assert.is(m.config.seqLen, 4096);
  assert.ok(m.memoryBytes < 64 * 2 ** 20, `${m.memoryBytes} bytes`);
  const reply = [];
  for await (const piece of m.generate("Once", { temperature: 0, maxTokens: 5 })) reply.push(piece.token);
  assert.is(reply.length, 5);
  m.dispose();
  const asked = await loadBitNet(bytes, { tokenizer: dataPath(TOK), contextLength: 8192 });
  assert.is(asked.config.seqLen, 8192, "more context when asked for");
  asked.dispose();
});

withData(test, "a failed convert leaves no output file (written to a temporary name, renamed on success)", [MODEL_1M], async (model) => {
  const kx = await loadKernels({ simd: "strict" });
  const ckpt = await readCheckpoint(memoryFile(model, "bitllama-1M.bin"));
  const dir = mkdtempSync(join(tmpdir(), "bitnet-convert-fail-")), out = join(dir, "model.gguf");
  // TQ1_0 blocks are 256 values; the 1M model's rows are 128 wide.
  await rejects(writeThrough(await fileSink(out), (sink) => writeCheckpointGguf(kx, ckpt, null, "gguf-tq1", sink)), ShapeError, /needs a multiple of 256/);
  assert.equal(readdirSync(dir), [], "no file, no temporary left behind");
  await writeThrough(await fileSink(out), (sink) => writeCheckpointGguf(kx, ckpt, null, "gguf-i2s", sink));
  assert.equal(readdirSync(dir), ["model.gguf"]);
  assert.ok(existsSync(out));
  rmSync(dir, { recursive: true });
  mkdirSync(dir);
  writeFileSync(out, "previous");
  await rejects(writeThrough(await fileSink(out), (sink) => writeCheckpointGguf(kx, ckpt, null, "gguf-tq1", sink)), ShapeError, /256/);
  assert.equal(readdirSync(dir), ["model.gguf"], "a file that was there stays as it was");
});

test.run();
