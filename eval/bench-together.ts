// What `kernels.together` saves: the 30 layers' ternary GEMVs of a decoded 2B4T token
// (q, k, v, o, gate, up, down) on one thread, on two with one job per product, and on two
// with q / k / v and gate / up as one job each, as the forward pass runs them. Rounds
// alternate between the three, so each sees the same machine state; prints median and best
// ms per token. The weights are written, so they stream from memory as a model's do.
// Run: node --import tsx eval/bench-together.ts [--simd auto|strict|relaxed] [--rounds N]
import { parseArgs } from "node:util";
import { type Kernels, loadKernels } from "../runtime/kernels.ts";
import type { Ptr } from "../runtime/ptr.ts";
import "../runtime/node.ts"; // paths and threads, as the main entry installs them

const { values } = parseArgs({ options: { simd: { type: "string" }, rounds: { type: "string" } } });
const simd = (values.simd ?? "auto") as "auto";
const ROUNDS = Number(values.rounds ?? 21);
// [rows, cols] of q, k, v, o, gate, up, down
const SHAPES = [[2560, 2560], [640, 2560], [640, 2560], [2560, 2560], [6912, 2560], [6912, 2560], [2560, 6912]];

function token(kx: Kernels): { plain: () => void; together: () => void } {
  const x = kx.allocBytes(6912), sums = kx.allocBytes(4), scale = kx.put(Float32Array.of(1));
  const ys = SHAPES.map(([rows]) => kx.allocF32(rows));
  const layers = Array.from({ length: 30 }, () =>
    SHAPES.map(([rows, cols]) => {
      const n = kx.k.ternaryPackedBytes(rows, cols), w = kx.allocBytes(n);
      kx.u8(w, n).fill(0x55);
      return w;
    }));
  const gemv = (layer: Ptr[], i: number) => kx.k.ternaryGemm(layer[i], SHAPES[i][0], SHAPES[i][1], x, sums, scale, 1, 1, ys[i]);
  return {
    plain: () => layers.forEach((l) => l.forEach((_, i) => gemv(l, i))),
    together: () =>
      layers.forEach((l) => {
        kx.together(() => [0, 1, 2].forEach((i) => gemv(l, i)));
        gemv(l, 3);
        kx.together(() => [4, 5].forEach((i) => gemv(l, i)));
        gemv(l, 6);
      }),
  };
}

const one = await loadKernels({ simd }), two = await loadKernels({ simd, threads: 2 });
const a = token(one), b = token(two);
const runs = { "1 thread": a.plain, "2 threads, a job per product": b.plain, "2 threads, together": b.together };
const times = Object.fromEntries(Object.keys(runs).map((name) => [name, [] as number[]]));
for (let r = 0; r < ROUNDS; r++) {
  for (const [name, run] of Object.entries(runs)) {
    const t = performance.now();
    run();
    times[name].push(performance.now() - t);
  }
}
const median = (xs: number[]) => [...xs].sort((p, q) => p - q)[xs.length >> 1];
const base = times["1 thread"];
console.log(`30 layers of 2B4T ternary GEMVs, ${one.level} SIMD, ${ROUNDS} interleaved rounds\n`);
console.log("| | median ms | best ms | speed-up (median) |\n|---|---:|---:|---:|");
for (const [name, xs] of Object.entries(times)) {
  console.log(`| ${name} | ${median(xs).toFixed(2)} | ${Math.min(...xs).toFixed(2)} | ${(median(base) / median(xs)).toFixed(2)}x |`);
}
two.dispose();
