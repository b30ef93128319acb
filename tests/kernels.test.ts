// Every SIMD kernel against its scalar twin (bit for bit) and against a naive JS reference,
// on shapes that are not multiples of the SIMD or block widths, in both builds.
import * as assert from "uvu/assert";
import { paddedCols } from "../quant/activations.ts";
import { offset } from "../runtime/ptr.ts";
import { bitsEqual, LEVELS, levelSuite, maxRelativeError, randomF32, randomTernary, rng, testKernels } from "./helpers.ts";

const SHAPES: [number, number][] = [[1, 1], [3, 5], [4, 64], [5, 63], [7, 65], [13, 200], [64, 129], [33, 1000]];

for (const level of LEVELS) {
  const test = levelSuite("kernels", level);
  if (!test) continue;
  const kx = await testKernels(level);
  const k = kx.k;

  test("packTernary round-trips every weight, and rejects values outside -1..1", () => {
    const next = rng(1);
    for (const [rows, cols] of SHAPES) {
      const w = randomTernary(rows * cols, next);
      const mark = kx.arena.mark();
      const src = kx.put(w);
      const packed = kx.allocBytes(k.ternaryPackedBytes(rows, cols));
      assert.is(k.packTernary(src, rows, cols, packed), 0);
      for (let r = 0; r < rows; r++) {
        for (let c = 0; c < cols; c++) {
          if (k.ternaryAt(packed, rows, cols, r, c) !== w[r * cols + c]) assert.unreachable(`(${r}, ${c}) of ${rows}x${cols}`);
        }
      }
      kx.arena.release(mark);
    }
    const mark = kx.arena.mark();
    const bad = kx.put(Int8Array.from([0, 2, -1, -3]));
    assert.is(k.packTernary(bad, 2, 2, kx.allocBytes(k.ternaryPackedBytes(2, 2))), 2);
    kx.arena.release(mark);
  });

  test("int8 absmax quantizer: SIMD = scalar twin = JS reference, zero rows, outliers, NaN", () => {
    const next = rng(2);
    for (const n of [1, 15, 16, 17, 100, 256, 1000]) {
      const tokens = 3;
      const x = randomF32(n * tokens, next, 4);
      x[0] = n > 1 ? 1000 : x[0]; // one huge outlier in row 0
      x.fill(0, n, 2 * n); // row 1 all zero
      const mark = kx.arena.mark();
      const nPad = paddedCols(n);
      const xp = kx.put(x);
      const out = [0, 1].map(() => ({ q: kx.allocBytes(tokens * nPad), s: kx.allocF32(tokens), sum: kx.allocF32(tokens) }));
      assert.is(k.quantizeAbsmaxI8(xp, n, tokens, out[0].q, nPad, out[0].s, out[0].sum, 127), 0);
      assert.is(k.quantizeAbsmaxI8Scalar(xp, n, tokens, out[1].q, nPad, out[1].s, out[1].sum, 127), 0);
      assert.equal(kx.i8(out[0].q, tokens * nPad), kx.i8(out[1].q, tokens * nPad));
      assert.ok(bitsEqual(kx.f32(out[0].s, tokens), kx.f32(out[1].s, tokens)));
      assert.equal(kx.i32(out[0].sum, tokens), kx.i32(out[1].sum, tokens));
      for (let t = 0; t < tokens; t++) {
        const row = x.subarray(t * n, (t + 1) * n);
        const max = row.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
        const inv = max > 0 ? Math.fround(127 / max) : 0;
        const q = Array.from(row, (v) => Math.max(-128, Math.min(127, roundHalfEven(Math.fround(v * inv)))));
        const got = Array.from(kx.i8(offset(out[0].q, t * nPad), nPad));
        assert.equal(got.slice(0, n), q, `row ${t} of width ${n}`);
        assert.ok(got.slice(n).every((v) => v === 0), "padding is zero");
        assert.is(kx.i32(out[0].sum, tokens)[t], q.reduce((a, b) => a + b, 0));
        assert.is(kx.f32(out[0].s, tokens)[t], Math.fround(Math.fround(max) / 127));
      }
      x[n + 1] = NaN;
      kx.write(xp, x);
      assert.is(k.quantizeAbsmaxI8(xp, n, tokens, out[0].q, nPad, out[0].s, out[0].sum, 127), 1, "one NaN row is reported");
      kx.arena.release(mark);
    }
  });

  test("ternary GEMM: SIMD = scalar twin (bit for bit) = integer reference", () => {
    const next = rng(3);
    for (const [rows, cols] of SHAPES) {
      for (const tokens of [1, 2, 5]) {
        const w = randomTernary(rows * cols, next);
        const x = Int8Array.from({ length: tokens * cols }, () => Math.floor(next() * 256) - 128);
        const mark = kx.arena.mark();
        const packed = kx.allocBytes(k.ternaryPackedBytes(rows, cols));
        k.packTernary(kx.put(w), rows, cols, packed);
        const cp = paddedCols(cols);
        const xq = kx.allocBytes(tokens * cp);
        const sums = Int32Array.from({ length: tokens }, (_, t) => x.subarray(t * cols, (t + 1) * cols).reduce((a, b) => a + b, 0));
        for (let t = 0; t < tokens; t++) kx.write(offset(xq, t * cp), x.subarray(t * cols, (t + 1) * cols));
        const scales = Float32Array.from({ length: tokens }, () => next() / 100);
        const sp = kx.put(sums), scp = kx.put(scales);
        const wScale = 0.731;
        const y = [kx.allocF32(tokens * rows), kx.allocF32(tokens * rows)];
        k.ternaryGemm(packed, rows, cols, xq, sp, scp, tokens, wScale, y[0]);
        k.ternaryGemmScalar(packed, rows, cols, xq, sp, scp, tokens, wScale, y[1]);
        const simd = kx.f32(y[0], tokens * rows), scalar = kx.f32(y[1], tokens * rows);
        assert.ok(bitsEqual(simd, scalar), `${rows}x${cols}, ${tokens} tokens`);
        for (let t = 0; t < tokens; t++) {
          for (let r = 0; r < rows; r++) {
            let acc = 0;
            for (let c = 0; c < cols; c++) acc += w[r * cols + c] * x[t * cols + c];
            const want = Math.fround(acc * Math.fround(Math.fround(wScale) * scales[t]));
            if (scalar[t * rows + r] !== want) assert.unreachable(`(${t}, ${r}) of ${rows}x${cols}: ${scalar[t * rows + r]} != ${want}`);
          }
        }
        kx.arena.release(mark);
      }
    }
  });

  test("ternary GEMM survives the largest int8 products over wide rows (i16 lanes never overflow)", () => {
    const rows = 4, cols = 6912;
    const mark = kx.arena.mark();
    const packed = kx.allocBytes(k.ternaryPackedBytes(rows, cols));
    const w = new Int8Array(rows * cols).fill(1);
    w.fill(-1, cols, 2 * cols);
    k.packTernary(kx.put(w), rows, cols, packed);
    const xq = kx.put(new Int8Array(paddedCols(cols)).fill(-128, 0, cols));
    const y = kx.allocF32(rows);
    k.ternaryGemm(packed, rows, cols, xq, kx.put(Int32Array.of(-128 * cols)), kx.put(Float32Array.of(1)), 1, 1, y);
    assert.equal(Array.from(kx.f32(y, 2)), [-128 * cols, 128 * cols]);
    kx.arena.release(mark);
  });

  test("f32 GEMV / GEMM: SIMD = scalar twin (bit for bit), close to a float64 reference", () => {
    const next = rng(4);
    for (const [rows, cols] of SHAPES) {
      for (const tokens of [1, 3]) {
        const w = randomF32(rows * cols, next), x = randomF32(tokens * cols, next);
        const mark = kx.arena.mark();
        const wp = kx.put(w), xp = kx.put(x), y0 = kx.allocF32(tokens * rows), y1 = kx.allocF32(tokens * rows);
        if (tokens === 1) k.gemvF32(wp, rows, cols, xp, y0);
        else k.gemmF32(wp, rows, cols, xp, tokens, y0);
        k.gemmF32Scalar(wp, rows, cols, xp, tokens, y1);
        assert.ok(bitsEqual(kx.f32(y0, tokens * rows), kx.f32(y1, tokens * rows)));
        const want = new Float64Array(tokens * rows);
        for (let t = 0; t < tokens; t++) {
          for (let r = 0; r < rows; r++) {
            for (let c = 0; c < cols; c++) want[t * rows + r] += w[r * cols + c] * x[t * cols + c];
          }
        }
        assert.ok(maxRelativeError(kx.f32(y0, tokens * rows), want) < 1e-5);
        kx.arena.release(mark);
      }
    }
  });

  test("f16 / bf16 head GEMM: SIMD = scalar twin (bit for bit), close to a float64 reference; subnormal halves and inputs >= 2^16 stay exact", () => {
    const next = rng(12);
    const bf16Value = (h: number) => new Float32Array(Uint32Array.of(h << 16).buffer)[0];
    // Random halves of every kind: normal, subnormal, signed zeros, the largest finite.
    const randomHalf = (bf16: boolean) => {
      const u = next();
      if (u < 0.05) return u < 0.025 ? 0x0000 : 0x8000;
      if (u < 0.1) return (u < 0.075 ? 0 : 0x8000) | (1 + Math.floor(next() * 0x3ff)); // f16 subnormal (bf16: tiny)
      if (u < 0.12) return bf16 ? 0x477f : 0x7bff;
      return bf16 ? (Math.floor(next() * 0xffff) & 0xbfff) | 0x3000 : k.f32ToF16(next() * 4 - 2);
    };
    for (const bf16 of [false, true]) {
      const value = (h: number) => (bf16 ? bf16Value(h) : k.f16ToF32(h));
      for (const [rows, cols] of [...SHAPES, [9, 48], [5, 2560]] as [number, number][]) {
        for (const [tokens, xScale] of [[1, 1], [3, 1], [2, 1e5]]) {
          const w = Uint16Array.from({ length: rows * cols }, () => randomHalf(bf16)), x = randomF32(tokens * cols, next, xScale);
          const mark = kx.arena.mark();
          const wp = kx.put(w), xp = kx.put(x), regrouped = kx.allocF32(tokens * cols);
          const rescale = k.prepareHalfInput(xp, cols, tokens, regrouped, bf16);
          assert.is(rescale, !bf16 && x.some((v) => Math.abs(v) >= 65536) ? 1 : 0);
          const y0 = kx.allocF32(tokens * rows), y1 = kx.allocF32(tokens * rows);
          k.gemmHalf(wp, rows, cols, regrouped, tokens, y0, bf16, rescale !== 0);
          k.gemmHalfScalar(wp, rows, cols, regrouped, tokens, y1, bf16, rescale !== 0);
          assert.ok(bitsEqual(kx.f32(y0, tokens * rows), kx.f32(y1, tokens * rows)), `${bf16 ? "bf16" : "f16"} ${rows}x${cols}, ${tokens} tokens`);
          const want = new Float64Array(tokens * rows), got = kx.f32(y0, tokens * rows);
          for (let t = 0; t < tokens; t++) {
            for (let r = 0; r < rows; r++) {
              for (let c = 0; c < cols; c++) want[t * rows + r] += value(w[r * cols + c]) * x[t * cols + c];
            }
          }
          if (cols === 1) assert.ok(bitsEqual(got, Float32Array.from(want)), "one column: each product rounded once, as f32 w * x");
          assert.ok(maxRelativeError(got, want) < 1e-5, `${bf16 ? "bf16" : "f16"} ${rows}x${cols}: ${maxRelativeError(got, want)}`);
          kx.arena.release(mark);
        }
      }
    }
  });

  test("RMSNorm and the bitllama L2 norm: SIMD = scalar twin, = their formulas", () => {
    const next = rng(5);
    for (const n of [1, 3, 4, 37, 256]) {
      const tokens = 2, x = randomF32(n * tokens, next, 3), w = randomF32(n, next);
      const mark = kx.arena.mark();
      const xp = kx.put(x), wp = kx.put(w), o = [0, 1, 2, 3].map(() => kx.allocF32(n * tokens));
      k.rmsNorm(o[0], xp, wp, n, tokens, 1e-5);
      k.rmsNormScalar(o[1], xp, wp, n, tokens, 1e-5);
      k.l2Norm(o[2], xp, n, tokens);
      k.l2NormScalar(o[3], xp, n, tokens);
      assert.ok(bitsEqual(kx.f32(o[0], n * tokens), kx.f32(o[1], n * tokens)));
      assert.ok(bitsEqual(kx.f32(o[2], n * tokens), kx.f32(o[3], n * tokens)));
      for (let t = 0; t < tokens; t++) {
        const row = Array.from(x.subarray(t * n, (t + 1) * n));
        const ss = row.reduce((a, v) => a + v * v, 0);
        const rms = row.map((v, i) => w[i] * v / Math.sqrt(ss / n + 1e-5));
        const l2 = row.map((v) => v / Math.sqrt(ss) / Math.sqrt(n));
        assert.ok(maxRelativeError(kx.f32(offset(o[0], t * n * 4), n), rms) < 1e-5);
        assert.ok(maxRelativeError(kx.f32(offset(o[2], t * n * 4), n), l2) < 1e-5);
      }
      kx.write(xp, new Float32Array(n * tokens));
      k.l2Norm(o[2], xp, n, tokens);
      assert.ok(kx.f32(o[2], n * tokens).every((v) => v === 0), "an all-zero row stays zero");
      kx.arena.release(mark);
    }
  });

  test("RoPE: interleaved and NEOX pairings rotate the documented pairs; norms are kept", () => {
    const next = rng(6);
    const heads = 3, headSize = 8, half = 4, positions = 5, tokens = 2, pos = 2;
    const cos = new Float32Array(positions * half), sin = new Float32Array(positions * half);
    for (let p = 0; p < positions; p++) {
      for (let i = 0; i < half; i++) {
        const a = p * Math.pow(10000, -2 * i / headSize);
        cos[p * half + i] = Math.cos(a);
        sin[p * half + i] = Math.sin(a);
      }
    }
    for (const neox of [false, true]) {
      const v = randomF32(tokens * heads * headSize, next);
      const mark = kx.arena.mark();
      const vp = kx.put(v);
      k.rope(vp, heads, headSize, tokens, heads * headSize, pos, kx.put(cos), kx.put(sin), neox);
      const got = kx.f32(vp, v.length);
      for (let t = 0; t < tokens; t++) {
        for (let h = 0; h < heads; h++) {
          for (let i = 0; i < half; i++) {
            const base = t * heads * headSize + h * headSize;
            const [ia, ib] = neox ? [base + i, base + i + half] : [base + 2 * i, base + 2 * i + 1];
            const c = cos[(pos + t) * half + i], s = sin[(pos + t) * half + i];
            assert.ok(Math.abs(got[ia] - (v[ia] * c - v[ib] * s)) < 1e-6);
            assert.ok(Math.abs(got[ib] - (v[ia] * s + v[ib] * c)) < 1e-6);
          }
        }
      }
      kx.arena.release(mark);
    }
  });

  test("attention with GQA: SIMD = scalar twin, = a naive causal softmax attention", () => {
    const next = rng(7);
    for (const [heads, kvHeads, headSize] of [[4, 2, 8], [6, 3, 5], [2, 1, 16]]) {
      const dim = heads * headSize, kvDim = kvHeads * headSize, pos = 3, tokens = 4, len = pos + tokens;
      const q = randomF32(tokens * dim, next), kc = randomF32(len * kvDim, next), vc = randomF32(len * kvDim, next);
      const mark = kx.arena.mark();
      const qp = kx.put(q), kp = kx.put(kc), vp = kx.put(vc), scores = kx.allocF32((heads / kvHeads) * len);
      const o = [kx.allocF32(tokens * dim), kx.allocF32(tokens * dim)];
      k.attention(o[0], qp, kp, vp, scores, heads, kvHeads, headSize, tokens, pos);
      k.attentionScalar(o[1], qp, kp, vp, scores, heads, kvHeads, headSize, tokens, pos);
      assert.ok(bitsEqual(kx.f32(o[0], tokens * dim), kx.f32(o[1], tokens * dim)));
      const want = new Float64Array(tokens * dim);
      for (let t = 0; t < tokens; t++) {
        for (let h = 0; h < heads; h++) {
          const g = Math.floor(h / (heads / kvHeads));
          const s = Array.from({ length: pos + t + 1 }, (_, p) => {
            let d = 0;
            for (let i = 0; i < headSize; i++) d += q[t * dim + h * headSize + i] * kc[p * kvDim + g * headSize + i];
            return d / Math.sqrt(headSize);
          });
          const m = Math.max(...s), e = s.map((v) => Math.exp(v - m)), z = e.reduce((a, b) => a + b, 0);
          for (let p = 0; p < s.length; p++) {
            for (let i = 0; i < headSize; i++) {
              want[t * dim + h * headSize + i] += (e[p] / z) * vc[p * kvDim + g * headSize + i];
            }
          }
        }
      }
      assert.ok(maxRelativeError(kx.f32(o[0], tokens * dim), want) < 1e-5);
      kx.arena.release(mark);
    }
  });

  test("softmax, SwiGLU, ReLU^2-GLU, residual add and NLL equal their formulas", () => {
    const next = rng(8);
    const n = 37, a = randomF32(n, next, 5), b = randomF32(n, next, 5);
    const mark = kx.arena.mark();
    const ap = kx.put(a), bp = kx.put(b);
    k.softmax(ap, n);
    const m = Math.max(...a), z = a.reduce((s, v) => s + Math.exp(v - m), 0);
    assert.ok(maxRelativeError(kx.f32(ap, n), Array.from(a, (v) => Math.exp(v - m) / z)) < 1e-6);
    kx.write(ap, a);
    assert.ok(Math.abs(k.negLogLikelihood(ap, n, 5) - (Math.log(z) + m - a[5])) < 1e-6);
    k.swiglu(ap, bp, n);
    assert.ok(maxRelativeError(kx.f32(ap, n), Array.from(a, (g, i) => g / (1 + Math.exp(-g)) * b[i])) < 1e-6);
    kx.write(ap, a);
    k.relu2glu(ap, bp, n);
    assert.ok(maxRelativeError(kx.f32(ap, n), Array.from(a, (g, i) => Math.max(g, 0) ** 2 * b[i])) < 1e-6);
    kx.write(ap, a);
    k.addInPlace(ap, bp, n);
    assert.equal(Array.from(kx.f32(ap, n)), Array.from(a, (v, i) => Math.fround(v + b[i])));
    kx.arena.release(mark);
  });

  test.run();
}

function roundHalfEven(v: number): number {
  const r = Math.round(v);
  return Math.abs(v % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}
