// Ablation sweeps: one model, one text, many variants. For each variant: perplexity (the
// README's protocol), evaluation and decode speed, bits per weight and per activation, and
// the fraction of weights active in each product (top-K skips the rest). Each finished
// variant is appended to a JSON-lines file, so an interrupted sweep loses nothing and a
// rerun skips what is done (readSweepRecord reads that file back, repairing a last line cut
// short by a kill); the results become a Markdown table and an SVG chart.
import { BitNetError, OptionError } from "../core/errors.ts";
import { type ByteSource, fileExists, readBytes, sourceName, writeBytes } from "../runtime/files.ts";
import type { LoadOptions } from "../model/load.ts";
import { loadBitNet } from "../model/load.ts";
import { argmax } from "../text/sampler.ts";
import { type ActivationSpec } from "../quant/activations.ts";
import { parseVariant, type Site, SITES } from "../quant/variants.ts";
import type { BitNetModel } from "../model/model.ts";

/** One variant's measurements (one JSON line of a sweep record). */
export interface SweepResult {
  /** The model's file name. */
  model: string;
  /** The text's name. */
  text: string;
  /** Window length (null: the model's context). */
  ctx: number | null;
  /** The variant spec. */
  variant: string;
  /** Predicted tokens. */
  tokens: number;
  /** exp(loss). */
  perplexity: number;
  /** Mean negative log-likelihood. */
  loss: number;
  /** Evaluation throughput (prefill-style, all positions) and one-token decode speed. */
  evalTokensPerSecond: number;
  /** Greedy decode speed after a one-token prompt. */
  decodeTokensPerSecond: number;
  /** Bits per stored weight of the BitLinear layers (log2(3) ternary, 1 sign, 32 fp32 kept as is). */
  bitsPerWeight: number;
  /** Bits per activation entering the BitLinears, weighted by the weights each input meets. */
  bitsPerActivation: number;
  /** The fraction of those weights that meet a non-zero activation (1 - top-K sparsity). */
  activeWeights: number;
  /** DeltaLLM: the fraction of the attention scores' multiply-adds skipped during the evaluation. */
  attentionSkipped?: number;
  /** Measured model-level activation sparsity: the fraction of the BitLinears' weight-activation products that met a zero activation during the evaluation. */
  sparsity?: number;
  /** For "q-sparse@T": the per-input variant the target resolved to. */
  resolved?: string;
}

/** T of a model-level sparsity target "q-sparse@T", else undefined (an OptionError for a T outside (0, 1)). */
export function sparsityTarget(variant: string): number | undefined {
  if (!variant.startsWith("q-sparse@")) return undefined;
  const t = Number(variant.slice("q-sparse@".length));
  if (!(t > 0 && t < 1)) throw new OptionError("variants", `${variant}: the model-level sparsity target T must be in (0, 1)`);
  return t;
}

/**
 * The per-input top-K fraction S whose measured model-level sparsity on the text's first
 * window is T (to 0.001 in S). The inputs' own zeros count too, so S is below T where they
 * hold many (Q-Sparse: "top-K as 70% ... resulting in 40% overall sparsity", ReLU^2 FFNs),
 * and a little above where top-K zeroes values that were 0 already. Bisection, one load per step.
 */
async function calibrateTopK(options: SweepOptions, target: number): Promise<number> {
  let lo = 0, hi = 0.999;
  while (hi - lo > 0.001) {
    const s = (lo + hi) / 2, model = await loadBitNet(options.model, { simd: options.simd, tokenizer: options.tokenizer, variant: `q-sparse:${s}` });
    try {
      const tokens = model.tokenizer!.encode(options.text).slice(0, options.ctx ?? model.config.seqLen);
      model.logits(tokens);
      const { active, total } = model.sparsityCounters.activeProducts;
      if (1 - active / total < target) lo = s;
      else hi = s;
    } finally {
      model.dispose();
    }
  }
  return Number(hi.toFixed(4));
}

