// BitNet a4.8's FFN saving as kernels, at the full 2B4T shape (random ternary weights, I2_S as
// written by `synth`): decode tokens/s with the dense FFN against ffn=sparse (the up projection
// only on the row groups of non-zero ReLU^2 gates, the down projection reading only its
// non-zero input columns: the same logits) at the sparsity the synthetic gates give, and with
// the gates masked to 80% zeros (the paper's figure for trained models: "the inputs to the
// down projection achieve over 80% sparsity"). All three models are loaded in this process and
// decoded in interleaved rounds; the gate sparsity reached is counted by the kernels' callers.
// Run: node --import tsx eval/bench-ffn.ts [--dir D] [--rounds N] [--tokens N]  (or deno run -A ...)
import { cpus } from "node:os";
import { parseArgs } from "node:util";
import { readCheckpoint } from "../model/load.ts";
import { Transformer } from "../model/transformer.ts";
import { synth2b4tFile } from "./bench-synth.ts";
import { openFile } from "../runtime/files.ts";
import { hasRelaxedSimd } from "../runtime/features.ts";
import { loadKernels, type SimdLevel } from "../runtime/kernels.ts";
import "../runtime/node.ts"; // paths and threads, as the main entry installs them

const { values } = parseArgs({ options: { dir: { type: "string" }, rounds: { type: "string" }, tokens: { type: "string" } } });
const ROUNDS = Number(values.rounds ?? 5), TOKENS = Number(values.tokens ?? 16), PROMPT = 8;
const file = await synth2b4tFile(values.dir);
const VARIANTS = ["b1.58", "ffn=sparse", "ffn=sparse:0.8"];
const median = (xs: number[]) => xs.slice().sort((a, b) => a - b)[xs.length >> 1];
const level: SimdLevel = hasRelaxedSimd() ? "relaxed" : "strict";

const models = [];
for (const variant of VARIANTS) {
  const ckpt = await readCheckpoint(await openFile(file));
  const model = await Transformer.load(await loadKernels({ simd: level }), ckpt, { variant, contextLength: 256 });
  await ckpt.source.close();
  models.push({ variant, model, cache: model.newCache(), speeds: [] as number[] });
}
const prompt = Array.from({ length: PROMPT }, (_, i) => (i === 0 ? 128000 : 1000 + ((i * 7919) % 100000)));
for (let r = 0; r < ROUNDS; r++) {
  for (let i = 0; i < models.length; i++) {
    const m = models[(i + r) % models.length];
    m.model.forward(m.cache, prompt, 0);
    const t = performance.now();
    for (let p = PROMPT; p < PROMPT + TOKENS; p++) m.model.forward(m.cache, [(p * 7919) % 100000], p);
    m.speeds.push((TOKENS * 1000) / (performance.now() - t));
  }
}

const percent = (a: number, b: number) => (b ? `${((100 * a) / b).toFixed(1)}%` : "-");
console.log(`${cpus()[0]?.model ?? "unknown CPU"}, ${level} SIMD, 1 thread; 2B4T shape (random ternary weights, I2_S); ${TOKENS} decoded tokens per round, median of ${ROUNDS}\n`);
console.log("| FFN | up row groups computed | down input columns read | decode tok/s | vs dense |");
console.log("|---|---:|---:|---:|---:|");
const dense = median(models[0].speeds);
for (const { variant, model, speeds } of models) {
  const { total, computed } = model.ffnRowGroups, cols = model.downColumns;
  console.log(`| \`${variant}\` | ${percent(computed, total)} | ${percent(cols.read, cols.total)} | ${median(speeds).toFixed(2)} | ${(median(speeds) / dense).toFixed(2)}x |`);
}
