// Choosing the next token from logits: greedy, temperature, top-k, top-p (nucleus),
// following llama2.c's sampler, with its xorshift64* generator so a seed gives the same
// stream in every runtime (BigInt arithmetic is exact everywhere).
import { OptionError } from "./errors.ts";

/** How the next token is picked. */
export interface SamplingOptions {
  /** 0 = greedy (argmax); default 1. */
  temperature?: number;
  /** Keep only the k most likely tokens (0 = off, the default). */
  topK?: number;
  /** Nucleus sampling: smallest set of tokens whose probability exceeds p; in (0, 1], default 0.9; 1 = off. */
  topP?: number;
  /** Seed of the random stream (default: the clock). */
  seed?: number;
}

const MASK64 = (1n << 64n) - 1n;

/** llama2.c's random_u32 / random_f32 (xorshift64*). */
export class Xorshift64Star {
  #state: bigint;
  /** Seeds the generator (a zero seed is replaced, as xorshift needs a non-zero state). */
  constructor(seed: number) {
    this.#state = BigInt.asUintN(64, BigInt(Math.trunc(seed))) || 1n;
  }
  /** The next 32 random bits. */
  nextU32(): number {
    let s = this.#state;
    s ^= s >> 12n;
    s = (s ^ (s << 25n)) & MASK64;
    s ^= s >> 27n;
    this.#state = s;
    return Number(((s * 0x2545f4914f6cdd1dn) & MASK64) >> 32n);
  }
  /** A float in [0, 1). */
  nextF32(): number {
    return (this.nextU32() >>> 8) / 16777216;
  }
}

export function checkSamplingOptions(o: SamplingOptions): Required<SamplingOptions> {
  const { temperature = 1, topK = 0, topP = 0.9, seed = Date.now() } = o;
  if (typeof temperature !== "number" || !(temperature >= 0) || !Number.isFinite(temperature)) {
    throw new OptionError("temperature", `expected a finite number >= 0, got ${temperature}`);
  }
  if (!Number.isInteger(topK) || topK < 0) throw new OptionError("topK", `expected an integer >= 0, got ${topK}`);
  if (typeof topP !== "number" || !(topP > 0 && topP <= 1)) throw new OptionError("topP", `expected a number in (0, 1], got ${topP}`);
  if (!Number.isFinite(seed)) throw new OptionError("seed", `expected a finite number, got ${seed}`);
  return { temperature, topK, topP, seed };
}

/** Picks tokens from logits as llama2.c does: greedy, temperature, top-k, top-p. */
export class Sampler {
  readonly #o: Required<SamplingOptions>;
  readonly #rng: Xorshift64Star;

  /** A sampler with its own random stream. */
  constructor(options: SamplingOptions = {}) {
    this.#o = checkSamplingOptions(options);
    this.#rng = new Xorshift64Star(this.#o.seed);
  }

  /** The next token for these logits (not modified). */
  sample(logits: Float32Array): number {
    const { temperature, topK, topP } = this.#o;
    if (temperature === 0) return argmax(logits);
    // Candidates (top-k or all), probabilities by softmax of logits / temperature.
    let ids = Array.from(logits.keys());
    if (topK > 0 && topK < logits.length) ids = ids.sort((a, b) => logits[b] - logits[a] || a - b).slice(0, topK);
    let max = -Infinity;
    for (const i of ids) max = Math.max(max, logits[i]);
    const probs = ids.map((i) => Math.exp((logits[i] - max) / temperature));
    const total = probs.reduce((a, b) => a + b, 0);
    for (let j = 0; j < probs.length; j++) probs[j] /= total;
    const coin = this.#rng.nextF32();
    if (topP >= 1) return ids[pick(probs, coin)];
    // Nucleus: most probable first, cut where the cumulative probability passes topP.
    const order = probs.map((_, j) => j).sort((a, b) => probs[b] - probs[a] || a - b);
    let cumulative = 0, last = order.length - 1;
    for (let j = 0; j < order.length; j++) {
      cumulative += probs[order[j]];
      if (cumulative > topP) {
        last = j;
        break;
      }
    }
    const kept = order.slice(0, last + 1);
    return ids[kept[pick(kept.map((j) => probs[j]), coin * kept.reduce((a, j) => a + probs[j], 0))]];
  }
}

/** Index of the largest value (the first on ties). */
export function argmax(values: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i] > values[best]) best = i;
  return best;
}

// Index whose cumulative weight first exceeds r (the last one if rounding leaves r above all).
function pick(weights: number[], r: number): number {
  let cumulative = 0;
  for (let i = 0; i < weights.length; i++) {
    cumulative += weights[i];
    if (r < cumulative) return i;
  }
  return weights.length - 1;
}
