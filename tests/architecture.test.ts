// The BitNet b1.58 2B4T architecture against a plain float64 forward pass written here,
// independently of the kernels, as transformers' modeling_bitnet.py describes it:
// RMSNorm -> q, k, v BitLinear -> RoPE on split halves (theta 500000) -> GQA attention ->
// attn_sub_norm -> o -> residual; RMSNorm -> gate, up -> relu(gate)^2 * up -> ffn_sub_norm ->
// down -> residual; final norm; LM head tied to the embedding. Every BitLinear quantizes
// its input per token to int8 with absmax.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { checkpointToGguf, checkpointToHf } from "../tools/convert.ts";
import { OptionError, ShapeError } from "../core/errors.ts";
import { GgmlType, readGguf } from "../formats/gguf.ts";
import { writeGguf } from "../formats/gguf-writer.ts";
import type { Checkpoint } from "../formats/checkpoint.ts";
import { readHfFolder } from "../model/load.ts";
import { synthesizeBitNet, type SynthWeights } from "../tools/synth.ts";
import { Transformer } from "../model/transformer.ts";
import { decodeTernary } from "../quant/weights.ts";
import { loadKernels } from "../runtime/kernels.ts";
import { checkpointOf, LEVELS, levelTools, maxRelativeError, modelOf, needs } from "./helpers.ts";

const test = suite("architecture");
const SHAPE = { dim: 256, hiddenDim: 384, nLayers: 2, nHeads: 4, nKvHeads: 2, vocabSize: 300, seqLen: 64 };

function rmsNorm(x: number[], w: Float32Array, eps = 1e-5): number[] {
  const ms = x.reduce((a, v) => a + v * v, 0) / x.length;
  return x.map((v, i) => (v / Math.sqrt(ms + eps)) * w[i]);
}

function bitLinear(x: number[], { rows, cols, w, scale }: { rows: number; cols: number; w: Int8Array; scale: number }): number[] {
  const max = x.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
  const q = x.map((v) => (max > 0 ? Math.max(-128, Math.min(127, roundHalfEven((v * 127) / max))) : 0));
  return Array.from({ length: rows }, (_, r) => {
    let acc = 0;
    for (let c = 0; c < cols; c++) acc += w[r * cols + c] * q[c];
    return (acc * scale * max) / 127;
  });
}

function roundHalfEven(v: number): number {
  const r = Math.round(v);
  return Math.abs(v % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** RoPE rotating pairs (i, i + hs/2) (NEOX, BitNet) or (2i, 2i + 1) (interleaved, llama). */
function rope(v: number[], heads: number, hs: number, pos: number, neox: boolean): void {
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < hs / 2; i++) {
      const angle = pos * Math.pow(500000, (-2 * i) / hs);
      const [ia, ib] = neox ? [h * hs + i, h * hs + i + hs / 2] : [h * hs + 2 * i, h * hs + 2 * i + 1];
      const a = v[ia], b = v[ib];
      v[ia] = a * Math.cos(angle) - b * Math.sin(angle);
      v[ib] = a * Math.sin(angle) + b * Math.cos(angle);
    }
  }
}

