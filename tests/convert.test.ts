// GGUF models: every conversion of the real models loads back to the same text and
// logits (equal up to the storage precision of the format's scales).
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { checkpointToGguf, type GgufTarget } from "../tools/convert.ts";
import { FormatError, OptionError, ShapeError } from "../core/errors.ts";
import { GgmlType, GgufType, readGguf } from "../formats/gguf.ts";
import { writeGguf } from "../formats/gguf-writer.ts";
import { loadBitNet } from "../model/load.ts";
import { synthesizeBitNet } from "../tools/synth.ts";
import { Llama2cTokenizer } from "../text/tokenizer/llama2c.ts";
import { loadKernels } from "../runtime/kernels.ts";
import { checkpointOf, maxRelativeError, modelOf, rejects, withData } from "./helpers.ts";

const test = suite("convert");
const kx = await loadKernels({ simd: "strict" });
const TOKENS = [1, 403, 407, 261, 378, 432, 383, 286, 261, 376, 298];

async function convert(model: Uint8Array, name: string, tok: Uint8Array, to: GgufTarget): Promise<Uint8Array> {
  const ckpt = await checkpointOf(model, name);
  return checkpointToGguf(kx, ckpt, Llama2cTokenizer.fromBin(tok, ckpt.config.vocabSize), to);
}

withData(
  test,
  "bitllama-3M as I2_S, TQ1_0 and TQ2_0 GGUF: same greedy text; logits equal up to the f16 block scales",
  ["models/bitllama-3M.bin", "models/tok512.bin"],
  async (model, tok) => {
    const original = await loadBitNet(model, { tokenizer: tok, simd: "strict" });
    const wantLogits = original.logits(TOKENS);
    // The TQ formats store each scale as f16: the reference is the original with rounded scales.
    const ckpt = await checkpointOf(model, "bitllama-3M.bin");
    const f16 = (s: number) => kx.k.f16ToF32(kx.k.f32ToF16(s));
    for (const layer of ckpt.layers) {
      for (const t of [layer.q, layer.k, layer.v, layer.o, layer.gate, layer.up, layer.down]) if (t.encoding === "SM2") t.scale = f16(t.scale!);
    }
    const f16ScaleLogits = (await modelOf(kx, ckpt)).logits(TOKENS);
    assert.not.equal(f16ScaleLogits, wantLogits, "rounding the scales changes the logits a little");
    f16ScaleLogits.forEach((row, i) => assert.ok(maxRelativeError(row, wantLogits[i]) < 3e-2));
    let wantText = "";
    for await (const p of original.generate("Once upon a time", { temperature: 0, maxTokens: 60 })) wantText += p.text;
    for (const to of ["gguf-i2s", "gguf-tq1", "gguf-tq2"] as const) {
      const gguf = await convert(model, "bitllama-3M.bin", tok, to);
      const loaded = await loadBitNet(gguf, { simd: "strict" }); // the vocabulary comes from the file
      const f32Eps = (c: typeof original.config) => ({ ...c, normEps: Math.fround(c.normEps) }); // stored as FLOAT32
      assert.equal(f32Eps(loaded.config), f32Eps(original.config), to);
      let text = "";
      for await (const p of loaded.generate("Once upon a time", { temperature: 0, maxTokens: 60 })) text += p.text;
      assert.is(text, wantText, to);
      const logits = loaded.logits(TOKENS);
      if (to === "gguf-i2s") assert.equal(logits, wantLogits, "I2_S keeps the f32 scale: identical logits");
      else assert.equal(logits, f16ScaleLogits, `${to}: identical to the original with its scales rounded to f16`);
      // GGUF to GGUF goes through the same decoders.
      const again = await checkpointToGguf(kx, await checkpointOf(gguf, to), null, "gguf-i2s");
      assert.ok(readGguf(again, "again").tensors.some((t) => t.type === GgmlType.I2_S));
    }
  },
);

