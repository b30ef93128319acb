// Activation variants (BitNet a4.8's int4 absmean, Q-Sparse's top-K): the WASM quantizers
// equal scalar references written here, the presets parse and run on a real ternary model.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { NonFiniteError, OptionError } from "../core/errors.ts";
import { loadBitNet } from "../model/load.ts";
import { ActivationQuantizer, INT8_ABSMAX } from "../quant/activations.ts";
import { SPARSE_KERNEL_MIN_SPARSITY, SparseTernaryLinear } from "../quant/sparse-ternary.ts";
import { BitLinear } from "../quant/bitlinear.ts";
import { parseVariant, PRESETS } from "../quant/variants.ts";
import { deltaRecordBytes } from "../model/kv-cache.ts";
import { loadKernels } from "../runtime/kernels.ts";
import { offset, type Ptr } from "../runtime/ptr.ts";
import { dataPath, LEVELS, levelTools, maxRelativeError, modelOf, needs, rejects, rng, RUNNABLE_LEVELS, testKernels, throwsTyped, withData } from "./helpers.ts";
import { synthesizeBitNet } from "../tools/synth.ts";

const test = suite("variants");

function roundHalfEven(v: number): number {
  const r = Math.round(v);
  return Math.abs(v % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** int4 absmean in f32 steps: beta = mean|x| (summed in order), Q = clip(round(x * (sqrt(7) / beta)), -8, 7). */
function int4Reference(x: Float32Array): { q: number[]; scale: number } {
  const f = Math.fround;
  let sum = 0;
  for (const v of x) sum = f(sum + Math.abs(v));
  const beta = f(sum / x.length), sqrt7 = f(Math.sqrt(7)), inv = beta > 0 ? f(sqrt7 / beta) : 0;
  return { q: Array.from(x, (v) => Math.max(-8, Math.min(7, roundHalfEven(f(v * inv))))), scale: f(beta / sqrt7) };
}

/** Top-K: zero the `zero` entries of smallest |x|, equal magnitudes lower index first. */
function topKReference(x: Float32Array, zero: number): number[] {
  const order = Array.from(x.keys()).sort((a, b) => Math.abs(x[a]) - Math.abs(x[b]) || a - b);
  const out = Array.from(x);
  for (const i of order.slice(0, zero)) out[i] = 0;
  return out;
}

for (const level of LEVELS) {
  needs(test, `int4 absmean quantizer (${level} build) equals the reference: random rows, all zeros, one huge outlier, width 1`, { tools: levelTools(level) }, async () => {
    const kx = await testKernels(level);
    const next = rng(5);
    const rows = [
      Float32Array.from({ length: 100 }, () => next() * 4 - 2),
      new Float32Array(37),
      Float32Array.from({ length: 64 }, (_, i) => (i === 9 ? 1e6 : (i % 5) - 2)),
      Float32Array.of(-0.3),
    ];
    for (const x of rows) {
      const mark = kx.arena.mark(), n = x.length, pad = Math.ceil(n / 64) * 64;
      const q = kx.allocBytes(pad), scales = kx.allocF32(1), sums = kx.allocF32(1);
      for (const fn of [kx.k.quantizeAbsmeanI4, kx.k.quantizeAbsmeanI4Scalar]) {
        assert.is(fn(kx.put(x), n, 1, q, pad, scales, sums), 0);
        const want = int4Reference(x);
        assert.equal(Array.from(kx.i8(q, n)), want.q, `n = ${n}`);
        assert.is(kx.f32(scales, 1)[0], want.scale);
        assert.is(kx.i32(sums, 1)[0], want.q.reduce((a, b) => a + b, 0));
        assert.ok(kx.i8(q, pad).subarray(n).every((v) => v === 0), "padding is zero");
      }
      kx.arena.release(mark);
    }
    const quantizer = new ActivationQuantizer(kx, 2, 8, { format: "int4", sparsity: 0 });
    const bad = Float32Array.of(1, 2, 3, 4, 5, 6, 7, 8, 1, NaN, 3, 4, 5, 6, 7, 8);
    throwsTyped(() => quantizer.quantize(kx.put(bad), 8, 2, false), NonFiniteError, /1 of 2 rows/);
  });
}

test("top-K keeps exactly n - floor(S n) entries per row, zeroing equal magnitudes lower index first", async () => {
  const kx = await loadKernels({ simd: "strict" });
  const next = rng(9);
  const ties = Float32Array.of(0.5, -0.5, 0.25, 0.5, -0.25, 1, 0.5, -2, 0.25, 0);
  const cases: [Float32Array, number][] = [
    [ties, 0],
    [ties, 1],
    [ties, 3],
    [ties, 4],
    [ties, 5],
    [ties, 9],
    [ties, 10],
    [Float32Array.from({ length: 6912 }, () => next() * 2 - 1), Math.floor(0.5 * 6912)],
    [Float32Array.from({ length: 300 }, () => Math.round(next() * 6) - 3), 150], // many ties
    [Float32Array.of(3), 0],
  ];
  for (const [x, zero] of cases) {
    const mark = kx.arena.mark(), out = kx.allocF32(x.length);
    kx.k.sparsifyTopK(kx.put(x), x.length, 1, zero, out);
    assert.equal(Array.from(kx.f32(out, x.length)), topKReference(x, zero), `n ${x.length}, zero ${zero}`);
    kx.arena.release(mark);
  }
  // Two rows at once: each row is its own selection.
  const two = Float32Array.of(1, 2, 3, 4, -4, -3, -2, -1), out = kx.allocF32(8);
  kx.k.sparsifyTopK(kx.put(two), 4, 2, 2, out);
  assert.equal(Array.from(kx.f32(out, 8)), [0, 0, 3, 4, -4, -3, 0, 0]);
});

test("Block Q-Sparse: top-K within each block of M equals the row rule on each block; the L2 rescale keeps each row's norm", async () => {
  const kx = await loadKernels({ simd: "strict" });
  const next = rng(10), cols = 128, tokens = 3;
  const x = Float32Array.from({ length: tokens * cols }, () => Math.round((next() * 2 - 1) * 8) / 4); // many ties
  x.fill(0, cols, 2 * cols); // an all-zero row stays zero under the rescale
  for (const [sparsity, block, l2] of [[0.5, 32, false], [0.75, 16, true], [0.5, cols, true], [0.25, 64, false]] as [number, number, boolean][]) {
    const quantizer = new ActivationQuantizer(kx, tokens, cols, { format: "int8", sparsity, sparsityBlock: block, rescaleL2: l2 });
    const input = quantizer.quantize(kx.put(x), cols, tokens, false);
    for (let t = 0; t < tokens; t++) {
      const row = x.subarray(t * cols, (t + 1) * cols), kept: number[] = [];
      for (let b = 0; b < cols; b += block) kept.push(...topKReference(row.subarray(b, b + block), Math.floor(sparsity * block)));
      const norm = (v: ArrayLike<number>) => Math.sqrt(Array.from(v).reduce((a, e) => a + e * e, 0));
      const factor = l2 && norm(kept) > 0 ? norm(row) / norm(kept) : 1;
      const want = kept.map((v) => v * factor), m = want.reduce((a, v) => Math.max(a, Math.abs(v)), 0);
      const q = Array.from(kx.i8(offset(input.q, t * quantizer.stride(cols)), cols));
      // Zeros where the block rule zeroes, and the kept values' int8 codes within one step of the reference's.
      q.forEach((c, i) => {
        if (kept[i] === 0) assert.is(c, 0, `S ${sparsity} M ${block} row ${t} entry ${i}`);
        else assert.ok(Math.abs(c - (want[i] * 127) / m) <= 0.5 + 1e-3, `S ${sparsity} M ${block} row ${t} entry ${i}: ${c}`);
      });
      assert.ok(Math.abs(kx.f32(input.scales, tokens)[t] - m / 127) <= 1e-6 * Math.max(1, m), `row ${t} scale`);
    }
  }
  const odd = new ActivationQuantizer(kx, 1, 96, { format: "int8", sparsity: 0.5, sparsityBlock: 64 });
  throwsTyped(() => odd.quantize(kx.put(new Float32Array(96)), 96, 1, false), OptionError, /top-K blocks of 64 values do not divide the input width 96/);
});

test("b1.58 Reloaded's input: a LayerNorm without affine, then 128 / absmax clipped to [-128, 127]", async () => {
  const kx = await loadKernels({ simd: "strict" });
  const next = rng(12), cols = 200, tokens = 2, f = Math.fround;
  const x = Float32Array.from({ length: tokens * cols }, () => next() * 6 - 2);
  const quantizer = new ActivationQuantizer(kx, tokens, cols, { format: "int8", sparsity: 0, levels: 128, norm: "layer" });
  const input = quantizer.quantize(kx.put(x), cols, tokens, true); // the LayerNorm replaces the architecture's l2 norm
  for (let t = 0; t < tokens; t++) {
    const row = Array.from(x.subarray(t * cols, (t + 1) * cols)), mean = row.reduce((a, v) => a + v, 0) / cols;
    const variance = row.reduce((a, v) => a + (v - mean) ** 2, 0) / cols, normed = row.map((v) => (v - mean) / Math.sqrt(variance + 1e-5));
    const m = normed.reduce((a, v) => Math.max(a, Math.abs(v)), 0), q = Array.from(kx.i8(offset(input.q, t * quantizer.stride(cols)), cols));
    q.forEach((c, i) => assert.ok(Math.abs(c - Math.max(-128, Math.min(127, (normed[i] * 128) / m))) <= 0.5 + 1e-3, `row ${t} entry ${i}: ${c}`));
    assert.ok(q.includes(127) || q.includes(-128), "the maximum reaches the clip");
    assert.ok(Math.abs(kx.f32(input.scales, tokens)[t] - m / 128) < 1e-6, `row ${t} scale ${kx.f32(input.scales, tokens)[t]} vs ${m / 128}`);
  }
  // The kernel's 128 levels against its 127: the same rounding rule, a different multiplier.
  const row = kx.put(Float32Array.of(-1, 0.5, 0.25, 1)), codes = kx.allocBytes(64), scale = kx.allocF32(1), sum = kx.allocF32(1);
  kx.k.quantizeAbsmaxI8(row, 4, 1, codes, 64, scale, sum, 128);
  assert.equal([Array.from(kx.i8(codes, 4)), kx.f32(scale, 1)[0]], [[-128, 64, 32, 127], f(1 / 128)]);
  kx.k.quantizeAbsmaxI8(row, 4, 1, codes, 64, scale, sum, 127);
  assert.equal([Array.from(kx.i8(codes, 4)), kx.f32(scale, 1)[0]], [[-127, 64, 32, 127], f(1 / 127)]);
});

/** The normalised Sylvester Hadamard matrix of size b (entries ±1/sqrt(b)), built from its definition. */
function hadamardMatrix(b: number): number[][] {
  let h = [[1]];
  while (h.length < b) h = [...h.map((r) => [...r, ...r]), ...h.map((r) => [...r, ...r.map((v) => -v)])];
  return h.map((r) => r.map((v) => v / Math.sqrt(b)));
}

test("the block Walsh-Hadamard transform equals multiplication by the explicit matrix; H H^T = I; W' (H x) = W x", async () => {
  const kx = await testKernels("strict");
  const next = rng(33);
  for (const [n, block] of [[16, 16], [64, 8], [96, 32], [256, 256], [6912, 256]]) {
    const x = Float32Array.from({ length: n }, () => next() * 2 - 1), H = hadamardMatrix(block);
    const mark = kx.arena.mark(), a = kx.put(x), b = kx.put(x);
    kx.k.hadamardBlocks(a, n, 1, block);
    kx.k.hadamardBlocksScalar(b, n, 1, block);
    assert.equal(kx.f32(a, n), kx.f32(b, n), "SIMD and scalar twin agree bit for bit");
    const got = kx.f32(a, n);
    for (let s = 0; s < n; s += block) {
      for (let i = 0; i < block; i++) {
        let want = 0;
        for (let j = 0; j < block; j++) want += H[i][j] * x[s + j];
        assert.ok(Math.abs(got[s + i] - want) < 1e-5, `n ${n} block ${block} entry ${s + i}`);
      }
    }
    kx.arena.release(mark);
  }
  // H H^T = I (float64, from the definition) and the transform applied twice is the identity (H symmetric).
  const H = hadamardMatrix(32);
  H.forEach((r, i) => H.forEach((c, j) => assert.ok(Math.abs(r.reduce((acc, v, k) => acc + v * c[k], 0) - (i === j ? 1 : 0)) < 1e-12)));
  // W' = W H^T rotates each row of W like x: then W' (H x) = W x.
  const rows = 5, cols = 128, W = Float32Array.from({ length: rows * cols }, () => next() * 2 - 1), x = Float32Array.from({ length: cols }, () => next() * 2 - 1);
  const mark = kx.arena.mark(), w = kx.put(W), hx = kx.put(x);
  kx.k.hadamardBlocks(w, cols, rows, 64);
  kx.k.hadamardBlocks(hx, cols, 1, 64);
  const Wr = kx.f32(w, rows * cols), Hx = kx.f32(hx, cols);
  for (let r = 0; r < rows; r++) {
    let rotated = 0, plain = 0;
    for (let c = 0; c < cols; c++) {
      rotated += Wr[r * cols + c] * Hx[c];
      plain += W[r * cols + c] * x[c];
    }
    assert.ok(Math.abs(rotated - plain) < 1e-4, `row ${r}: ${rotated} vs ${plain}`);
  }
  kx.arena.release(mark);
});

/** The packed layout of assembly/kv-quant.ts, written from its description: parts of the head, byte j of each plane holding code j of every part. */
function packHead(codes: number[], bits: number): Uint8Array {
  const n = codes.length;
  if (bits === 8) return Uint8Array.from(codes, (c) => c & 255);
  const out = new Uint8Array((n * bits) / 8);
  if (bits === 4) {
    for (let j = 0; j < n / 2; j++) out[j] = (codes[j] + 8) | ((codes[n / 2 + j] + 8) << 4);
    return out;
  }
  const m = n / 8;
  for (let part = 0; part < 8; part++) {
    for (let j = 0; j < m; j++) {
      const u = codes[part * m + j] + 4;
      out[(part < 4 ? 0 : m) + j] |= (u & 3) << (2 * (part % 4));
      out[2 * m + j] |= (u >> 2) << part;
    }
  }
  return out;
}

test("quantized KV cache: packed codes and scales equal a reference packer; attention over codes = attention over their values, SIMD = scalar", async () => {
  const kx = await testKernels("strict");
  const next = rng(44);
  // Heads of 8 and 24 values unpack in scalar steps, 128 (2B4T) in 16-byte vectors for every width.
  for (const [heads, kvHeads, hs] of [[4, 2, 16], [4, 2, 8], [6, 3, 24], [8, 2, 128]]) {
    const positions = 9, kvDim = kvHeads * hs;
    const keys = Float32Array.from({ length: positions * kvDim }, () => next() * 4 - 2), values = Float32Array.from({ length: positions * kvDim }, () => next() * 4 - 2);
    keys.fill(0, 3 * kvDim, 3 * kvDim + hs); // an all-zero head row
    keys[5 * kvDim + 1] = 9; // an outlier
    for (const bits of [8, 4, 3]) {
      for (const bosBits of [0, 8, 4].filter((b) => b === 0 || b > bits)) {
        const L = (b: number) => 2 ** (b - 1) - 1, bitsAt = (p: number) => (p === 0 && bosBits ? bosBits : bits), mark = kx.arena.mark();
        const rowBytes = (p: number) => (kvDim * bitsAt(p)) / 8, at = (p: number) => (p === 0 ? 0 : rowBytes(0) + ((p - 1) * kvDim * bits) / 8);
        const bytes = at(positions), kc = kx.allocBytes(bytes), ks = kx.allocF32(positions * kvHeads), vc = kx.allocBytes(bytes), vs = kx.allocF32(positions * kvHeads);
        const dequantized = { keys: new Float32Array(keys.length), values: new Float32Array(values.length) };
        for (const [src, codes, scales, deq] of [[keys, kc, ks, dequantized.keys], [values, vc, vs, dequantized.values]] as const) {
          for (let p = 0; p < positions; p++) {
            assert.is(kx.k.quantizeKV(kx.put(src.subarray(p * kvDim, (p + 1) * kvDim)), 1, kvHeads, hs, bitsAt(p), offset(codes, at(p)), offset(scales, p * kvHeads * 4)), 0);
            const packed = kx.u8(offset(codes, at(p)), rowBytes(p)), got = kx.f32(scales, positions * kvHeads);
            for (let h = 0; h < kvHeads; h++) {
              const r = p * kvHeads + h, row = src.subarray(r * hs, (r + 1) * hs), l = L(bitsAt(p)), m = row.reduce((a, v) => Math.max(a, Math.abs(v)), 0);
              assert.is(got[r], Math.fround(m / l));
              const inv = m > 0 ? Math.fround(l / m) : 0, want = Array.from(row, (v) => Math.max(-l, Math.min(l, roundHalfEven(Math.fround(v * inv)))));
              const headBytes = (hs * bitsAt(p)) / 8;
              assert.equal(
                Array.from(packed.subarray(h * headBytes, (h + 1) * headBytes)),
                Array.from(packHead(want, bitsAt(p))),
                `hs ${hs} bits ${bitsAt(p)} position ${p} head ${h}`,
              );
              want.forEach((c, i) => (deq[r * hs + i] = c * got[r]));
            }
          }
        }
        // Attention over the codes = attention over the dequantized values (an f32 cache), closely; SIMD = scalar exactly.
        const q = kx.put(Float32Array.from({ length: 2 * heads * hs }, () => next() * 2 - 1)), n = 2 * heads * hs;
        const out = kx.allocF32(n), outScalar = kx.allocF32(n), ref = kx.allocF32(n), scores = kx.allocF32((heads / kvHeads) * positions);
        kx.k.attentionCodes(out, q, kc, ks, vc, vs, scores, heads, kvHeads, hs, 2, positions - 2, bits, bosBits);
        kx.k.attentionCodesScalar(outScalar, q, kc, ks, vc, vs, scores, heads, kvHeads, hs, 2, positions - 2, bits, bosBits);
        kx.k.attention(ref, q, kx.put(dequantized.keys), kx.put(dequantized.values), scores, heads, kvHeads, hs, 2, positions - 2);
        assert.equal(kx.f32(out, n), kx.f32(outScalar, n));
        assert.ok(maxRelativeError(kx.f32(out, n), kx.f32(ref, n)) < 1e-5, `hs ${hs} bits ${bits} bosBits ${bosBits}`);
        kx.arena.release(mark);
      }
    }
  }
});

/** DeltaLLM's keys and scores, written from the paper's rule: the records, and each query's scores (f64 sums over the approximated keys). */
function deltaReferenceScores(keys: Float32Array, q: Float32Array, positions: number, kvHeads: number, heads: number, hs: number, threshold: number, pos: number, window: number) {
  const f = Math.fround, kvDim = kvHeads * hs, group = heads / kvHeads;
  const approx = new Float32Array(keys.length), records: { n: number; values: number[]; indices: number[] }[] = [];
  for (let h = 0; h < kvHeads; h++) {
    const ref = new Float32Array(hs);
    for (let p = 0; p < positions; p++) {
      const values: number[] = [], indices: number[] = [];
      for (let i = 0; i < hs; i++) {
        const v = keys[p * kvDim + h * hs + i], d = p === 0 ? v : f(v - ref[i]);
        if (p !== 0 && !(Math.abs(d) > threshold)) continue;
        values.push(d);
        indices.push(i);
        ref[i] = p === 0 ? d : f(ref[i] + d);
      }
      records[p * kvHeads + h] = { n: values.length, values, indices };
      approx.set(ref, p * kvDim + h * hs);
    }
  }
  const scores: number[][] = []; // [token * heads + head][position]
  for (let t = 0; t * heads * hs < q.length; t++) {
    const len = pos + t + 1, exactFrom = Math.max(1, len - window);
    for (let head = 0; head < heads; head++) {
      const kvh = Math.floor(head / group), row: number[] = [];
      for (let j = 0; j < len; j++) {
        const from = j === 0 || j >= exactFrom ? keys : approx;
        let d = 0;
        for (let i = 0; i < hs; i++) d += q[(t * heads + head) * hs + i] * from[j * kvDim + kvh * hs + i];
        row.push(d / Math.sqrt(hs));
      }
      scores.push(row);
    }
  }
  return { records, scores };
}

test("DeltaLLM: delta records equal the rule; hybrid attention = attention over the approximated keys, SIMD = scalar; a window over everything is attention bit for bit", async () => {
  const kx = await testKernels("strict");
  const next = rng(77), f = Math.fround;
  for (const [heads, kvHeads, hs, threshold, window] of [[4, 2, 16, 0.3, 2], [8, 2, 128, 0.5, 4], [2, 1, 8, 0, 1], [4, 4, 24, 1.5, 0]]) {
    const positions = 12, kvDim = kvHeads * hs, tokens = 3, pos = positions - tokens, mark = kx.arena.mark();
    // Keys that drift slowly, as trained keys do between neighbouring tokens: most changes fall under the threshold.
    const keys = new Float32Array(positions * kvDim);
    for (let i = 0; i < kvDim; i++) keys[i] = f(next() * 4 - 2);
    for (let p = 1; p < positions; p++) for (let i = 0; i < kvDim; i++) keys[p * kvDim + i] = f(keys[(p - 1) * kvDim + i] + (next() < 0.3 ? next() * 2 - 1 : (next() - 0.5) * 0.2));
    const values = Float32Array.from({ length: positions * kvDim }, () => next() * 2 - 1), q = Float32Array.from({ length: tokens * heads * hs }, () => next() * 2 - 1);
    const recordBytes = kx.k.deltaRecordBytes(hs);
    assert.is(recordBytes, deltaRecordBytes(hs), "the cache's record size is the kernel's");
    const deltas = kx.allocBytes(positions * kvHeads * recordBytes), reference = kx.allocF32(kvDim), kp = kx.put(keys);
    // Encoded in two calls (as two forward blocks), then the reference rebuilt from the records alone.
    const kept = kx.k.deltaEncodeKeys(kp, 5, kvHeads, hs, 0, threshold, deltas, reference) +
      kx.k.deltaEncodeKeys(offset(kp, 5 * kvDim * 4), positions - 5, kvHeads, hs, 5, threshold, deltas, reference);
    const want = deltaReferenceScores(keys, q, positions, kvHeads, heads, hs, threshold, pos, window);
    assert.is(kept, want.records.reduce((a, r) => a + r.n, 0));
    want.records.forEach((r, i) => {
      const at = offset(deltas, i * recordBytes);
      assert.is(kx.i32(at, 1)[0], r.n, `record ${i}`);
      assert.equal(Array.from(kx.f32(offset(at, 4), r.n)), r.values);
      assert.equal(Array.from(kx.u8(offset(at, 4 + 4 * hs), r.n)), r.indices);
    });
    const after = Array.from(kx.f32(reference, kvDim));
    kx.k.deltaReference(deltas, kvHeads, hs, positions, reference);
    assert.equal(Array.from(kx.f32(reference, kvDim)), after, "the reference rebuilt from the records");
    // Scores against a naive softmax over the reference scores.
    const out = kx.allocF32(tokens * heads * hs), outScalar = kx.allocF32(tokens * heads * hs), scores = kx.allocF32((heads / kvHeads) * positions);
    const qp = kx.put(q), vp = kx.put(values);
    const work = kx.k.attentionDelta(out, qp, kp, vp, deltas, scores, heads, kvHeads, hs, tokens, pos, window);
    kx.k.attentionDeltaScalar(outScalar, qp, kp, vp, deltas, scores, heads, kvHeads, hs, tokens, pos, window);
    assert.equal(kx.f32(out, tokens * heads * hs), kx.f32(outScalar, tokens * heads * hs));
    const naive = new Float64Array(tokens * heads * hs);
    want.scores.forEach((row, r) => {
      const m = Math.max(...row), e = row.map((v) => Math.exp(v - m)), z = e.reduce((a, b) => a + b, 0), head = r % heads, kvh = Math.floor(head / (heads / kvHeads));
      e.forEach((p, j) => {
        for (let i = 0; i < hs; i++) naive[r * hs + i] += (p / z) * values[j * kvDim + kvh * hs + i];
      });
    });
    assert.ok(maxRelativeError(kx.f32(out, tokens * heads * hs), naive) < 1e-4, `heads ${heads}/${kvHeads} hs ${hs} threshold ${threshold} window ${window}`);
    // Work: the kept entries of positions before the window (delta_0 whole), and the exact dots, per query head.
    let expected = 0;
    for (let t = 0; t < tokens; t++) {
      const len = pos + t + 1, exactFrom = Math.max(1, len - window);
      for (let h = 0; h < kvHeads; h++) {
        if (exactFrom > 1) { for (let j = 0; j < exactFrom; j++) expected += want.records[j * kvHeads + h].n * (heads / kvHeads); }
        expected += (1 + len - exactFrom) * hs * (heads / kvHeads);
      }
    }
    assert.is(work, expected);
    if (threshold > 0) assert.ok(work < heads * hs * (tokens * (pos + 1) + (tokens * (tokens - 1)) / 2), "fewer than the dense scores' multiply-adds");
    // A window over every position: the exact scores, as attention computes them.
    const full = kx.allocF32(tokens * heads * hs);
    kx.k.attentionDelta(out, qp, kp, vp, deltas, scores, heads, kvHeads, hs, tokens, pos, positions);
    kx.k.attention(full, qp, kp, vp, scores, heads, kvHeads, hs, tokens, pos);
    assert.equal(kx.f32(out, tokens * heads * hs), kx.f32(full, tokens * heads * hs));
    kx.arena.release(mark);
  }
});

withData(
  test,
  "delta=: on bitllama-3M a window over everything is b1.58 bit for bit; theta > 0 skips work; a rewound cache rebuilds its reference",
  ["models/bitllama-3M.bin"],
  async () => {
    const path = dataPath("models/bitllama-3M.bin"), tokens = [1, 403, 407, 261, 378, 432, 383, 286, 261, 376, 298];
    const base = await loadBitNet(path, { simd: "strict" });
    const whole = await loadBitNet(path, { simd: "strict", variant: "delta=0:1:1000" });
    assert.equal(whole.logits(tokens), base.logits(tokens));
    const delta = await loadBitNet(path, { simd: "strict", variant: "delta=0.5:0.1:2" });
    assert.not.equal(delta.logits(tokens), base.logits(tokens));
    const { dense, done } = delta.sparsityCounters.attentionScores;
    assert.ok(done > 0 && done < dense, `the scores took ${done} of ${dense} multiply-adds`);
    assert.equal(base.sparsityCounters.attentionScores, { dense: 0, done: 0 });
    // One token at a time: a cache that went elsewhere from position 4 and comes back gives the same logits.
    const stepAll = (model: typeof delta, seq: number[]) => seq.map((t, p) => model.step(t, p)).at(-1)!;
    const straight = stepAll(delta, tokens.slice(0, 7));
    stepAll(delta, [...tokens.slice(0, 4), 9, 9, 9]);
    for (let p = 4; p < 6; p++) delta.step(tokens[p], p);
    assert.equal(delta.step(tokens[6], 6), straight);
    await rejects(loadBitNet(path, { variant: "delta=1,kv=4" }), OptionError, /delta=: DeltaLLM reads an f32 KV cache .*kv=4/);
    for (const bad of ["delta=", "delta=x", "delta=1:2", "delta=1:0.1:1.5", "delta=-1", "delta=1:0.1:4:8:9"]) {
      throwsTyped(
        () => parseVariant(bad),
        OptionError,
        /expected THRESHOLD\[:GAMMA/,
      );
    }
    assert.equal(parseVariant("delta=1.2").delta, { threshold: 1.2, gamma: 0.1, decodeWindow: 4, maxWindow: Infinity });
  },
);

test("1-bit sign weights: Sign(W - mean W) and beta = mean|W|; the 1-bit kernel equals the integer reference and reads half the ternary bytes", async () => {
  for (const level of RUNNABLE_LEVELS) {
    const kx = await testKernels(level);
    const next = rng(55);
    const w = Float32Array.from({ length: 64 }, () => next() * 2 - 1.2), mean = w.reduce((a, v) => a + v, 0) / w.length;
    const mark = kx.arena.mark(), b = kx.allocBytes(64);
    const beta = kx.k.binarizeSign(kx.put(w), 64, b);
    assert.equal(Array.from(kx.i8(b, 64)), Array.from(w, (v) => (v > Math.fround(mean) ? 1 : -1)));
    // Sign(W - alpha) is -1 where W - alpha <= 0: a weight exactly at the mean gets -1.
    kx.k.binarizeSign(kx.put(Float32Array.of(-1, 0, 1, 0)), 4, b);
    assert.equal(Array.from(kx.i8(b, 4)), [-1, -1, 1, -1]);
    assert.is(beta, Math.fround(w.reduce((a, v) => a + Math.abs(v), 0) / 64));
    for (const [rows, cols, tokens] of [[8, 64, 1], [13, 100, 3], [3, 7, 2], [40, 256, 5]]) {
      const pad = Math.ceil(cols / 64) * 64;
      const W = Int8Array.from({ length: rows * cols }, () => (next() < 0.5 ? -1 : 1));
      const X = new Int8Array(tokens * pad);
      for (let t = 0; t < tokens; t++) for (let c = 0; c < cols; c++) X[t * pad + c] = Math.floor(next() * 255) - 127;
      const sums = Int32Array.from({ length: tokens }, (_, t) => X.subarray(t * pad, (t + 1) * pad).reduce((a, v) => a + v, 0));
      const scales = Float32Array.from({ length: tokens }, () => next());
      const packed = kx.allocBytes(kx.k.signPackedBytes(rows, cols));
      assert.is(kx.k.packSign(kx.put(W), rows, cols, packed), 0);
      const y = kx.allocF32(tokens * rows), ys = kx.allocF32(tokens * rows), x = kx.put(X), xs = kx.put(sums), sc = kx.put(scales);
      kx.k.signGemm(packed, rows, cols, x, xs, sc, tokens, 0.75, y);
      kx.k.signGemmScalar(packed, rows, cols, x, xs, sc, tokens, 0.75, ys);
      assert.equal(kx.f32(y, tokens * rows), kx.f32(ys, tokens * rows), `${level} ${rows}x${cols}`);
      for (let t = 0; t < tokens; t++) {
        for (let r = 0; r < rows; r++) {
          let dot = 0;
          for (let c = 0; c < cols; c++) dot += W[r * cols + c] * X[t * pad + c];
          assert.is(kx.f32(y, tokens * rows)[t * rows + r], Math.fround(dot * Math.fround(0.75 * scales[t])), `${level} ${rows}x${cols} token ${t} row ${r}`);
        }
      }
    }
    const bad = Int8Array.from({ length: 16 }, (_, i) => (i === 5 ? 0 : 1));
    assert.is(kx.k.packSign(kx.put(bad), 2, 8, kx.allocBytes(kx.k.signPackedBytes(2, 8))), 1, "0 is not a sign");
    assert.is(kx.k.signPackedBytes(6912, 2560) * 2, kx.k.ternaryPackedBytes(6912, 2560));
    kx.arena.release(mark);
  }
});

test("FBI-LLM weights: alpha_j sign(W) + beta_j per input column, beta_j = mean, alpha_j = mean |W - beta_j|, sign(0) = 0", async () => {
  const kx = await loadKernels({ simd: "strict" });
  const next = rng(61), f = Math.fround;
  for (const [rows, cols] of [[7, 5], [1, 3], [64, 96]]) {
    const w = Float32Array.from({ length: rows * cols }, () => (next() < 0.2 ? 0 : next() * 4 - 1.5));
    w[0] = 50; // an outlier moves its column's beta and alpha only
    const mark = kx.arena.mark(), ptr = kx.put(w);
    assert.is(kx.k.binarizeFBI(ptr, rows, cols), 0);
    const got = kx.f32(ptr, rows * cols);
    for (let j = 0; j < cols; j++) {
      const column = Array.from({ length: rows }, (_, i) => w[i * cols + j]);
      const beta = f(column.reduce((a, v) => a + v, 0) / rows), alpha = f(column.reduce((a, v) => a + Math.abs(f(v - beta)), 0) / rows);
      column.forEach((v, i) => assert.is(got[i * cols + j], f(Math.sign(v) * alpha + beta), `${rows}x${cols} [${i}, ${j}]`));
    }
    kx.arena.release(mark);
  }
  assert.is(kx.k.binarizeFBI(kx.put(Float32Array.of(1, NaN, 2, 3)), 2, 2), 1, "the NaN's column is reported");
  throwsTyped(() => parseVariant("weights=fbi:channel"), OptionError, /weights="fbi:channel": fbi has its own scales/);
  assert.equal(parseVariant("fbi"), { ...parseVariant("b1.58"), weights: "fbi" });
});

withData(test, "weights=fbi on bitllama-3M and stories260K: f32 projections of FBI's weights, a finite perplexity", [
  "models/bitllama-3M.bin",
  "models/stories260K.bin",
  "text/tinystories-valid-32k.txt",
], async (_, __, text) => {
  const sample = new TextDecoder().decode(text).slice(0, 3000);
  for (const file of ["bitllama-3M.bin", "stories260K.bin"]) {
    const model = await loadBitNet(dataPath(`models/${file}`), { simd: "strict", tokenizer: dataPath("models/tok512.bin"), variant: "fbi" });
    assert.is(model.projectionWeights, "fbi");
    const { perplexity } = await model.perplexity(sample, { ctx: 256 });
    assert.ok(Number.isFinite(perplexity) && perplexity > 1, `${file}: ${perplexity}`);
  }
});

test("per-group weight scales: each group quantized on its own equals the per-tensor quantizer on that group", async () => {
  const kx = await loadKernels({ simd: "strict" });
  const next = rng(66), rows = 5, cols = 96;
  const w = Float32Array.from({ length: rows * cols }, (_, i) => (next() * 2 - 1) * (1 + Math.floor(i / 32)));
  for (const [method, fn] of [[0, kx.k.ternarizeAbsmean], [1, kx.k.ternarizeMedian], [2, kx.k.binarizeSign]] as const) {
    for (const groupCols of [32, 96]) {
      const groups = rows * (cols / groupCols);
      const mark = kx.arena.mark(), codes = kx.allocBytes(rows * cols), scales = kx.allocF32(groups), one = kx.allocBytes(groupCols);
      assert.is(kx.k.quantizeGroups(kx.put(w), rows, cols, groupCols, method, codes, scales), 0);
      for (let g = 0; g < groups; g++) {
        const scale = fn(kx.put(w.subarray(g * groupCols, (g + 1) * groupCols)), groupCols, one);
        assert.is(kx.f32(scales, groups)[g], scale, `method ${method} group ${g} of ${groupCols}`);
        assert.equal(kx.i8(codes, rows * cols).subarray(g * groupCols, (g + 1) * groupCols), kx.i8(one, groupCols));
      }
      const nan = Float32Array.from(w);
      nan[cols + 40] = NaN;
      assert.is(kx.k.quantizeGroups(kx.put(nan), rows, cols, groupCols, method, codes, scales), 1, "the group holding NaN is counted");
      kx.arena.release(mark);
    }
  }
});

test("per-group GEMM (ternary and 1-bit): SIMD = scalar twin (bit for bit) = integer reference, group by group in order", async () => {
  for (const level of RUNNABLE_LEVELS) {
    const kx = await testKernels(level);
    const next = rng(67);
    for (const [rows, cols, groupCols, tokens] of [[5, 96, 32, 3], [8, 64, 64, 1], [13, 100, 100, 2], [40, 256, 128, 5], [3, 7, 7, 2], [9, 192, 32, 1]]) {
      const pad = Math.ceil(cols / 64) * 64, groups = cols / groupCols;
      const X = new Int8Array(tokens * pad);
      for (let t = 0; t < tokens; t++) for (let c = 0; c < cols; c++) X[t * pad + c] = Math.floor(next() * 256) - 128;
      const S = Float32Array.from({ length: rows * groups }, () => next() * 2), xScales = Float32Array.from({ length: tokens }, () => next() / 50);
      for (const weights of ["ternary", "sign"] as const) {
        const W = Int8Array.from({ length: rows * cols }, () => (weights === "sign" ? (next() < 0.5 ? -1 : 1) : Math.floor(next() * 3) - 1));
        const mark = kx.arena.mark();
        const bytes = weights === "sign" ? kx.k.signPackedBytes : kx.k.ternaryPackedBytes, pack = weights === "sign" ? kx.k.packSign : kx.k.packTernary;
        const run = weights === "sign" ? [kx.k.signGemmGrouped, kx.k.signGemmGroupedScalar] : [kx.k.ternaryGemmGrouped, kx.k.ternaryGemmGroupedScalar];
        const packed = kx.allocBytes(bytes(rows, cols));
        assert.is(pack(kx.put(W), rows, cols, packed), 0);
        const x = kx.put(X), sums = kx.allocBytes(tokens * groups * 4), sc = kx.put(S), xs = kx.put(xScales);
        kx.k.sumGroups(x, pad, cols, tokens, groupCols, sums);
        const y = kx.allocF32(tokens * rows), ys = kx.allocF32(tokens * rows);
        run[0](packed, rows, cols, x, sums, xs, tokens, groupCols, sc, y);
        run[1](packed, rows, cols, x, sums, xs, tokens, groupCols, sc, ys);
        const what = `${level} ${weights} ${rows}x${cols} groups of ${groupCols}`;
        assert.equal(kx.f32(y, tokens * rows), kx.f32(ys, tokens * rows), what);
        for (let t = 0; t < tokens; t++) {
          assert.equal(
            Array.from(kx.i32(offset(sums, t * groups * 4), groups)),
            Array.from({ length: groups }, (_, g) => X.subarray(t * pad + g * groupCols, t * pad + (g + 1) * groupCols).reduce((a, v) => a + v, 0)),
          );
          for (let r = 0; r < rows; r++) {
            let out = 0;
            for (let g = 0; g < groups; g++) {
              let dot = 0;
              for (let c = g * groupCols; c < (g + 1) * groupCols; c++) dot += W[r * cols + c] * X[t * pad + c];
              const v = Math.fround(dot * Math.fround(xScales[t] * S[r * groups + g]));
              out = g === 0 ? v : Math.fround(out + v);
            }
            assert.is(kx.f32(y, tokens * rows)[t * rows + r], out, `${what} token ${t} row ${r}`);
          }
        }
        kx.arena.release(mark);
      }
    }
  }
});

test("sparse ternary GEMV over the kept columns equals the integer reference (and the scalar twin)", async () => {
  for (const level of RUNNABLE_LEVELS) {
    const kx = await testKernels(level);
    const next = rng(77);
    for (const [rows, cols, keep] of [[64, 64, 0.5], [100, 300, 0.25], [7, 40, 1], [130, 600, 0.75], [64, 1000, 1]]) {
      const W = Int8Array.from({ length: rows * cols }, () => Math.floor(next() * 3) - 1);
      const X = Int8Array.from({ length: cols }, () => (next() < keep ? (next() < 0.5 ? -128 : 127) : 0)); // extremes: i16 headroom
      const mark = kx.arena.mark(), packed = kx.allocBytes(kx.k.ternaryColumnsBytes(rows, cols));
      assert.is(kx.k.packTernaryColumns(kx.put(W), rows, cols, packed), 0);
      const x = kx.put(X), kept = kx.allocBytes(cols * 4), count = kx.k.nonZeroColumns(x, cols, kept);
      assert.is(count, X.filter((v) => v !== 0).length);
      const y = kx.allocF32(rows), ys = kx.allocF32(rows);
      kx.k.ternaryGemvSparse(packed, rows, cols, x, kept, count, 0.5, 0.25, y);
      kx.k.ternaryGemvSparseScalar(packed, rows, cols, x, kept, count, 0.5, 0.25, ys);
      const want = Array.from({ length: rows }, (_, r) => {
        let acc = 0;
        for (let c = 0; c < cols; c++) acc += W[r * cols + c] * X[c];
        return acc * 0.125;
      });
      assert.equal(Array.from(kx.f32(y, rows)), want, `${level} ${rows}x${cols} keep ${keep}`);
      assert.equal(Array.from(kx.f32(ys, rows)), want);
      kx.arena.release(mark);
    }
  }
});

for (const level of LEVELS) {
  needs(test, `row-group GEMM (${level} build): the listed row groups equal the dense kernel's rows and the scalar twin, the others 0`, { tools: levelTools(level) }, async () => {
    const kx = await testKernels(level);
    const next = rng(31);
    for (const [rows, cols, tokens] of [[64, 128, 1], [30, 200, 3], [6912, 256, 2]]) {
      const mark = kx.arena.mark(), pad = Math.ceil(cols / 64) * 64;
      const W = Int8Array.from({ length: rows * cols }, () => Math.floor(next() * 3) - 1), packed = kx.allocBytes(kx.k.ternaryPackedBytes(rows, cols));
      assert.is(kx.k.packTernary(kx.put(W), rows, cols, packed), 0);
      const X = new Int8Array(tokens * pad);
      for (let t = 0; t < tokens; t++) for (let c = 0; c < cols; c++) X[t * pad + c] = Math.floor(next() * 255) - 127;
      const sums = kx.put(Int32Array.from({ length: tokens }, (_, t) => X.subarray(t * pad, (t + 1) * pad).reduce((a, v) => a + v, 0)));
      const x = kx.put(X), scales = kx.put(Float32Array.from({ length: tokens }, () => next() + 0.5));
      const groups = Array.from({ length: Math.ceil(rows / 4) }, (_, g) => g).filter(() => next() < 0.4), list = kx.put(Int32Array.from(groups));
      const dense = kx.allocF32(tokens * rows), sparse = kx.allocF32(tokens * rows), scalar = kx.allocF32(tokens * rows);
      kx.k.ternaryGemm(packed, rows, cols, x, sums, scales, tokens, 0.7, dense);
      kx.k.ternaryGemmRowGroups(packed, rows, cols, x, sums, scales, tokens, 0.7, list, groups.length, sparse);
      kx.k.ternaryGemmRowGroupsScalar(packed, rows, cols, x, sums, scales, tokens, 0.7, list, groups.length, scalar);
      const want = Array.from(kx.f32(dense, tokens * rows), (v, i) => (groups.includes(Math.floor((i % rows) / 4)) ? v : 0));
      assert.equal(Array.from(kx.f32(sparse, tokens * rows)), want, `${rows}x${cols}, ${tokens} tokens`);
      assert.equal(Array.from(kx.f32(scalar, tokens * rows)), want);
      // The row groups of a gate: any non-zero in any token.
      const gate = new Float32Array(tokens * rows);
      for (const g of groups) gate[(tokens - 1) * rows + Math.min(rows - 1, 4 * g + 3)] = 1;
      const found = kx.allocBytes(4 * Math.ceil(rows / 4));
      assert.equal(Array.from(kx.i32(found, kx.k.nonZeroRowGroups(kx.put(gate), rows, tokens, found))), groups);
      kx.arena.release(mark);
    }
  });
}

test("ffn=sparse on a ReLU^2 model: the up projection on the non-zero gates and the column-reading down projection give the dense logits bit for bit", async () => {
  const { checkpoint } = await synthesizeBitNet({ dim: 256, hiddenDim: 768, nLayers: 2, nHeads: 4, nKvHeads: 2, vocabSize: 300, seqLen: 64 }, { seed: 3 });
  const tokens = [1, 17, 42, 99, 7, 250, 3, 12];
  for (const level of RUNNABLE_LEVELS) {
    const kx = await loadKernels({ simd: level });
    const logits = async (variant: string) => (await modelOf(kx, checkpoint, { variant })).logits(tokens);
    const dense = await logits("b1.58");
    assert.equal(await logits("ffn=sparse"), dense, `${level}: exact`);
    assert.equal(await logits("a4.8,ffn=sparse"), await logits("a4.8,ffn=dense"), `${level}: a4.8`);
    const masked = await logits("ffn=sparse:0.8");
    assert.not.equal(masked, dense, "zeroing 80% of the gates changes the model");
    assert.ok(masked.every((row) => row.every(Number.isFinite)));
  }
  throwsTyped(() => parseVariant("ffn=dense:0.5"), OptionError, /ffn=dense:0\.5: expected dense or sparse\[:S\]/);
  throwsTyped(() => parseVariant("ffn=sparse:1"), OptionError, /ffn=sparse:1: S must be in \[0, 1\)/);
});

withData(test, "ffn=sparse on a SiLU model is an OptionError naming the file and its gate", ["models/stories260K.bin"], async () => {
  await rejects(
    loadBitNet(dataPath("models/stories260K.bin"), { variant: "ffn=sparse" }),
    OptionError,
    /ffn=sparse: .*stories260K\.bin's feed-forward gate is silu, which leaves no exact zeros/,
  );
});

test("the sparse-kernel BitLinear gives the dense one's outputs bit for bit, token by token", async () => {
  const kx = await loadKernels({ simd: "strict" });
  const next = rng(88), rows = 70, cols = 256, tokens = 3;
  const W = Int8Array.from({ length: rows * cols }, () => Math.floor(next() * 3) - 1);
  const quantizer = new ActivationQuantizer(kx, tokens, cols, { format: "int8", sparsity: 0.8 });
  const decode = (p: Ptr) => Promise.resolve((kx.write(p, W), 0.37));
  const dense = await BitLinear.fromInt8(kx, quantizer, rows, cols, false, "dense", decode);
  const sparse = await SparseTernaryLinear.fromInt8(kx, quantizer, rows, cols, false, "sparse", decode);
  const x = kx.put(Float32Array.from({ length: tokens * cols }, () => next() * 2 - 1));
  const a = kx.allocF32(tokens * rows), b = kx.allocF32(tokens * rows);
  dense.apply(dense.prepare(x, tokens), a);
  sparse.apply(sparse.prepare(x, tokens), b);
  assert.equal(kx.f32(b, tokens * rows), kx.f32(a, tokens * rows));
  assert.is(SPARSE_KERNEL_MIN_SPARSITY.strict, 0.75, "the measured break-even (docs/benchmarks.md)");
});

test("variants: presets and specs parse; unknown names and out-of-range parameters are OptionErrors", () => {
  assert.equal(Object.keys(PRESETS), ["b1.58", "bitnet", "fbi", "a4.8", "v2-a8", "v2-a4", "reloaded", "q-sparse"]);
  for (const [name, preset] of Object.entries(PRESETS)) assert.ok(preset.paper.includes("arXiv") && preset.ours.length > 0, name);
  assert.equal(parseVariant("v2-a4").down, { format: "int4", sparsity: 0, hadamard: "auto" });
  assert.equal(parseVariant("v2-a8").qkv, { format: "int8", sparsity: 0 });
  assert.equal(parseVariant("o=h:64+topk:0.25+int4").o, { format: "int4", sparsity: 0.25, hadamard: 64 });
  assert.equal(parseVariant("a4.8,kv=4"), { ...parseVariant("a4.8"), kvBits: 4 });
  assert.equal(parseVariant("bitnet"), { ...parseVariant("b1.58"), weights: "sign" });
  assert.equal(parseVariant("v2-a4:256").o, { format: "int4", sparsity: 0, hadamard: 256 });
  assert.is(parseVariant("v2-a4,form=native").rotate, "activations");
  assert.is(parseVariant("v2-a4,form=ptq").rotate, undefined);
  // A preset with a native form, named without form=, runs post-training and says so.
  assert.equal(parseVariant("v2-a4").ptqByDefault, ["v2-a4"]);
  assert.equal(parseVariant("reloaded,kv=4").ptqByDefault, ["reloaded"]);
  for (const spec of ["v2-a4,form=ptq", "v2-a4,form=native", "a4.8", "b1.58"]) assert.is(parseVariant(spec).ptqByDefault, undefined, spec);
  assert.equal(parseVariant("reloaded").qkv, { format: "int8", sparsity: 0, levels: 128 });
  assert.equal(parseVariant("reloaded,form=native").down, { format: "int8", sparsity: 0, levels: 128, norm: "layer" });
  assert.equal(parseVariant("reloaded,form=native,down=int8").down, INT8_ABSMAX, "later entries override the native form");
  assert.equal(parseVariant("o=ln+h:64+topk:0.5:32:l2+int8:128").o, {
    format: "int8",
    sparsity: 0.5,
    hadamard: 64,
    sparsityBlock: 32,
    rescaleL2: true,
    levels: 128,
    norm: "layer",
  });
  assert.equal([parseVariant("weights=sign:channel").weights, parseVariant("weights=sign:channel").weightScales], ["sign", "channel"]);
  assert.is(parseVariant("weights=median:group:128").weightScales, 128);
  for (
    const bad of ["weights=absmean:group:48", "weights=absmean:group:0", "weights=absmean:group", "weights=absmean:group:x", "weights=absmean:row", "weights=absmean:channel:32"]
  ) {
    assert.throws(() => parseVariant(bad), (e: unknown) => e instanceof OptionError && /per tensor, per channel or per group of G columns/.test((e as Error).message), bad);
  }
  assert.is(parseVariant("reloaded").weights, "median");
  assert.is(parseVariant("weights=median,all=int4").weights, "median");
  assert.equal(parseVariant("a4.8"), {
    qkv: { format: "int4", sparsity: 0 },
    o: { format: "int8", sparsity: 0.5 },
    gateUp: { format: "int4", sparsity: 0 },
    down: { format: "int8", sparsity: 0 },
    kvBits: 3,
    kvBosBits: 4,
  });
  assert.equal(parseVariant("q-sparse:0.25").down, { format: "int8", sparsity: 0.25 });
  assert.equal(parseVariant("all=int4,o=topk:0.5+int8").o, { format: "int8", sparsity: 0.5 });
  assert.equal(parseVariant("all=int4,o=topk:0.5+int8").qkv, { format: "int4", sparsity: 0 });
  for (
    const [spec, pattern] of [
      ["a4.9", /unknown variant "a4\.9" \(presets: b1\.58, bitnet, fbi, a4\.8, v2-a8, v2-a4, reloaded, q-sparse/],
      ["q-sparse:1", /q-sparse:S: S must be in \[0, 1\), got 1/],
      ["q-sparse:-0.1", /S must be in \[0, 1\)/],
      ["q-sparse:x", /S must be in \[0, 1\), got NaN/],
      ["b1.58:3", /preset b1\.58 takes no parameter/],
      ["qkv=int3", /"int3" is not an activation spec/],
      ["attn=int4", /unknown site "attn"/],
      ["weights=xnor", /weights="xnor": expected absmean or median or sign/],
      ["a4.8,kv=2", /kv=2: the KV cache takes f32 or 8, 4 or 3 bits/],
      ["bitnet:2", /preset bitnet takes no parameter/],
      ["v2-a4:48", /v2-a4:B: Hadamard block 48 must be a power of two/],
      ["v2-a8:x", /v2-a8:B: Hadamard block NaN must be a power of two/],
      ["v2-a8,form=trained", /form=trained: expected ptq \(post-training, the default\) or native/],
      ["a4.8,form=native", /form=native: no preset named before it has a native form .*\(v2-a8, v2-a4, reloaded\)/],
      ["form=native,v2-a8", /form=native: no preset named before it/],
      ["all=topk:0.5:1+int8", /topk:0\.5:1: a top-K block holds at least 2 values/],
      ["all=int4:128", /"int4:128" is not an activation spec/],
      ["o=topk:1.5+int8", /topk:1\.5: S must be in \[0, 1\)/],
    ] as [string, RegExp][]
  ) {
    assert.throws(() => parseVariant(spec), (e: unknown) => e instanceof OptionError && pattern.test((e as Error).message), spec);
  }
});

withData(test, "on bitllama-3M: b1.58 is bit-identical to the default path; every preset gives a finite perplexity", [
  "models/bitllama-3M.bin",
  "models/tok512.bin",
  "text/tinystories-valid-32k.txt",
], async (_, __, text) => {
  const path = dataPath("models/bitllama-3M.bin");
  const tokens = [1, 403, 407, 261, 378, 432, 383, 286, 261, 376, 298];
  const base = await loadBitNet(path, { simd: "strict" });
  const b158 = await loadBitNet(path, { simd: "strict", variant: "b1.58" });
  assert.equal(b158.logits(tokens), base.logits(tokens));
  const sample = new TextDecoder().decode(text).slice(0, 6000);
  const baseline = (await base.perplexity(sample, { ctx: 256 })).perplexity;
  for (
    const variant of [
      "a4.8",
      "q-sparse:0.5",
      "q-sparse:0.25",
      "all=int4",
      "v2-a8",
      "v2-a4",
      "reloaded",
      "kv=8",
      "a4.8,kv=3",
      "weights=sign",
      "weights=absmean:channel",
      "weights=absmean:group:64",
      "weights=sign:group:128",
      "q-sparse:0.8",
      "bitnet",
      "v2-a8:64",
      "v2-a8,form=native",
      "reloaded,form=native",
      "q-sparse:0.5,all=topk:0.5:32+int8",
    ]
  ) {
    const model = await loadBitNet(path, { simd: "strict", variant });
    const { perplexity } = await model.perplexity(sample, { ctx: 256 });
    assert.ok(Number.isFinite(perplexity) && perplexity > 1, `${variant}: ${perplexity}`);
    if (variant !== "reloaded") assert.not.equal(model.logits(tokens), base.logits(tokens), `${variant} changes the arithmetic`);
    // 1-bit weights, S = 0.8 and rotating only the activations of a model not trained so are expected to hurt.
    const untrained = variant.startsWith("weights=") || ["q-sparse:0.8", "bitnet", "v2-a8,form=native", "reloaded,form=native"].includes(variant);
    if (!untrained) assert.ok(perplexity < baseline * 10, `${variant}: ${perplexity} vs b1.58 ${baseline}`);
  }
  if (RUNNABLE_LEVELS.includes("relaxed")) {
    // The strict build takes the sparse kernel at S = 0.8, the relaxed one the dense kernel: same logits.
    const strict = await loadBitNet(path, { simd: "strict", variant: "q-sparse:0.8" }), relaxed = await loadBitNet(path, { simd: "relaxed", variant: "q-sparse:0.8" });
    assert.equal(strict.logits(tokens), relaxed.logits(tokens));
  }
  // The post-training default is a notice; naming the form is not.
  assert.match((await loadBitNet(path, { simd: "strict", variant: "v2-a8" })).notices.join("\n"), /bitllama-3M\.bin: v2-a8 runs in its post-training form .* add form=native/);
  assert.equal((await loadBitNet(path, { simd: "strict", variant: "v2-a8,form=ptq" })).notices, []);
  assert.equal(base.notices, []);
  // Per-channel scales are groups as wide as the rows: the same result either way.
  const channel = await loadBitNet(path, { simd: "strict", variant: "weights=median:channel" }),
    wide = await loadBitNet(path, { simd: "strict", variant: "weights=median:group:256" });
  assert.equal(channel.logits(tokens), wide.logits(tokens));
  const g = await loadBitNet(path, { simd: "strict", variant: "weights=absmean:group:96" }).then(() => null, (e) => e);
  assert.ok(g instanceof OptionError && /bitllama-3M\.bin: wq\[0\]: weight groups of 96 columns do not divide its width 256/.test(g.message), String(g));
  const e = await loadBitNet(path, { simd: "strict", variant: "o=h:48+int8" }).then(() => null, (e) => e);
  assert.ok(e instanceof OptionError && /Hadamard block 48 must be a power of two dividing the input width 256/.test(e.message), String(e));
  // Naming the weight ternarizer re-ternarizes the dequantized weights: same codes, absmean scale.
  const reweighted = await loadBitNet(path, { simd: "strict", variant: "weights=absmean" });
  assert.not.equal(reweighted.logits(tokens), base.logits(tokens));
});

withData(test, "kv=B:bosN keeps position 0's codes at N bits: one token gives kv=N's logits, longer prompts differ from both kv=B and kv=N", [
  "models/bitllama-3M.bin",
], async () => {
  const path = dataPath("models/bitllama-3M.bin"), tokens = [1, 403, 407, 261, 378, 432, 383, 286];
  const logits = async (variant: string, prompt: number[]) => (await loadBitNet(path, { simd: "strict", variant })).logits(prompt);
  for (const [bits, bos] of [[4, 8], [3, 8], [3, 4]]) {
    assert.equal(await logits(`kv=${bits}:bos${bos}`, [1]), await logits(`kv=${bos}`, [1]), `kv=${bits}:bos${bos}, one token`);
    assert.not.equal(await logits(`kv=${bits}`, [1]), await logits(`kv=${bos}`, [1]));
    const [mixed, plain, wide] = [await logits(`kv=${bits}:bos${bos}`, tokens), await logits(`kv=${bits}`, tokens), await logits(`kv=${bos}`, tokens)];
    assert.not.equal(mixed, plain);
    assert.not.equal(mixed, wide);
  }
  // a4.8's rule is part of its preset, v2's applies once a quantized cache is asked for.
  assert.equal(await logits("a4.8", tokens), await logits("a4.8,kv=3:bos4", tokens));
  assert.equal(await logits("v2-a8,kv=4", tokens), await logits("v2-a8,kv=4:bos8", tokens));
  assert.not.equal(await logits("v2-a8,kv=4", tokens), await logits("v2-a8,kv=4:bos4", tokens));
  assert.equal(parseVariant("kv=3:bos8"), { ...parseVariant("b1.58"), kvBits: 3, kvBosBits: 8 });
  assert.equal(parseVariant("kv=3:bos8,kv=4:bos4"), { ...parseVariant("b1.58"), kvBits: 4 }, "bos4 in a 4-bit cache is no exception");
  const { kvBits: _, ...f32Cache } = parseVariant("a4.8");
  assert.equal(parseVariant("a4.8,kv=f32"), f32Cache);
  throwsTyped(() => parseVariant("kv=4:bos3"), OptionError, /kv=4:bos3: the KV cache takes f32 or 8, 4 or 3 bits, optionally :bosN/);
  throwsTyped(() => parseVariant("kv=4:bos"), OptionError, /kv=4:bos: /);
});

withData(test, "on stories260K (fp32): a named variant ternarizes the weights post-training (absmean; median for reloaded)", [
  "models/stories260K.bin",
  "models/tok512.bin",
  "text/tinystories-valid-32k.txt",
], async (_, __, text) => {
  const path = dataPath("models/stories260K.bin"), sample = new TextDecoder().decode(text).slice(0, 6000);
  const fp32 = (await (await loadBitNet(path, { simd: "strict" })).perplexity(sample, { ctx: 256 })).perplexity;
  const results: number[] = [];
  for (const variant of ["b1.58", "reloaded", "a4.8", "weights=absmean:channel"]) {
    const { perplexity } = await (await loadBitNet(path, { simd: "strict", variant })).perplexity(sample, { ctx: 256 });
    assert.ok(Number.isFinite(perplexity) && perplexity > fp32, `${variant}: ${perplexity} vs fp32 ${fp32}`);
    results.push(perplexity);
  }
  assert.is(new Set(results).size, 4, "absmean and median weights, per tensor and per channel, int8 and int4 activations all differ");
});

test("median ternarizer: gamma = the lower middle |w| (as torch.median), then round and clip like absmean", async () => {
  const kx = await loadKernels({ simd: "strict" });
  const next = rng(21);
  for (const n of [1, 2, 7, 64, 1001]) {
    const w = Float32Array.from({ length: n }, () => (next() * 2 - 1) * 3);
    const sorted = Array.from(w, Math.abs).sort((a, b) => a - b), gamma = Math.max(sorted[(n - 1) >> 1], Math.fround(1e-5));
    const s = Math.fround(1 / gamma);
    const mark = kx.arena.mark(), out = kx.allocBytes(n);
    const scale = kx.k.ternarizeMedian(kx.put(w), n, out);
    assert.equal(Array.from(kx.i8(out, n)), Array.from(w, (v) => Math.max(-1, Math.min(1, roundHalfEven(Math.fround(v * s))))), `n ${n}`);
    assert.is(scale, Math.fround(1 / s));
    assert.ok(Number.isNaN(kx.k.ternarizeMedian(kx.put(Float32Array.of(1, Infinity)), 2, out)));
    kx.arena.release(mark);
  }
  // More than half zeros (an already-ternary matrix): gamma is the median of the non-zero |w|, not the 1e-5 floor.
  const mark = kx.arena.mark(), out = kx.allocBytes(9);
  for (
    const [w, gamma] of [
      [[0, 0, 0, 0, 0, 0.5, -0.5, 0.5, 2], 0.5], // non-zero |w| 0.5, 0.5, 0.5, 2: the lower middle
      [[0, 0, 0, 0, 0, 0, 0, 0, -3], 3],
      [[0, 0, 0, 0, 1, 2, 3, 4, 5], 1], // exactly 4 of 9 zeros: the plain median (rank 5) is 1
      [[0, 0, 0, 0, 0, 0, 0, 0, 0], 1e-5],
    ] as [number[], number][]
  ) {
    assert.is(kx.k.ternarizeMedian(kx.put(Float32Array.from(w)), 9, out), Math.fround(1 / Math.fround(1 / Math.fround(gamma))), String(w));
  }
  kx.arena.release(mark);
});

test.run();
