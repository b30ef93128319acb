// Choosing the next token from logits: repetition / frequency / presence penalties over
// the last tokens (as llama.cpp applies them), then greedy, or top-k, temperature, min-p
// and top-p (nucleus) following llama2.c's sampler, with its xorshift64* generator so a
// seed gives the same stream in every runtime (BigInt arithmetic is exact everywhere).
import { OptionError } from "../core/errors.ts";
import { describe } from "../core/options.ts";

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
  /** Drop tokens whose probability is below minP times the most likely one's (after temperature; 0 = off, the default). */
  minP?: number;
  /** Divides positive logits (multiplies negative ones) of tokens seen in the last penaltyLastN tokens; 1 = off (default). */
  repetitionPenalty?: number;
  /** Subtracted from a logit once per occurrence in the last penaltyLastN tokens; 0 = off (default). */
  frequencyPenalty?: number;
  /** Subtracted from the logit of any token present in the last penaltyLastN tokens; 0 = off (default). */
  presencePenalty?: number;
  /** How many of the latest tokens (prompt included) the penalties look at; default 64, 0 = none. */
  penaltyLastN?: number;
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

/** Checks each sampling option's range and fills in the defaults. */
export function checkSamplingOptions(o: SamplingOptions): Required<SamplingOptions> {
  const {
    temperature = 1,
    topK = 0,
    topP = 0.9,
    seed = Date.now(),
    minP = 0,
    repetitionPenalty = 1,
    frequencyPenalty = 0,
    presencePenalty = 0,
    penaltyLastN = 64,
  } = o;
  const check = (name: string, value: unknown, ok: (v: number) => boolean, expected: string) => {
    if (typeof value !== "number" || !ok(value)) throw new OptionError(name, `expected ${expected}, got ${describe(value)}`);
  };
  check("temperature", temperature, (v) => v >= 0 && Number.isFinite(v), "a finite number >= 0");
  check("topK", topK, (v) => Number.isInteger(v) && v >= 0, "an integer >= 0");
  check("topP", topP, (v) => v > 0 && v <= 1, "a number in (0, 1]");
  check("seed", seed, Number.isFinite, "a finite number");
  check("minP", minP, (v) => v >= 0 && v < 1, "a number in [0, 1)");
  check("repetitionPenalty", repetitionPenalty, (v) => v > 0 && Number.isFinite(v), "a finite number > 0");
  check("frequencyPenalty", frequencyPenalty, Number.isFinite, "a finite number");
  check("presencePenalty", presencePenalty, Number.isFinite, "a finite number");
  check("penaltyLastN", penaltyLastN, (v) => Number.isInteger(v) && v >= 0, "an integer >= 0");
  return { temperature, topK, topP, seed, minP, repetitionPenalty, frequencyPenalty, presencePenalty, penaltyLastN };
}

/** The penalties' effect on logits, in place: each token seen in `recent` is penalised once, by its count. */
export function applyPenalties(
  logits: Float32Array,
  recent: ArrayLike<number>,
  o: Pick<Required<SamplingOptions>, "repetitionPenalty" | "frequencyPenalty" | "presencePenalty">,
): void {
  const counts = new Map<number, number>();
  for (let i = 0; i < recent.length; i++) counts.set(recent[i], (counts.get(recent[i]) ?? 0) + 1);
  for (const [id, count] of counts) {
    if (id < 0 || id >= logits.length) continue;
    let l = logits[id];
    l = l > 0 ? l / o.repetitionPenalty : l * o.repetitionPenalty;
    logits[id] = l - count * o.frequencyPenalty - o.presencePenalty;
  }
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

  /** The penalties' window: how many of the latest tokens `sample` should be given. */
  get penaltyWindow(): number {
    const { repetitionPenalty, frequencyPenalty, presencePenalty, penaltyLastN } = this.#o;
    return repetitionPenalty === 1 && frequencyPenalty === 0 && presencePenalty === 0 ? 0 : penaltyLastN;
  }

  /** The next token for these logits (not modified); `recent` are the latest tokens, for the penalties. */
  sample(logits: Float32Array, recent: ArrayLike<number> = []): number {
    const { temperature, topK, topP, minP } = this.#o;
    if (this.penaltyWindow > 0 && recent.length > 0) {
      logits = logits.slice();
      applyPenalties(logits, Array.prototype.slice.call(recent, -this.penaltyWindow), this.#o);
    }
    if (temperature === 0) return argmax(logits);
    // Candidates (top-k or all), probabilities by softmax of logits / temperature.
    let ids = Array.from(logits.keys());
    if (topK > 0 && topK < logits.length) ids = ids.sort((a, b) => logits[b] - logits[a] || a - b).slice(0, topK);
    let max = -Infinity;
    for (const i of ids) max = Math.max(max, logits[i]);
    let probs = ids.map((i) => Math.exp((logits[i] - max) / temperature));
    if (minP > 0) {
      // The most likely token has weight exp(0) = 1, so minP is the weight to keep.
      ids = ids.filter((_, j) => probs[j] >= minP);
      probs = probs.filter((p) => p >= minP);
    }
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
