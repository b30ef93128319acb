// Ternary GEMV at the BitNet b1.58 2B4T shapes, in GB/s of weight bytes read, next to:
// a plain JS scalar GEMV over the same 2-bit codes, the f32 WASM GEMV of the same shape,
// and a WASM SIMD streaming read of the same bytes (the roof), for every kernel build
// this runtime can run. Each call reads the next of several copies of the matrix, 256 MB
// or more in all, so weights come from DRAM as in a real decode, not from cache.
// Then the LM head of the same model (128256 x 2560): f16, bf16 and int8 tables against a
// read of the f16 bytes, in interleaved rounds.
// Run: npm run bench (Node 20: strict build only), deno task bench (both builds).
import { Bench } from "tinybench";
import { paddedCols } from "../quant/activations.ts";
import { hasRelaxedSimd } from "../runtime/features.ts";
import { type Kernels, loadKernels, type SimdLevel } from "../runtime/kernels.ts";
import type { Ptr } from "../runtime/ptr.ts";
import "../runtime/node.ts"; // paths and threads, as the main entry installs them

const SHAPES: [number, number][] = [[2560, 2560], [6912, 2560], [2560, 6912]]; // [out, in]
const levels: SimdLevel[] = hasRelaxedSimd() ? ["strict", "relaxed"] : ["strict"];

const WORKING_SET = 256 * 1024 * 1024;

function fill(kx: Kernels, ptr: Ptr, bytes: number, seed: number): void {
  const view = kx.u8(ptr, bytes);
  let s = seed;
  for (let i = 0; i < bytes; i++) view[i] = (s = (s * 1103515245 + 12345) >>> 0) >>> 24;
}

/** Enough copies of a `bytes`-long buffer to exceed the caches; returns their addresses. */
function copies(kx: Kernels, bytes: number, seed: number): Ptr[] {
  const n = Math.max(2, Math.ceil(WORKING_SET / bytes));
  const first = kx.allocBytes(bytes);
  fill(kx, first, bytes, seed);
  const all = [first];
  for (let i = 1; i < n; i++) {
    const p = kx.allocBytes(bytes);
    kx.u8(p, bytes).set(kx.u8(first, bytes));
    all.push(p);
  }
  return all;
}

/** y = W x over 2-bit row-major codes (value + 1), the way one would write it in plain JS. */
function jsTernaryGemv(codes: Uint8Array, rows: number, cols: number, x: Int8Array, y: Float32Array): void {
  const rowBytes = cols >> 2;
  for (let r = 0; r < rows; r++) {
    let acc = 0;
    for (let j = 0; j < rowBytes; j++) {
      const b = codes[r * rowBytes + j], c = j << 2;
      acc += ((b & 3) - 1) * x[c] + (((b >> 2) & 3) - 1) * x[c + 1] + (((b >> 4) & 3) - 1) * x[c + 2] + ((b >> 6) - 1) * x[c + 3];
    }
    y[r] = acc;
  }
}