/** What runSweep measures and where it reports. */
export interface SweepOptions extends Pick<LoadOptions, "simd" | "tokenizer" | "lmHead"> {
  /** The model (path, URL or bytes). */
  model: ByteSource;
  /** The text to evaluate (its content), and a name for it in the results. */
  text: string;
  /** The text's name in results. */
  textName: string;
  /** Variant names or specs (quant/variants.ts), or "stored" for the checkpoint as it is. */
  variants: string[];
  /** Window length (default: the model's context). */
  ctx?: number;
  /** Tokens decoded to measure decode speed (default 32). */
  decodeTokens?: number;
  /** Results already on record (from the JSON-lines file): variants found here are skipped. */
  done?: SweepResult[];
  /** Called with each finished variant (e.g. to append it to the JSON-lines file). */
  onResult?: (r: SweepResult) => void | Promise<void>;
  /** Progress within each variant's evaluation. */
  onProgress?: (p: { variant: string; index: number; count: number; done: number; total: number }) => void;
}

/** A --variants list: with ";" in it, ";" separates variants (so specs keep their commas);
 *  without, "," separates, except between the entries of one spec (a=b,c=d). */
export function splitVariants(list: string): string[] {
  if (list.includes(";")) return list.split(";").map((p) => p.trim()).filter(Boolean);
  const out: string[] = [];
  for (const part of list.split(",").map((p) => p.trim()).filter(Boolean)) {
    if (part.includes("=") && out.length > 0 && out[out.length - 1].includes("=")) out[out.length - 1] += `,${part}`;
    else out.push(part);
  }
  return out;
}

const bitsOf = (spec: ActivationSpec) => (spec.format === "int4" ? 4 : 8);

/** Weights each site's input meets per token (q/k/v, o, gate/up, down). */
function siteWeights(model: BitNetModel): Record<Site, number> {
  const { dim, hiddenDim, kvDim } = model.config;
  return { qkv: dim * (dim + 2 * kvDim), o: dim * dim, gateUp: 2 * hiddenDim * dim, down: dim * hiddenDim };
}

/** What makes a result the same measurement: model, text, window and variant. */
const resultKey = (r: Pick<SweepResult, "model" | "text" | "ctx" | "variant">) => JSON.stringify([r.model, r.text, r.ctx, r.variant]);

/**
 * Loads the model once per variant and measures each (see SweepResult); finished variants from
 * `done` are skipped, and a variant named twice is measured (and reported to onResult) once.
 */
