// Bad input gets a typed error that names the file or option and what was expected.
import { suite } from "uvu";
import { BitNetError, FormatError, NonFiniteError, OptionError } from "../core/errors.ts";
import { loadBitNet } from "../model/load.ts";
import { ActivationQuantizer } from "../quant/activations.ts";
import { BitLinear } from "../quant/bitlinear.ts";
import { checkpointOf, dataPath, kernels, rejects, withData } from "./helpers.ts";

const test = suite("errors");

function patched(bytes: Uint8Array, offset: number, value: number): Uint8Array {
  const copy = bytes.slice();
  new DataView(copy.buffer).setInt32(offset, value, true);
  return copy;
}

withData(test, "bitllama: truncated file, wrong magic, wrong version, dims that disagree with the size, absurd dims", ["models/bitllama-1M.bin"], async (bytes) => {
  await rejects(() => checkpointOf(bytes.subarray(0, bytes.length - 1), "bit.bin"), FormatError, /^bit\.bin: size 558047 does not match the header .* expected 558048 bytes/);
  await rejects(() => checkpointOf(bytes.subarray(0, 100), "bit.bin"), FormatError, /^bit\.bin: truncated: 100 bytes/);
  await rejects(() => checkpointOf(patched(bytes, 4, 7), "bit.bin"), FormatError, /unsupported ak42 version 7, expected 1/);
  await rejects(() => checkpointOf(patched(bytes, 8, 256), "bit.bin"), FormatError, /does not match the header \(dim 256/);
  await rejects(() => checkpointOf(patched(bytes, 8, -5), "bit.bin"), FormatError, /header field dim = -5/);
  await rejects(() => checkpointOf(patched(bytes, 28, 2147483647), "bit.bin"), FormatError, /header field vocabSize = 2147483647, expected an integer in 1\.\.16777216/);
  await rejects(() => checkpointOf(patched(bytes, 24, 3), "bit.bin"), FormatError, /n_heads 8 is not a multiple of n_kv_heads 3/);
  const wrongMagic = patched(bytes, 0, 0x12345678);
  await rejects(() => checkpointOf(wrongMagic, "bit.bin"), FormatError, /^bit\.bin: not a GGUF or bitllama ak42 file \(no magic\) nor a llama2\.c v0 checkpoint/);
});

withData(test, "llama2.c: truncated file and dims inconsistent with the size", ["models/stories260K.bin"], async (bytes) => {
  await rejects(
    () => checkpointOf(bytes.subarray(0, 1000), "s.bin"),
    FormatError,
    /^s\.bin: not a GGUF or bitllama .* size 1000 does not match the header \(dim 64, hidden 172, layers 5, vocab 512, seq 512\): expected 1056540 bytes/,
  );
  await rejects(() => checkpointOf(patched(bytes, 4, 999), "s.bin"), FormatError, /hidden 999/);
  await rejects(() => checkpointOf(new Uint8Array(10), "s.bin"), FormatError, /truncated: 10 bytes/);
});

withData(
  test,
  "loading: missing files, a tokenizer of another vocabulary, bad options",
  ["models/stories260K.bin", "models/llama2-tokenizer.bin", "models/bitllama-3M.bin"],
  async () => {
    await rejects(() => loadBitNet("/nonexistent/model.bin"), BitNetError, /cannot read \/nonexistent\/model\.bin/);
    await rejects(
      () => loadBitNet(dataPath("models/stories260K.bin"), { tokenizer: dataPath("models/llama2-tokenizer.bin") }),
      FormatError,
      /llama2-tokenizer\.bin: has \d+ bytes after 512 tokens/,
    );
    await rejects(() => loadBitNet(dataPath("models/stories260K.bin"), { simd: "fast" as never }), OptionError, /option simd: expected "auto", "relaxed" or "strict"/);
    await rejects(
      () => loadBitNet(dataPath("models/bitllama-3M.bin"), { bitOrder: "middle" as never }),
      OptionError,
      /option bitOrder: expected "msb" or "lsb", got the string "middle"/,
    );
  },
);

withData(test, "generation options out of range are refused before any work", ["models/bitllama-1M.bin", "models/tok512.bin"], async () => {
  using model = await loadBitNet(dataPath("models/bitllama-1M.bin"), { tokenizer: dataPath("models/tok512.bin") });
  const first = (o: object) => model.generate("Hi", o).next();
  await rejects(() => first({ temperature: -0.5 }), OptionError, /option temperature: expected a finite number >= 0, got -0.5/);
  await rejects(() => first({ temperature: NaN }), OptionError, /option temperature/);
  await rejects(() => first({ topP: 0 }), OptionError, /option topP: expected a number in \(0, 1\], got 0/);
  await rejects(() => first({ topP: 1.5 }), OptionError, /option topP/);
  await rejects(() => first({ maxTokens: 0 }), OptionError, /option maxTokens: expected an integer > 0, got 0/);
  await rejects(() => first({ maxTokens: 2.5 }), OptionError, /option maxTokens/);
  await rejects(() => first({ topK: -1 }), OptionError, /option topK/);
  await rejects(() => model.generate("word ".repeat(600)).next(), OptionError, /option prompt: \d+ tokens leave no room in the 512-token context/);
  await rejects(() => model.perplexity([1, 2, 3], { ctx: 0 }), OptionError, /option ctx: expected an integer in 1\.\.512/);
  await rejects(() => model.perplexity([1]), OptionError, /needs at least 2 tokens/);
  await rejects(() => model.logits([1, 512]), OptionError, /option tokens: token id 512 at index 1 is not an integer within the vocabulary 0\.\.511/);
  model.dispose(); // (`using` disposes it again at the end, as it would after a failed assertion: a no-op)
  await rejects(() => model.logits([1]), BitNetError, /model was disposed/);
});

test("NaN or infinity in a BitLinear input row is a NonFiniteError, not a silent wrong answer", async () => {
  const kx = await kernels("strict");
  const linear = await BitLinear.fromInt8(kx, new ActivationQuantizer(kx, 2, 8), 4, 8, true, "t", (p) => Promise.resolve((kx.write(p, new Int8Array(32).fill(1)), 1)));
  const x = new Float32Array(16).fill(1);
  x[11] = NaN;
  await rejects(() => linear.prepare(kx.put(x), 2), NonFiniteError, /1 of 2 rows hold NaN or infinity/);
  x[11] = Infinity;
  await rejects(() => linear.prepare(kx.put(x), 2), NonFiniteError, /1 of 2 rows/);
  const wide = new Int8Array(8 * 64).fill(-1);
  wide[3 * 64 + 17] = 2; // inside the 16-column SIMD path of a whole row group
  wide[7 * 64 + 63] = -128;
  await rejects(
    () => BitLinear.fromInt8(kx, new ActivationQuantizer(kx, 1, 64), 8, 64, false, "w.bin: wk", (p) => Promise.resolve((kx.write(p, wide), 1))),
    FormatError,
    /^w\.bin: wk: 2 weights are not -1, 0 or \+1/,
  );
  await rejects(
    () => BitLinear.fromInt8(kx, new ActivationQuantizer(kx, 1, 4), 2, 2, false, "w.bin: wq", (p) => Promise.resolve((kx.write(p, Int8Array.from([0, 1, 2, -1])), 1))),
    FormatError,
    /^w\.bin: wq: 1 weights are not -1, 0 or \+1/,
  );
});

withData(test, "a corrupt ternary code (pattern 10) is reported with the tensor's name", ["models/bitllama-1M.bin"], async (bytes) => {
  const ckpt = await checkpointOf(bytes, "b.bin");
  const q = ckpt.layers[0].q;
  const corrupt = bytes.slice();
  corrupt[q.data.offset] = 0b10_00_00_00;
  await rejects(() => loadBitNet(corrupt, { tokenizer: "none" }), FormatError, /wq\[0\]: 1 SM2 codes use the unassigned 2-bit pattern 10/);
});

test.run();