/** Logits at every position, float64 throughout: BitNet b1.58, or llama's architecture over the same BitLinear layers. */
function referenceLogits(
  wts: SynthWeights,
  tokens: number[],
  shape: { dim: number; nHeads: number; nKvHeads: number; vocabSize: number } = SHAPE,
  arch = "bitnet-b1.58",
): number[][] {
  const { dim, nHeads, nKvHeads, vocabSize } = shape, hs = dim / nHeads, group = nHeads / nKvHeads, bitnet = arch === "bitnet-b1.58";
  const subNorm = (x: number[], w?: Float32Array) => (bitnet ? rmsNorm(x, w!) : x);
  const silu = (v: number) => v / (1 + Math.exp(-v));
  const keys: number[][][] = wts.layers.map(() => []), values: number[][][] = wts.layers.map(() => []);
  return tokens.map((token, pos) => {
    let x = Array.from(wts.embedding.subarray(token * dim, (token + 1) * dim));
    wts.layers.forEach((L, l) => {
      const h = rmsNorm(x, L.attnNorm);
      const q = bitLinear(h, L.linears.q), k = bitLinear(h, L.linears.k), v = bitLinear(h, L.linears.v);
      rope(q, nHeads, hs, pos, bitnet);
      rope(k, nKvHeads, hs, pos, bitnet);
      keys[l].push(k);
      values[l].push(v);
      const att = new Array(dim).fill(0);
      for (let head = 0; head < nHeads; head++) {
        const g = Math.floor(head / group) * hs;
        const scores = keys[l].map((kk) => {
          let d = 0;
          for (let i = 0; i < hs; i++) d += q[head * hs + i] * kk[g + i];
          return d / Math.sqrt(hs);
        });
        const m = Math.max(...scores), e = scores.map((s) => Math.exp(s - m)), z = e.reduce((a, b) => a + b, 0);
        values[l].forEach((vv, p) => {
          for (let i = 0; i < hs; i++) att[head * hs + i] += (e[p] / z) * vv[g + i];
        });
      }
      const o = bitLinear(subNorm(att, L.attnSubNorm), L.linears.o);
      x = x.map((xv, i) => xv + o[i]);
      const f = rmsNorm(x, L.ffnNorm);
      const gate = bitLinear(f, L.linears.gate), up = bitLinear(f, L.linears.up);
      const act = gate.map((gv, i) => (bitnet ? Math.max(gv, 0) ** 2 : silu(gv)) * up[i]);
      const down = bitLinear(subNorm(act, L.ffnSubNorm), L.linears.down);
      x = x.map((xv, i) => xv + down[i]);
    });
    const xn = rmsNorm(x, wts.finalNorm);
    return Array.from({ length: vocabSize }, (_, t) => {
      let d = 0;
      for (let i = 0; i < dim; i++) d += wts.embedding[t * dim + i] * xn[i];
      return d;
    });
  });
}

for (const level of LEVELS) {
  needs(test, `2B4T architecture (${level} build): logits equal a float64 reference forward pass`, { tools: levelTools(level) }, async () => {
    const kx = await loadKernels({ simd: level });
    const { checkpoint, weights } = await synthesizeBitNet(SHAPE, { seed: 7 });
    assert.is(checkpoint.config.rope, "neox");
    assert.is(checkpoint.config.activation, "relu2");
    const model = await modelOf(kx, checkpoint);
    const tokens = [1, 17, 200, 5, 299, 42, 42, 7, 150, 3];
    const got = model.logits(tokens), want = referenceLogits(weights(), tokens);
    let worst = 0;
    got.forEach((row, i) => {
      const err = maxRelativeError(row, want[i]);
      assert.ok(err < 1e-3, `position ${i}: relative error ${err}`);
      worst = Math.max(worst, err);
    });
    assert.ok(worst > 0, "f32 kernels against float64: some rounding difference is expected");
    // The decode path (one token at a time) agrees with the batched prefill.
    const step = model.logits(tokens.slice(0, 5));
    assert.equal(model.step(tokens[5], 5), got[5]);
    assert.equal(step, got.slice(0, 5));
  });
}

// TQ1_0 / TQ2_0 take rows of 256: a shape where every linear's input width is a multiple.
const TQ_SHAPE = { dim: 256, hiddenDim: 512, nLayers: 2, nHeads: 2, nKvHeads: 1, vocabSize: 300, seqLen: 32 };

