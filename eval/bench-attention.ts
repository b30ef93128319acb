// Decode attention over the KV cache at the BitNet b1.58 2B4T shape (20 query heads, 5 KV
// heads of 128), per cache precision: f32, 8-bit codes, and 4- and 3-bit codes packed and
// read in place (with and without position 0's heads kept wider, as BitNet v2 and a4.8 do). For each context: ms per decoded
// token for one layer's attention (one query row over every cached position), and the
// cache's size for the whole model (30 layers) at 4,096 tokens. Then DeltaLLM's hybrid
// attention (decode window 4) over an f32 cache whose keys drift between positions so that
// about 60% of the key deltas fall under the threshold (the sparsity the paper reaches on
// BitNet), against the dense kernel. Rounds are interleaved.
// Run: node --import tsx eval/bench-attention.ts [--rounds N] [--contexts 512,2048,4096]  (or deno run -A ...)
import { cpus } from "node:os";
import { parseArgs } from "node:util";
import { KVCache, type KVPrecision } from "../model/kv-cache.ts";
import type { ModelConfig } from "../formats/config.ts";
import { BITNET_2B4T_SHAPE } from "../tools/synth.ts";
import { hasRelaxedSimd } from "../runtime/features.ts";
import { loadKernels } from "../runtime/kernels.ts";
import { offset } from "../runtime/ptr.ts";
import { uniform } from "../core/random.ts";
import "../runtime/node.ts"; // paths and threads, as the main entry installs them

const { values } = parseArgs({ options: { rounds: { type: "string" }, contexts: { type: "string" } } });
const ROUNDS = Number(values.rounds ?? 7), CONTEXTS = (values.contexts ?? "512,2048,4096").split(",").map(Number);
const shape = BITNET_2B4T_SHAPE, headSize = shape.dim / shape.nHeads;
const config: ModelConfig = {
  ...shape,
  arch: "bitnet-b1.58",
  seqLen: Math.max(...CONTEXTS),
  headSize,
  kvDim: headSize * shape.nKvHeads,
  normEps: 1e-5,
  ropeTheta: 500000,
  rope: "neox",
  activation: "relu2",
};
const PRECISIONS: [string, KVPrecision][] = [
  ["f32", { bits: 32 }],
  ["8-bit", { bits: 8 }],
  ["4-bit", { bits: 4 }],
  ["4-bit, [BOS] 8 (v2)", { bits: 4, bosBits: 8 }],
  ["3-bit", { bits: 3 }],
  ["3-bit, [BOS] 4 (a4.8)", { bits: 3, bosBits: 4 }],
  ["3-bit, [BOS] 8 (v2)", { bits: 3, bosBits: 8 }],
];
const median = (xs: number[]) => xs.slice().sort((a, b) => a - b)[xs.length >> 1];

const kx = await loadKernels();
const k = kx.k, oneLayer = { ...config, nLayers: 1 }, next = uniform(5);
const random = (n: number) => kx.put(Float32Array.from({ length: n }, () => next() * 2 - 1));
const keys = random(32 * config.kvDim), values_ = random(32 * config.kvDim), q = random(config.dim);
const out = kx.allocF32(config.dim), scores = kx.allocF32((config.nHeads / config.nKvHeads) * config.seqLen);
const caches = PRECISIONS.map(([, p]) => {
  const cache = new KVCache(kx, oneLayer, p);
  if (cache.quantized) { for (let pos = 0; pos < config.seqLen; pos += 32) cache.store(0, pos, 32, keys, values_); }
  else {
    for (const part of [cache.keys(0), cache.values(0)]) {
      for (let pos = 0; pos < config.seqLen; pos += 32) kx.u8(offset(part, pos * config.kvDim * 4), 32 * config.kvDim * 4).set(kx.u8(keys, 32 * config.kvDim * 4));
    }
  }
  return cache;
});

function attend(cache: KVCache, pos: number): void {
  const { nHeads, nKvHeads } = config;
  if (cache.quantized) {
    k.attentionCodes(out, q, cache.keys(0), cache.keyScales(0), cache.values(0), cache.valueScales(0), scores, nHeads, nKvHeads, headSize, 1, pos, cache.bits, cache.bosBits);
  } else k.attention(out, q, cache.keys(0), cache.values(0), scores, nHeads, nKvHeads, headSize, 1, pos);
}

const ms: number[][][] = PRECISIONS.map(() => CONTEXTS.map(() => []));
for (let r = 0; r < ROUNDS; r++) {
  for (const [c, context] of CONTEXTS.entries()) {
    for (let i = 0; i < caches.length; i++) {
      const which = (i + r) % caches.length, reps = Math.max(3, Math.round(20000 / context));
      attend(caches[which], context - 1);
      const t = performance.now();
      for (let j = 0; j < reps; j++) attend(caches[which], context - 1);
      ms[which][c].push((performance.now() - t) / reps);
    }
  }
}