const rows: Record<string, string | number>[] = [];
for (const [out, inp] of SHAPES) {
  const shape = `${out}x${inp}`;
  const weightBytes = (out * inp) / 4;
  const bench = new Bench({ time: 1500, warmupTime: 300 });
  const gbps = (name: string, bytes: number) => {
    const task = bench.getTask(name)!;
    const mean = (task.result as { latency?: { mean: number } }).latency?.mean ?? (task.result as unknown as { mean: number }).mean;
    return { ms: mean, gbps: bytes / (mean / 1000) / 1e9 };
  };
  const tasks: [string, number][] = [];
  const fns = new Map<string, () => unknown>();
  const add = (name: string, bytes: number, fn: () => unknown) => {
    bench.add(name, fn);
    tasks.push([name, bytes]);
    fns.set(name, fn);
  };
  for (const level of levels) {
    const kx = await loadKernels({ simd: level });
    const packedBytes = kx.k.ternaryPackedBytes(out, inp);
    const packed = copies(kx, packedBytes, 1);
    const q = kx.allocBytes(paddedCols(inp)), y = kx.allocF32(out);
    fill(kx, q, inp, 2);
    const sums = kx.allocF32(1), scales = kx.put(Float32Array.of(1));
    let i = 0, j = 0, gi = 0;
    add(`ternary ${level}`, weightBytes, () => kx.k.ternaryGemm(packed[i++ % packed.length], out, inp, q, sums, scales, 1, 1, y));
    // Per-group weight scales (groups of 128 columns): the same codes, one dot per group.
    const groupSums = kx.allocBytes((inp / 128) * 4), groupScales = kx.put(new Float32Array(out * (inp / 128)).fill(1));
    add(`ternary group 128 ${level}`, weightBytes, () => {
      kx.k.sumGroups(q, paddedCols(inp), inp, 1, 128, groupSums);
      kx.k.ternaryGemmGrouped(packed[gi++ % packed.length], out, inp, q, groupSums, scales, 1, 128, groupScales, y);
    });
    add(`roof ${level}`, weightBytes, () => kx.k.streamRead(packed[j++ % packed.length], packedBytes));
    // Variants (issue 5): 1-bit sign weights read half the bytes; H-BitLinear adds a
    // Walsh-Hadamard transform of the input (block: the largest power of two dividing it).
    const signBytes = kx.k.signPackedBytes(out, inp), signs = copies(kx, signBytes, 1);
    let s = 0;
    add(`sign 1-bit ${level}`, signBytes, () => kx.k.signGemm(signs[s++ % signs.length], out, inp, q, sums, scales, 1, 1, y));
    const hx = kx.allocF32(inp);
    add(`hadamard of x ${level}`, inp * 4, () => kx.k.hadamardBlocks(hx, inp, 1, inp & -inp));
    // Top-K: the column-blocked kernel reads only the kept columns (S = fraction zeroed).
    const columns = copies(kx, kx.k.ternaryColumnsBytes(out, inp), 4), kept = kx.allocBytes(inp * 4);
    for (const S of [0.25, 0.5, 0.75]) {
      const xs = kx.allocBytes(paddedCols(inp));
      fill(kx, xs, inp, 5);
      const view = kx.i8(xs, inp);
      for (let c = 0; c < inp; c++) if (((c * 2654435761) >>> 0) / 2 ** 32 < S) view[c] = 0;
      const count = kx.k.nonZeroColumns(xs, inp, kept);
      let m = 0;
      add(`sparse S=${S} ${level}`, (weightBytes * count) / inp, () => kx.k.ternaryGemvSparse(columns[m++ % columns.length], out, inp, xs, kept, count, 1, 1, y));
    }
    if (level === "strict") {
      const w = copies(kx, out * inp * 4, 3), x = kx.allocF32(inp);
      let m = 0;
      add("f32 wasm", out * inp * 4, () => kx.k.gemvF32(w[m++ % w.length], out, inp, x, y));
    }
  }
  const codes = new Uint8Array(weightBytes).map((_, i) => (i * 2654435761) >>> 24);
  const xs = new Int8Array(inp).map((_, i) => ((i * 40503) & 255) - 128), ys = new Float32Array(out);
  add("ternary plain JS", weightBytes, () => jsTernaryGemv(codes, out, inp, xs, ys));
  await bench.run();
  for (const [name, bytes] of tasks) {
    const { ms, gbps: g } = gbps(name, bytes);
    rows.push({ shape, kernel: name, "ms/call": ms.toFixed(3), "GB/s": g.toFixed(2), note: "" });
  }
  // Share of the roof: the machine's bandwidth drifts between tinybench's sequential tasks,
  // so the ratio comes from interleaved rounds (kernel, roof, kernel, ...), best of each.
  for (const level of levels) {
    const [kernel, roof] = [fns.get(`ternary ${level}`)!, fns.get(`roof ${level}`)!];
    const best = [Infinity, Infinity];
    for (let round = 0; round < 40; round++) {
      [kernel, roof].forEach((f, i) => {
        const t = performance.now();
        for (let k = 0; k < 20; k++) f();
        best[i] = Math.min(best[i], performance.now() - t);
      });
    }
    const note = `${((100 * best[1]) / best[0]).toFixed(0)}% of roof (interleaved: ${((weightBytes * 20) / best[0] / 1e6).toFixed(2)} vs ${
      ((weightBytes * 20) / best[1] / 1e6).toFixed(2)
    } GB/s)`;
    rows.push({ shape, kernel: `ternary ${level} / roof`, "ms/call": "", "GB/s": "", note });
  }
}