test("a tiny 2B4T model in all five forms (HF packed, HF bf16, I2_S, TQ1_0, TQ2_0): the same codes, scales up to their storage precision, the reference's logits", async () => {
  const kx = await loadKernels({ simd: "strict" });
  const { checkpoint, weights } = await synthesizeBitNet(TQ_SHAPE, { seed: 12 });
  const tokens = [1, 250, 17, 17, 299, 0, 64];
  const want = (await modelOf(kx, checkpoint)).logits(tokens);
  // Against float64: an int8 activation that rounds the other way in f32 moves a logit by < 1%.
  const reference = referenceLogits(weights(), tokens, TQ_SHAPE), errors = want.map((row, i) => maxRelativeError(row, reference[i]));
  assert.ok(errors.every((e) => e < 1e-2) && errors.filter((e) => e < 1e-5).length >= tokens.length - 1, `errors ${errors}`);

  const folder = async (target: "hf" | "hf-bf16") => {
    const { configJson, weights: st } = await checkpointToHf(kx, checkpoint, target);
    const dir = mkdtempSync(`${tmpdir()}/five-forms-`);
    writeFileSync(`${dir}/config.json`, configJson);
    writeFileSync(`${dir}/model.safetensors`, st);
    return dir;
  };
  const gguf = (target: "gguf-i2s" | "gguf-tq1" | "gguf-tq2") => checkpointToGguf(kx, checkpoint, null, target);
  const f16 = (v: number) => kx.k.f16ToF32(kx.k.f32ToF16(v));
  const bf16 = (v: number) =>
    new Float32Array(
      Uint32Array.of(((new Uint32Array(Float32Array.of(v).buffer)[0] + 0x7fff + ((new Uint32Array(Float32Array.of(v).buffer)[0] >>> 16) & 1)) >>> 16) << 16).buffer,
    )[0];
  // What absmean gives back from codes * scale / p stored in bf16 (assembly/ternarize.ts, in float64 here).
  const fromMasters = (codes: Int8Array, scale: number) => {
    const nonZero = codes.filter((c) => c !== 0).length, v = bf16(Math.fround((scale * codes.length) / nonZero));
    const s = Math.fround(1 / Math.max(Math.fround((v * nonZero) / codes.length), Math.fround(1e-5)));
    return Math.fround(1 / s);
  };
  const forms: [string, () => Promise<Checkpoint>, (codes: Int8Array, scale: number) => number, number][] = [
    ["HF packed", async () => readHfFolder(await folder("hf")), (_, s) => 1 / Math.fround(1 / s), 1e-5],
    ["HF bf16 masters", async () => readHfFolder(await folder("hf-bf16")), fromMasters, Infinity],
    ["I2_S GGUF", async () => checkpointOf(await gguf("gguf-i2s"), "i2s"), (_, s) => s, 0],
    ["TQ1_0 GGUF", async () => checkpointOf(await gguf("gguf-tq1"), "tq1"), (_, s) => f16(s), Infinity],
    ["TQ2_0 GGUF", async () => checkpointOf(await gguf("gguf-tq2"), "tq2"), (_, s) => f16(s), Infinity],
  ];
  const plain = weights();
  for (const [name, open, storedScale, logitTolerance] of forms) {
    const ckpt = await open();
    assert.equal([ckpt.config.rope, ckpt.config.activation, ckpt.config.arch], ["neox", "relu2", "bitnet-b1.58"], name);
    for (const [l, layer] of ckpt.layers.entries()) {
      for (const key of ["q", "k", "v", "o", "gate", "up", "down"] as const) {
        const t = layer[key], { w, scale } = plain.layers[l].linears[key];
        if (t.encoding === "f32") throw new Error("ternary expected");
        const mark = kx.arena.mark(), int8 = kx.allocBytes(w.length);
        const got = await decodeTernary(kx, ckpt, t, int8);
        assert.equal(kx.i8(int8, w.length), w, `${name}: layer ${l} ${key} codes`);
        assert.is(got, storedScale(w, scale), `${name}: layer ${l} ${key} scale`);
        kx.arena.release(mark);
      }
    }
    // Where the scale is stored exactly (or as its f32 reciprocal), the logits agree too.
    if (logitTolerance !== Infinity) {
      (await modelOf(kx, ckpt)).logits(tokens).forEach((row, i) => assert.ok(maxRelativeError(row, want[i]) <= logitTolerance, `${name}, position ${i}`));
    }
    await ckpt.source.close();
  }
  const i2s = readGguf(await gguf("gguf-i2s"), "g").metadata, tq2 = readGguf(await gguf("gguf-tq2"), "g").metadata;
  assert.is(i2s.get("general.architecture")?.value, "bitnet-b1.58", "bitnet.cpp's name for its I2_S files");
  assert.is(tq2.get("general.architecture")?.value, "bitnet", "llama.cpp's name");
  assert.is(tq2.get("bitnet.hidden_activation")?.value, "relu2");
});

