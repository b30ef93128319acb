// Sweeps: variants parsed from a list, one result per variant with the documented
// measures, finished variants skipped on a rerun, and the table and chart they make.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { runSweep, splitVariants, sweepChart, type SweepResult, sweepTable } from "../eval/sweep.ts";
import { OptionError } from "../core/errors.ts";
import { dataPath, withData } from "./helpers.ts";

const test = suite("sweep");

test("variant lists split on ';' when there is one, else on commas except inside a spec", () => {
  assert.equal(splitVariants("b1.58,a4.8,q-sparse:0.5"), ["b1.58", "a4.8", "q-sparse:0.5"]);
  assert.equal(splitVariants("b1.58,qkv=int4,o=topk:0.5+int8,reloaded"), ["b1.58", "qkv=int4,o=topk:0.5+int8", "reloaded"]);
  assert.equal(splitVariants("qkv=int4,down=int8;all=int4"), ["qkv=int4,down=int8", "all=int4"]);
  assert.equal(splitVariants("b1.58; a4.8,kv=3 ;kv=8"), ["b1.58", "a4.8,kv=3", "kv=8"]);
});

withData(test, "a sweep on bitllama-1M measures every variant once; a rerun with the results on record loads nothing", [
  "models/bitllama-1M.bin",
  "models/tok512.bin",
  "text/tinystories-valid-32k.txt",
], async (_, __, text) => {
  const sample = new TextDecoder().decode(text).slice(0, 3000);
  const base = { model: dataPath("models/bitllama-1M.bin"), text: sample, textName: "tinystories-3000", ctx: 128, decodeTokens: 8, simd: "strict" as const };
  const recorded: SweepResult[] = [];
  const results = await runSweep({ ...base, variants: ["b1.58", "q-sparse:0.5", "a4.8"], onResult: (r) => void recorded.push(r) });
  assert.equal(results.map((r) => r.variant), ["b1.58", "q-sparse:0.5", "a4.8"]);
  assert.equal(recorded, results);
  const [b158, sparse, a48] = results;
  assert.ok(results.every((r) => Number.isFinite(r.perplexity) && r.perplexity > 1 && r.tokens > 0 && r.decodeTokensPerSecond > 0));
  assert.is(b158.bitsPerWeight, Math.log2(3));
  assert.equal([b158.bitsPerActivation, b158.activeWeights], [8, 1]);
  assert.equal([sparse.bitsPerActivation, sparse.activeWeights], [8, 0.5]);
  // a4.8 on bitllama-1M (dim 128, hidden 256, 4 of 8 heads for k / v: kv dim 64): int4 on the
  // q, k, v weights (128 x (128 + 64 + 64)) and gate / up (2 x 256 x 128); int8 on o and down.
  const w = { qkv: 128 * 256, o: 128 * 128, gateUp: 2 * 256 * 128, down: 128 * 256 }, total = w.qkv + w.o + w.gateUp + w.down;
  assert.ok(Math.abs(a48.bitsPerActivation - (4 * (w.qkv + w.gateUp) + 8 * (w.o + w.down)) / total) < 1e-12);
  assert.ok(Math.abs(a48.activeWeights - (total - 0.5 * w.o) / total) < 1e-12);
  let progress = 0;
  const again = await runSweep({ ...base, variants: ["b1.58", "q-sparse:0.5", "a4.8"], done: results, onProgress: () => progress++ });
  assert.equal(again, results);
  assert.is(progress, 0, "nothing was evaluated again");
  const e = await runSweep({ ...base, variants: ["b1.58", "nope"], done: results }).then(() => null, (e) => e);
  assert.ok(e instanceof OptionError && /unknown variant "nope"/.test(e.message), String(e));

  // Measured model-level sparsity: at least the top-K zeros of every input, a little more from the inputs' own zeros.
  assert.ok(b158.sparsity! >= 0 && b158.sparsity! < 0.1, `b1.58: ${b158.sparsity}`);
  assert.ok(sparse.sparsity! >= 0.5 && sparse.sparsity! < 0.6, `q-sparse:0.5: ${sparse.sparsity}`);
  // A model-level target: the per-input S found on the text's first window reaches it over the whole text.
  const [targeted] = await runSweep({ ...base, variants: ["q-sparse@0.4"] });
  const s = Number(targeted.resolved!.replace("q-sparse:", ""));
  assert.ok(targeted.resolved!.startsWith("q-sparse:") && s > 0.3 && s < 0.45, targeted.resolved);
  assert.ok(Math.abs(targeted.sparsity! - 0.4) < 0.02, `measured ${targeted.sparsity}`);
  const bad = await runSweep({ ...base, variants: ["q-sparse@1"] }).then(() => null, (e) => e);
  assert.ok(bad instanceof OptionError && /q-sparse@1: the model-level sparsity target T must be in \(0, 1\)/.test(bad.message), String(bad));

  const table = sweepTable(results).split("\n");
  assert.is(table.length, 2 + results.length);
  assert.match(table[3], /^\| `q-sparse:0\.5` \| [\d.]+ \| [\d.]+ \| 1\.58 \| 8\.00 \| 50% \| 5\d\.\d% \|/);
  assert.match(sweepTable([targeted]).split("\n")[2], /^\| `q-sparse@0\.4` \(`q-sparse:0\.\d+`\) \|/);
  const svg = sweepChart(results, "bitllama-1M <test>");
  assert.match(svg, /^<svg [^>]*xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
  assert.is(svg.match(/<circle /g)?.length, 3);
  assert.match(svg, /bitllama-1M &lt;test&gt;/);
});

test.run();
