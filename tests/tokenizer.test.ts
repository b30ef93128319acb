// The llama2.c tokenizer against an independent, literal port of run.c's encode()
// (quadratic merge loop), against published Llama-2 ids, and by round trips.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { FormatError } from "../core/errors.ts";
import { Llama2cTokenizer } from "../text/tokenizer/llama2c.ts";
import { throwsTyped, withData } from "./helpers.ts";

const test = suite("tokenizer");

/** run.c's encode(), step by step as written there (with its quadratic merge loop). */
function runCEncode(t: Llama2cTokenizer, text: string, bos: boolean): number[] {
  const lookup = (s: string) => t.pieces.indexOf(s);
  const tokens: number[] = bos ? [1] : [];
  const bytes = new TextEncoder().encode(text);
  if (bytes.length > 0) tokens.push(lookup(" "));
  let buf: number[] = [];
  for (let i = 0; i < bytes.length; i++) {
    if ((bytes[i] & 0xc0) !== 0x80) buf = [];
    buf.push(bytes[i]);
    if (i + 1 < bytes.length && (bytes[i + 1] & 0xc0) === 0x80 && buf.length < 4) continue;
    const id = lookup(String.fromCharCode(...buf));
    if (id !== -1) tokens.push(id);
    else for (const b of buf) tokens.push(b + 3);
    buf = [];
  }
  for (;;) {
    let best = -1e10, bestId = -1, bestIdx = -1;
    for (let i = 0; i < tokens.length - 1; i++) {
      const id = lookup(t.pieces[tokens[i]] + t.pieces[tokens[i + 1]]);
      if (id !== -1 && t.scores[id] > best) [best, bestId, bestIdx] = [t.scores[id], id, i];
    }
    if (bestIdx === -1) break;
    tokens.splice(bestIdx, 2, bestId);
  }
  return tokens;
}

const SAMPLES = ["", "a", "Hello world", "  two leading spaces", "tabs\tand\nnewlines\r\n", "naïve café 日本語 🙂", "\u0000\u0001 control", "Lily's mom said, \"Don't!\""];

withData(test, "tok512: encodes of sample strings match run.c (byte fallback, unicode, empty string)", ["models/tok512.bin"], (bytes) => {
  const t = Llama2cTokenizer.fromBin(bytes, 512);
  for (const s of SAMPLES) for (const bos of [true, false]) assert.equal(t.encode(s, { bos }), runCEncode(t, s, bos), JSON.stringify(s));
  assert.equal(t.encode(""), [1], "empty text: BOS only, no dummy space");
  const space = t.pieces.indexOf(" ");
  assert.equal(t.encode("🙂", { bos: false }), [space, 0xf0 + 3, 0x9f + 3, 0x99 + 3, 0x82 + 3], "🙂 is not in the 512 vocab: four byte tokens");
  assert.is(t.decode(t.encode("🙂")), "🙂");
});

withData(test, "llama2 tokenizer: published Llama-2 ids and run.c equality", ["models/llama2-tokenizer.bin"], (bytes) => {
  const t = Llama2cTokenizer.fromBin(bytes, 32000);
  assert.equal(t.encode("Hello world"), [1, 15043, 3186]);
  for (const s of SAMPLES) assert.equal(t.encode(s), runCEncode(t, s, true), JSON.stringify(s));
});

for (const [name, file] of [["tinystories", "text/tinystories-valid-32k.txt"], ["shakespeare", "text/tinyshakespeare.txt"], ["wikitext", "text/wikitext2-test-nonblank.txt"]]) {
  withData(test, `${name}: decode(encode(text)) round-trips; chunks match run.c`, ["models/tok512.bin", "models/llama2-tokenizer.bin", file], (t512, tl2, textBytes) => {
    const text = new TextDecoder().decode(textBytes);
    for (const t of [Llama2cTokenizer.fromBin(t512, 512), Llama2cTokenizer.fromBin(tl2, 32000)]) {
      assert.ok(t.decode(t.encode(text)) === text, `${name} round trip with vocab ${t.vocabSize}`);
      for (const at of [0, Math.floor(text.length / 2)]) {
        const chunk = text.slice(at, at + 600);
        assert.equal(t.encode(chunk), runCEncode(t, chunk, true), `${name} chunk at ${at}, vocab ${t.vocabSize}`);
      }
    }
  });
}

withData(
  test,
  "a tokenizer file with a different vocabulary size than the model is refused, naming the file",
  ["models/tok512.bin", "models/llama2-tokenizer.bin"],
  (tok512, llama2) => {
    throwsTyped(() => Llama2cTokenizer.fromBin(tok512, 32000, "tok512.bin"), FormatError, /tok512\.bin.*holds 512 tokens.*32000/);
    throwsTyped(() => Llama2cTokenizer.fromBin(llama2, 512, "llama2-tokenizer.bin"), FormatError, /larger than the model's 512/);
    throwsTyped(() => Llama2cTokenizer.fromBin(tok512.subarray(0, 1000), 512, "cut.bin"), FormatError, /cut\.bin/);
    throwsTyped(() => Llama2cTokenizer.fromBin(new Uint8Array(2), 512, "tiny.bin"), FormatError, /tiny\.bin: truncated/);
  },
);

test.run();