test("the same ternary shapes under llama's architecture (as llama.cpp reads TQ1_0 / TQ2_0 in llama models): no sub-norms, SwiGLU, interleaved RoPE; the reference's logits from TQ2_0 and TQ1_0 GGUF", async () => {
  const kx = await loadKernels({ simd: "strict" });
  const { checkpoint, weights } = await synthesizeBitNet(TQ_SHAPE, { seed: 14, arch: "llama" });
  assert.equal([checkpoint.config.rope, checkpoint.config.activation, checkpoint.layers[0].attnSubNorm], ["interleaved", "silu", undefined]);
  const tokens = [1, 250, 17, 17, 299, 0, 64];
  // Against float64: an int8 activation that rounds the other way in f32 moves a logit by < 1%.
  const close = (got: ArrayLike<number>[], reference: ArrayLike<number>[], what: string) => {
    const errors = got.map((row, i) => maxRelativeError(row, reference[i]));
    assert.ok(errors.every((e) => e < 1e-2) && errors.filter((e) => e < 1e-5).length >= tokens.length - 1, `${what}: errors ${errors}`);
  };
  close((await modelOf(kx, checkpoint)).logits(tokens), referenceLogits(weights(), tokens, TQ_SHAPE, "llama"), "synthetic");
  // TQ1_0 / TQ2_0 store each block's scale in f16: the reference with those scales.
  const f16Scales = weights();
  for (const layer of f16Scales.layers) for (const t of Object.values(layer.linears)) t.scale = kx.k.f16ToF32(kx.k.f32ToF16(t.scale));
  const reference = referenceLogits(f16Scales, tokens, TQ_SHAPE, "llama");
  for (const target of ["gguf-tq2", "gguf-tq1"] as const) {
    const bytes = await checkpointToGguf(kx, checkpoint, null, target), g = readGguf(bytes, "g");
    assert.is(g.metadata.get("general.architecture")?.value, "llama", target);
    assert.not.ok(g.tensors.some((t) => t.name.includes("sub_norm")), `${target}: no sub-norm tensors`);
    const ckpt = await checkpointOf(bytes, `${target}.gguf`);
    assert.equal([ckpt.config.arch, ckpt.config.rope, ckpt.config.activation], ["llama", "interleaved", "silu"], target);
    close((await modelOf(kx, ckpt)).logits(tokens), reference, target);
  }
  const refused = await synthesizeBitNet(TQ_SHAPE, { arch: "gpt2" as never }).then(() => null, (e: Error) => e);
  assert.instance(refused, OptionError);
  assert.match(refused!.message, /option arch: expected bitnet-b1.58 or llama, got "gpt2"/);
});