const mib = (n: number) => (n / 2 ** 20).toFixed(0);
console.log(`${cpus()[0]?.model ?? "unknown CPU"}, ${kx.level} SIMD${hasRelaxedSimd() ? "" : " (no relaxed SIMD here)"}, 1 thread; median of ${ROUNDS} interleaved rounds\n`);
console.log(`| KV cache | 2B4T cache at 4,096 tokens | ${CONTEXTS.map((c) => `ms / token / layer at ${c}`).join(" | ")} | ${CONTEXTS.map((c) => `vs f32 at ${c}`).join(" | ")} |`);
console.log(`|---|---:|${CONTEXTS.map(() => "---:").join("|")}|${CONTEXTS.map(() => "---:").join("|")}|`);
for (const [i, [name, p]] of PRECISIONS.entries()) {
  const m = ms[i].map(median), f32 = ms[0].map(median);
  console.log(
    `| ${name} | ${mib(KVCache.bytes({ ...config, seqLen: 4096 }, p, 4096))} MiB | ${m.map((v) => v.toFixed(3)).join(" | ")} | ${
      m.map((v, c) => `${(v / f32[c]).toFixed(2)}x`).join(" | ")
    } |`,
  );
}

// DeltaLLM: keys that mostly drift by less than the threshold (theta = 1), 40% of entries jumping.
const THRESHOLD = 1, DECODE_WINDOW = 4;
const deltaCache = new KVCache(kx, oneLayer, { bits: 32, deltaKeys: true }), kvDim = config.kvDim, walk = new Float32Array(config.seqLen * kvDim);
for (let p = 0; p < config.seqLen; p++) {
  for (let i = 0; i < kvDim; i++) walk[p * kvDim + i] = p === 0 ? next() * 4 - 2 : walk[(p - 1) * kvDim + i] + (next() < 0.4 ? (next() < 0.5 ? -2 : 2) : (next() - 0.5) * 0.5);
}
kx.f32(deltaCache.keys(0), config.seqLen * kvDim).set(walk);
kx.u8(deltaCache.values(0), config.seqLen * kvDim * 4).set(kx.u8(caches[0].values(0), config.seqLen * kvDim * 4));
const kept = deltaCache.encodeDeltas(0, 0, config.seqLen, deltaCache.keys(0), THRESHOLD);
const deltaMs: number[][][] = [CONTEXTS.map(() => []), CONTEXTS.map(() => [])], work: number[] = [];
for (let r = 0; r < ROUNDS; r++) {
  for (const [c, context] of CONTEXTS.entries()) {
    const reps = Math.max(3, Math.round(20000 / context));
    for (let i = 0; i < 2; i++) {
      const delta = (i + r) % 2 === 1,
        run = () =>
          delta
            ? k.attentionDelta(
              out,
              q,
              deltaCache.keys(0),
              deltaCache.values(0),
              deltaCache.deltas(0),
              scores,
              config.nHeads,
              config.nKvHeads,
              headSize,
              1,
              context - 1,
              DECODE_WINDOW,
            )
            : k.attention(out, q, deltaCache.keys(0), deltaCache.values(0), scores, config.nHeads, config.nKvHeads, headSize, 1, context - 1);
      work[c] = delta ? (run() as number) : work[c];
      const t = performance.now();
      for (let j = 0; j < reps; j++) run();
      deltaMs[delta ? 1 : 0][c].push((performance.now() - t) / reps);
    }
  }
}
console.log(`\nDeltaLLM (theta ${THRESHOLD}, decode window ${DECODE_WINDOW}): ${(100 - (100 * kept) / (config.seqLen * kvDim)).toFixed(1)}% of the key delta entries dropped\n`);
console.log(`| attention | ${CONTEXTS.map((c) => `ms / token / layer at ${c}`).join(" | ")} | ${CONTEXTS.map((c) => `score multiply-adds skipped at ${c}`).join(" | ")} |`);
console.log(`|---|${CONTEXTS.map(() => "---:").join("|")}|${CONTEXTS.map(() => "---:").join("|")}|`);
for (const [i, name] of ["dense (f32)", "DeltaLLM"].entries()) {
  const skipped = CONTEXTS.map((c, j) => (i === 0 ? "0%" : `${(100 - (100 * work[j]) / (config.nHeads * headSize * c)).toFixed(1)}%`));
  console.log(`| ${name} | ${deltaMs[i].map((m) => median(m).toFixed(3)).join(" | ")} | ${skipped.join(" | ")} |`);
}