export async function runSweep(options: SweepOptions): Promise<SweepResult[]> {
  const results: SweepResult[] = [];
  const modelName = sourceName(options.model);
  const key = (variant: string) => resultKey({ model: modelName, text: options.textName, ctx: options.ctx ?? null, variant });
  const done = new Map((options.done ?? []).map((r) => [resultKey(r), r]));
  const variants = [...new Set(options.variants)];
  for (const [index, variant] of variants.entries()) {
    const previous = done.get(key(variant));
    if (previous) {
      results.push(previous);
      continue;
    }
    // "stored": the checkpoint as it is (an fp32 model's baseline); "q-sparse@T": top-K at the S
    // that reaches the model-level sparsity T on the text; otherwise a variant.
    const stored = variant === "stored", target = sparsityTarget(variant);
    const run = target === undefined ? variant : `q-sparse:${await calibrateTopK(options, target)}`;
    const plan = parseVariant(stored ? "b1.58" : run); // fails fast, before loading, on a bad name
    const model = await loadBitNet(options.model, { simd: options.simd, tokenizer: options.tokenizer, lmHead: options.lmHead, variant: stored ? undefined : run });
    try {
      const ppl = await model.perplexity(options.text, {
        ctx: options.ctx,
        onProgress: (p) => options.onProgress?.({ variant, index, count: variants.length, ...p }),
      });
      const { attentionScores: scores, activeProducts } = model.sparsityCounters; // the evaluation's, before the decode below
      // Decode: one token at a time after a one-token prompt, greedy.
      const steps = Math.min(options.decodeTokens ?? 32, model.config.seqLen - 1);
      let logits = model.step(model.tokenizer?.bos ?? 1, 0);
      const t0 = performance.now();
      for (let i = 1; i <= steps; i++) logits = model.step(argmax(logits), i);
      const decodeTokensPerSecond = (steps * 1000) / (performance.now() - t0);
      const w = siteWeights(model), total = SITES.reduce((n, s) => n + w[s], 0);
      const weighted = (f: (s: ActivationSpec) => number) => SITES.reduce((n, s) => n + w[s] * f(plan[s]), 0) / total;
      const weights = model.projectionWeights, fp32 = weights === "fp32" || weights === "fbi";
      const result: SweepResult = {
        model: modelName,
        text: options.textName,
        ctx: options.ctx ?? null,
        variant,
        tokens: ppl.tokens,
        perplexity: ppl.perplexity,
        loss: ppl.loss,
        evalTokensPerSecond: ppl.tokensPerSecond,
        decodeTokensPerSecond,
        // Information bits of the codes, plus one f32 scale per group where groups are named.
        bitsPerWeight: weights === "fbi"
          ? fbiBits(model)
          : fp32
          ? 32
          : (weights === "sign" ? 1 : Math.log2(3)) + (typeof plan.weightScales === "number" ? 32 / plan.weightScales : 0),
        bitsPerActivation: fp32 ? 32 : weighted(bitsOf),
        activeWeights: fp32 ? 1 : weighted((s) => 1 - Math.floor(s.sparsity * 1e6) / 1e6),
      };
      if (plan.delta) result.attentionSkipped = 1 - scores.done / scores.dense;
      if (activeProducts.total > 0) result.sparsity = 1 - activeProducts.active / activeProducts.total;
      if (target !== undefined) result.resolved = run;
      results.push(result);
      await options.onResult?.(result);
    } finally {
      model.dispose();
    }
  }
  return results;
}

const isResult = (v: unknown): v is SweepResult => {
  const r = v as SweepResult;
  return typeof r === "object" && r !== null && typeof r.model === "string" && typeof r.text === "string" && typeof r.variant === "string" &&
    (r.ctx === null || typeof r.ctx === "number") && typeof r.perplexity === "number";
};

/**
 * The results on record in a sweep's JSON-lines file (none when it does not exist), for
 * `done`. Each result is appended as one line ending in a newline, so a run killed while
 * appending can leave only a last line without its newline: that line is dropped if it is cut
 * short, kept if whole, and the file is rewritten without it or with its newline, so the next
 * append starts a line of its own. Any other line that is not a result is a BitNetError naming
 * the file and line (nothing on record is thrown away). A result recorded twice counts once (the last).
 */
export async function readSweepRecord(path: string): Promise<SweepResult[]> {
  if (!(await fileExists(path))) return [];
  const text = new TextDecoder().decode(await readBytes(path));
  const lines = text.split("\n"), tail = lines.pop()!; // "" when the file ends with its newline
  const parse = (line: string): SweepResult | null => {
    try {
      const value: unknown = JSON.parse(line);
      return isResult(value) ? value : null;
    } catch {
      return null;
    }
  };
  const results = new Map<string, SweepResult>();
  for (const [i, line] of lines.entries()) {
    if (!line.trim()) continue;
    const r = parse(line);
    if (!r) throw new BitNetError(`${path}: line ${i + 1} is not a sweep result (a JSON object with model, text, ctx, variant, perplexity): ${JSON.stringify(line.slice(0, 80))}`);
    results.set(resultKey(r), r);
  }
  if (tail.trim()) {
    const r = parse(tail); // the last line, without its newline: whole, or cut short by a kill
    if (r) results.set(resultKey(r), r);
    await writeBytes(path, new TextEncoder().encode(lines.map((l) => l + "\n").join("") + (r ? tail + "\n" : "")));
  }
  return [...results.values()];
}

/** FBI-LLM's bits per weight: the sign, plus an f32 alpha and beta per input column of each projection. */
function fbiBits(model: BitNetModel): number {
  const { dim, hiddenDim } = model.config, w = siteWeights(model);
  const columns = 6 * dim + hiddenDim; // q, k, v, o, gate, up: dim columns each; down: hiddenDim
  return 1 + (64 * columns) / SITES.reduce((n, s) => n + w[s], 0);
}