// The LM head: one call reads the whole table (656 MB in f16), far beyond the caches.
const VOCAB = 128256, DIM = 2560;
const headRows: string[] = [];
for (const level of levels) {
  const kx = await loadKernels({ simd: level });
  const halves = kx.allocBytes(VOCAB * DIM * 2), int8 = kx.allocBytes(VOCAB * DIM);
  // Finite halves in both readings (f16 and bf16), int8 codes in -127..127.
  const h = new Uint16Array(kx.memory.buffer, halves, VOCAB * DIM);
  for (let i = 0; i < h.length; i++) h[i] = (((i * 2654435761) >>> 16) & 0x83ff) | 0x3000;
  fill(kx, int8, VOCAB * DIM, 6);
  const x = kx.allocF32(DIM), prepared = kx.allocF32(DIM), xq = kx.allocBytes(paddedCols(DIM)), ones = kx.put(new Float32Array(VOCAB).fill(1));
  kx.f32(x, DIM).forEach((_, i, a) => (a[i] = Math.sin(i)));
  fill(kx, xq, DIM, 7);
  const y = kx.allocF32(VOCAB);
  const half = (bf16: boolean) => () => kx.k.gemmHalf(halves, VOCAB, DIM, prepared, 1, y, bf16, kx.k.prepareHalfInput(x, DIM, 1, prepared, bf16) !== 0);
  const tasks: [string, number, () => unknown][] = [
    ["f16 head", VOCAB * DIM * 2, half(false)],
    ["bf16 head", VOCAB * DIM * 2, half(true)],
    ["int8 head", VOCAB * DIM, () => kx.k.gemmI8(int8, ones, VOCAB, DIM, xq, paddedCols(DIM), ones, 1, y)],
    ["roof (read of the f16 bytes)", VOCAB * DIM * 2, () => kx.k.streamRead(halves, VOCAB * DIM * 2)],
  ];
  const best = tasks.map(() => Infinity);
  for (let round = 0; round < 8; round++) {
    tasks.forEach(([, , f], i) => {
      const t = performance.now();
      f();
      best[i] = Math.min(best[i], performance.now() - t);
    });
  }
  const roof = best[3];
  tasks.forEach(([name, bytes], i) => {
    headRows.push(`| ${name} ${level} | ${best[i].toFixed(1)} | ${(bytes / best[i] / 1e6).toFixed(1)} | ${(roof / best[i] * 100).toFixed(0)}% |`);
  });
}

const runtime = typeof (globalThis as { Deno?: unknown }).Deno !== "undefined" ? "deno" : (globalThis as { Bun?: unknown }).Bun ? "bun" : `node ${process.version}`;
console.log(`ternary GEMV, one thread, ${runtime}\n`);
console.log("| shape (out x in) | kernel | ms/call | GB/s | |\n|---|---|---:|---:|---|");
for (const r of rows) console.log(`| ${r.shape} | ${r.kernel} | ${r["ms/call"]} | ${r["GB/s"]} | ${r.note} |`);
console.log(`\nLM head ${VOCAB}x${DIM}, one token, one thread, ${runtime}: best of 8 interleaved rounds\n`);
console.log("| kernel | ms/call | GB/s | time of the f16 read / time |\n|---|---:|---:|---:|");
for (const r of headRows) console.log(r);
