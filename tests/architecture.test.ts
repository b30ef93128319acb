// The BitNet b1.58 2B4T architecture against a plain float64 forward pass written here,
// independently of the kernels, as transformers' modeling_bitnet.py describes it:
// RMSNorm -> q, k, v BitLinear -> RoPE on split halves (theta 500000) -> GQA attention ->
// attn_sub_norm -> o -> residual; RMSNorm -> gate, up -> relu(gate)^2 * up -> ffn_sub_norm ->
// down -> residual; final norm; LM head tied to the embedding. Every BitLinear quantizes
// its input per token to int8 with absmax.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { synthesizeBitNet, type SynthWeights } from "../model/synth.ts";
import { loadKernels } from "../runtime/kernels.ts";
import { LEVELS, maxRelativeError, modelOf } from "./helpers.ts";

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

function ropeHalves(v: number[], heads: number, hs: number, pos: number): void {
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < hs / 2; i++) {
      const angle = pos * Math.pow(500000, (-2 * i) / hs);
      const a = v[h * hs + i], b = v[h * hs + i + hs / 2];
      v[h * hs + i] = a * Math.cos(angle) - b * Math.sin(angle);
      v[h * hs + i + hs / 2] = a * Math.sin(angle) + b * Math.cos(angle);
    }
  }
}

/** Logits at every position, float64 throughout. */
function referenceLogits(wts: SynthWeights, tokens: number[]): number[][] {
  const { dim, nHeads, nKvHeads, vocabSize } = SHAPE, hs = dim / nHeads, group = nHeads / nKvHeads;
  const keys: number[][][] = wts.layers.map(() => []), values: number[][][] = wts.layers.map(() => []);
  return tokens.map((token, pos) => {
    let x = Array.from(wts.embedding.subarray(token * dim, (token + 1) * dim));
    wts.layers.forEach((L, l) => {
      const h = rmsNorm(x, L.attnNorm);
      const q = bitLinear(h, L.linears.q), k = bitLinear(h, L.linears.k), v = bitLinear(h, L.linears.v);
      ropeHalves(q, nHeads, hs, pos);
      ropeHalves(k, nKvHeads, hs, pos);
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
      const o = bitLinear(rmsNorm(att, L.attnSubNorm), L.linears.o);
      x = x.map((xv, i) => xv + o[i]);
      const f = rmsNorm(x, L.ffnNorm);
      const gate = bitLinear(f, L.linears.gate), up = bitLinear(f, L.linears.up);
      const act = gate.map((gv, i) => Math.max(gv, 0) ** 2 * up[i]);
      const down = bitLinear(rmsNorm(act, L.ffnSubNorm), L.linears.down);
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
  test(`2B4T architecture (${level} build): logits equal a float64 reference forward pass`, async () => {
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

test.run();