/** The results as a Markdown table. */
export function sweepTable(results: SweepResult[]): string {
  const delta = results.some((r) => r.attentionSkipped !== undefined), measured = results.some((r) => r.sparsity !== undefined);
  const percent = (v: number | undefined) => (v === undefined ? "-" : `${(100 * v).toFixed(1)}%`);
  const head = "| variant | perplexity | loss | bits / weight | bits / activation | active weights |" + (measured ? " sparsity (measured) |" : "") +
    (delta ? " attention scores skipped |" : "") + " eval tok/s | decode tok/s |\n|---|---:|---:|---:|---:|---:|" + (measured ? "---:|" : "") + (delta ? "---:|" : "") +
    "---:|---:|";
  const rows = results.map((r) =>
    `| \`${r.variant}\`${r.resolved ? ` (\`${r.resolved}\`)` : ""} | ${r.perplexity.toFixed(4)} | ${r.loss.toFixed(4)} | ${r.bitsPerWeight.toFixed(2)} | ${
      r.bitsPerActivation.toFixed(2)
    } | ${(100 * r.activeWeights).toFixed(0)}% |` + (measured ? ` ${percent(r.sparsity)} |` : "") + (delta ? ` ${percent(r.attentionSkipped)} |` : "") +
    ` ${r.evalTokensPerSecond.toFixed(0)} | ${r.decodeTokensPerSecond.toFixed(0)} |`
  );
  return [head, ...rows].join("\n");
}

const escape = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

/**
 * Perplexity (log scale) against bits per activation, one labelled point per variant, as a
 * small standalone SVG (no charting library: none we found renders to SVG text in every
 * runtime without a DOM, and this is thirty lines).
 */
export function sweepChart(results: SweepResult[], title: string): string {
  const W = 640, H = 400, L = 70, R = 20, T = 40, B = 50;
  const xs = results.map((r) => r.bitsPerActivation), ys = results.map((r) => Math.log10(r.perplexity));
  const [x0, x1] = [Math.min(0, ...xs), Math.max(...xs) * 1.1 || 1], [y0, y1] = [Math.min(...ys) - 0.05, Math.max(...ys) + 0.05];
  const px = (x: number) => L + ((x - x0) / (x1 - x0)) * (W - L - R), py = (y: number) => H - B - ((y - y0) / (y1 - y0 || 1)) * (H - T - B);
  const ticks = Array.from({ length: 5 }, (_, i) => y0 + ((y1 - y0) * i) / 4);
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="22" text-anchor="middle" font-size="14">${escape(title)}</text>`,
    `<line x1="${L}" y1="${H - B}" x2="${W - R}" y2="${H - B}" stroke="black"/><line x1="${L}" y1="${T}" x2="${L}" y2="${H - B}" stroke="black"/>`,
    `<text x="${(L + W - R) / 2}" y="${H - 12}" text-anchor="middle">bits per activation</text>`,
    `<text transform="translate(16 ${(T + H - B) / 2}) rotate(-90)" text-anchor="middle">perplexity (log scale)</text>`,
    ...ticks.map((y) => `<text x="${L - 6}" y="${py(y) + 4}" text-anchor="end">${(10 ** y).toPrecision(3)}</text>`),
    ...[x0, (x0 + x1) / 2, x1].map((x) => `<text x="${px(x)}" y="${H - B + 16}" text-anchor="middle">${x.toFixed(1)}</text>`),
    ...results.map((r, i) =>
      `<circle cx="${px(xs[i]).toFixed(1)}" cy="${py(ys[i]).toFixed(1)}" r="4" fill="#1f77b4"/>` +
      `<text x="${(px(xs[i]) + 6).toFixed(1)}" y="${(py(ys[i]) - 6).toFixed(1)}">${escape(r.variant)}</text>`
    ),
    "</svg>",
  ];
  return parts.join("\n") + "\n";
}