test("GGUF bitnet archs: llama.cpp's bitnet defaults to SiLU; per-tensor .scale / .weight_scale tensors multiply the output", async () => {
  const kx = await loadKernels({ simd: "strict" });
  const { checkpoint } = await synthesizeBitNet(TQ_SHAPE, { seed: 13 });
  const bytes = await checkpointToGguf(kx, checkpoint, null, "gguf-tq2");
  const g = readGguf(bytes, "g");
  const tensors = g.tensors.map((t) => ({ name: t.name, dims: [...t.dims], type: t.type, data: bytes.slice(t.offset, t.offset + t.bytes) }));
  const meta = [...g.metadata].filter(([k]) => k !== "bitnet.hidden_activation");
  assert.is((await checkpointOf(writeGguf(meta, tensors), "silu.gguf")).config.activation, "silu");
  const scale = (name: string, v: number) => ({ name, dims: [1], type: GgmlType.F32, data: new Uint8Array(Float32Array.of(v).buffer) });
  const scaled = await checkpointOf(writeGguf([...g.metadata], [...tensors, scale("blk.0.attn_q.scale", 2), scale("blk.1.ffn_down.weight_scale", 0.5)]), "scaled.gguf");
  const plain = await checkpointOf(bytes, "plain.gguf");
  const scaleOf = async (ckpt: typeof plain, pick: (l: typeof plain.layers[0]) => typeof plain.layers[0]["q"], layer: number) => {
    const t = pick(ckpt.layers[layer]);
    if (t.encoding === "f32" || t.encoding === "absmean") throw new Error("ternary expected");
    const mark = kx.arena.mark();
    try {
      return await decodeTernary(kx, ckpt, t, kx.allocBytes(t.rows * t.cols));
    } finally {
      kx.arena.release(mark);
    }
  };
  assert.is(await scaleOf(scaled, (l) => l.q, 0), 2 * (await scaleOf(plain, (l) => l.q, 0)));
  assert.is(await scaleOf(scaled, (l) => l.down, 1), 0.5 * (await scaleOf(plain, (l) => l.down, 1)));
  assert.is(await scaleOf(scaled, (l) => l.k, 0), await scaleOf(plain, (l) => l.k, 0));
});

test("an int8 LM head stays close to the stored-precision head; bad lmHead and contextLength options are OptionErrors", async () => {
  const kx = await loadKernels({ simd: "strict" });
  const { checkpoint } = await synthesizeBitNet(TQ_SHAPE, { seed: 14 });
  const tokens = [3, 1, 4, 1, 5, 9, 2, 6];
  const stored = (await modelOf(kx, checkpoint)).logits(tokens);
  const int8 = await modelOf(kx, checkpoint, { lmHead: "int8" });
  const got = int8.logits(tokens);
  assert.not.equal(got, stored);
  got.forEach((row, i) => assert.ok(maxRelativeError(row, stored[i]) < 2e-2, `position ${i}: ${maxRelativeError(row, stored[i])}`));
  assert.equal(int8.step(tokens[7], 7), got[7], "decode and prefill share the int8 head's arithmetic");
  const small = await modelOf(kx, checkpoint, { contextLength: 8 });
  assert.is(small.config.seqLen, 8);
  const refused = async (options: object, pattern: RegExp) => {
    const e = await Transformer.load(kx, checkpoint, options).then(() => null, (e) => e);
    assert.ok(e instanceof OptionError && pattern.test(e.message), `${pattern}: ${e}`);
  };
  await refused({ lmHead: "int4" }, /option lmHead: expected "stored" or "int8", got "int4"/);
  await refused({ contextLength: 33 }, /option contextLength: expected an integer in 1\.\.32/);
});

test("a model that cannot fit in 4 GiB of WebAssembly memory is refused before anything is allocated", async () => {
  const kx = await loadKernels({ simd: "strict" });
  // Llama-2-70B's shape as BitNet: ~16 GiB of 2-bit weights.
  const { checkpoint } = await synthesizeBitNet({ dim: 8192, hiddenDim: 28672, nLayers: 80, nHeads: 64, nKvHeads: 8, vocabSize: 32000, seqLen: 4096 });
  const before = kx.memory.buffer.byteLength;
  const e = await Transformer.load(kx, checkpoint).then(() => null, (e) => e);
  assert.ok(e instanceof ShapeError && /needs 1\d\.\d\d GiB of WebAssembly memory .* a wasm32 instance has at most 4 GiB/.test(e.message), String(e));
  assert.is(kx.memory.buffer.byteLength, before, "nothing was allocated");
});

test.run();