withData(test, "stories260K as an F32 llama GGUF: identical logits and llama2.c's greedy text", [
  "models/stories260K.bin",
  "models/tok512.bin",
  "fixtures/greedy257_stories260K.txt",
], async (model, tok, fixture) => {
  const gguf = await convert(model, "stories260K.bin", tok, "gguf-f32");
  const g = readGguf(gguf, "s.gguf");
  assert.is(g.metadata.get("general.architecture")?.value, "llama");
  assert.is(g.tensors.length, 2 + 5 * 9);
  const original = await loadBitNet(model, { tokenizer: tok, simd: "strict" });
  const loaded = await loadBitNet(gguf, { simd: "strict" });
  assert.equal(loaded.logits(TOKENS), original.logits(TOKENS));
  let text = "";
  for await (const p of loaded.generate("", { temperature: 0, maxTokens: 257 })) text += p.text;
  assert.is(text.trim(), new TextDecoder().decode(fixture).trim());
  for (const s of ["Hello world", "naïve 🙂 text", ""]) assert.equal(loaded.tokenizer!.encode(s), original.tokenizer!.encode(s), s);
});

withData(test, "conversions that cannot hold are refused with the reason", ["models/stories260K.bin", "models/bitllama-1M.bin", "models/tok512.bin"], async (s260, b1m, tok) => {
  await rejects(convert(s260, "s.bin", tok, "gguf-tq2"), OptionError, /blk\.0\.attn_q\.weight is fp32; gguf-tq2 stores ternary weights/);
  await rejects(convert(b1m, "b.bin", tok, "gguf-f32"), OptionError, /bitllama models are ternary: write gguf-i2s, gguf-tq1 or gguf-tq2/);
  await rejects(convert(b1m, "b.bin", tok, "gguf-tq1"), ShapeError, /rows of 128 values; gguf-tq1 needs a multiple of 256/);
  await rejects(convert(b1m, "b.bin", tok, "gguf-x" as never), OptionError, /option to: expected one of/);
  const { checkpoint } = await synthesizeBitNet({ dim: 128, hiddenDim: 128, nLayers: 1, nHeads: 1, nKvHeads: 1, vocabSize: 16, seqLen: 8 });
  await rejects(checkpointToGguf(kx, checkpoint, null, "gguf-f32"), OptionError, /bitnet-b1\.58 models are ternary: write gguf-i2s, gguf-tq1 or gguf-tq2/);
});

withData(
  test,
  "GGUF models: missing tensors, wrong shapes, unknown architectures and mixed block scales are FormatErrors",
  ["models/bitllama-3M.bin", "models/tok512.bin"],
  async (model, tok) => {
    const gguf = await convert(model, "3M", tok, "gguf-tq2");
    const g = readGguf(gguf, "t");
    const rebuild = (edit: (meta: Map<string, unknown>, tensors: { name: string; dims: number[]; type: number; data: Uint8Array }[]) => void) => {
      const meta = new Map([...g.metadata].map(([k, v]) => [k, v]));
      const tensors = g.tensors.map((t) => ({ name: t.name, dims: [...t.dims], type: t.type, data: gguf.slice(t.offset, t.offset + t.bytes) }));
      edit(meta as Map<string, unknown>, tensors);
      return writeGguf([...meta] as never, tensors);
    };
    const fails = (bytes: Uint8Array, pattern: RegExp) => rejects(loadBitNet(bytes, { simd: "strict" }), FormatError, pattern);
    await fails(rebuild((_, t) => t.splice(t.findIndex((x) => x.name === "blk.3.ffn_up.weight"), 1)), /tensor blk\.3\.ffn_up\.weight is missing/);
    await fails(
      rebuild((m) => m.set("general.architecture", { type: GgufType.STRING, value: "mamba" })),
      /architecture "mamba" is not supported here \(supported: llama, bitllama, bitnet, bitnet-b1\.58\)/,
    );
    await fails(
      rebuild((m) => m.set("bitllama.feed_forward_length", { type: GgufType.UINT32, value: 512 })),
      /tensor blk\.0\.ffn_gate\.weight has shape \[256, 256\], the config implies \[256, 512\]/,
    );
    await fails(
      rebuild((_, t) => {
        const q = t.find((x) => x.name === "blk.0.attn_q.weight")!;
        q.data[66 + 64] ^= 0x01; // the second block's f16 scale, one unit off
      }),
      /blk\.0\.attn_q\.weight: block scales differ \(2\.1171875 and 2\.119140625\): only one scale per tensor is supported/,
    );
    await fails(
      rebuild((m) => m.set("tokenizer.ggml.model", { type: GgufType.STRING, value: "bert" })),
      /tokenizer\.ggml\.model "bert" is not supported here \(supported: llama, gpt2\)/,
    );
    await fails(rebuild((m) => m.set("tokenizer.ggml.model", { type: GgufType.STRING, value: "gpt2" })), /metadata tokenizer\.ggml\.merges is missing/);
  },
);

test.run();
