// What a generation is asked for and what it gives back: the options (sampling, length,
// stop strings, abort, context shift), the streamed pieces, the final result, and the
// stop-string matcher that holds back text which may yet become a stop string.
import { OptionError } from "../core/errors.ts";
import { ABORT_SIGNAL, checkOptions, describe, type OptionRules } from "../core/options.ts";
import { checkSamplingOptions, type SamplingOptions } from "./sampler.ts";

/** Options of generate, chat and complete: sampling, length, stop strings, abort, context shift. */
export interface GenerateOptions extends SamplingOptions {
  /** Most tokens to generate (default: until a stop, or the context is full). */
  maxTokens?: number;
  /** Ends generation when aborted, with finishReason "abort" (the text so far is kept). */
  signal?: AbortSignal;
  /** Text that ends generation where it appears, also across token boundaries; it is not part of the output. */
  stop?: string | string[];
  /**
   * When the context fills: keep the first `keep` tokens (default 1, the BOS), drop the
   * oldest half of the rest, recompute the kept tokens' keys and values and go on (as
   * llama.cpp's context shift, computed afresh). Off by default: generation then ends with
   * finishReason "context".
   */
  contextShift?: boolean | { keep?: number };
  /** Give the event loop a turn between tokens and prefill blocks (default true; its cost is measured in docs/benchmarks.md). */
  cooperative?: boolean;
}

/** One generated token and the text it completes (UTF-8 safe). */
export interface GeneratedToken {
  /** Token id (-1 for a trailing piece of text without a token). */
  token: number;
  /** The text this token adds (may be "" while a multi-byte character or a possible stop string is incomplete). */
  text: string;
}

/** Why a generation ended. */
export type FinishReason = "stop" | "length" | "abort" | "context";

/** What a generation produced: the streamed generator's return value, and complete()'s result. */
export interface GenerationResult {
  /** The generated text (without the prompt and without a stop string). */
  text: string;
  /** The generated token ids (an end-of-turn or end-of-text token that stopped it is not included). */
  tokens: number[];
  /** "stop": a stop token or string; "length": maxTokens; "abort": the signal; "context": the context is full. */
  finishReason: FinishReason;
  /** Token counts: the prompt in context, the generated tokens, and the prompt tokens whose keys and values were already cached. */
  usage: { promptTokens: number; completionTokens: number; cachedTokens: number };
  /** Wall time of the prefill (to the first token's logits) and of the decoding after it, and their speeds. */
  timings: { prefillMs: number; decodeMs: number; promptTokensPerSecond: number; tokensPerSecond: number };
}

const isNonNegativeInteger = (v: unknown) => Number.isInteger(v) && (v as number) >= 0;

/** The keys generate options may have, and what each accepts. */
export const GENERATE_OPTIONS: OptionRules = {
  maxTokens: "number",
  temperature: "number",
  topK: "number",
  topP: "number",
  seed: "number",
  minP: "number",
  repetitionPenalty: "number",
  frequencyPenalty: "number",
  presencePenalty: "number",
  penaltyLastN: "number",
  cooperative: "boolean",
  signal: ABORT_SIGNAL,
  stop: { test: (v) => typeof v === "string" || (Array.isArray(v) && v.every((s) => typeof s === "string")), expected: "a string or an array of strings" },
  contextShift: {
    test: (v) =>
      typeof v === "boolean" ||
      (typeof v === "object" && v !== null && Object.keys(v).every((k) => k === "keep") &&
        ((v as { keep?: unknown }).keep === undefined || isNonNegativeInteger((v as { keep: unknown }).keep))),
    expected: "a boolean or { keep: integer >= 0 }",
  },
};

/** Checks a generate options object (unknown keys, types, ranges); throws OptionError. */
export function checkGenerateOptions(options: GenerateOptions): void {
  checkOptions(options, GENERATE_OPTIONS, "generate");
  const { maxTokens } = options;
  if (maxTokens !== undefined && !(Number.isInteger(maxTokens) && maxTokens > 0)) throw new OptionError("maxTokens", `expected an integer > 0, got ${describe(maxTokens)}`);
  checkSamplingOptions(options);
  if ([options.stop ?? []].flat().some((s) => s.length === 0)) throw new OptionError("stop", "an empty stop string would stop at once");
}

/** How many tokens `contextShift` keeps at the start (undefined: off). */
export function shiftKeep(option: GenerateOptions["contextShift"]): number | undefined {
  if (!option) return undefined;
  return option === true ? 1 : option.keep ?? 1;
}

/** Finds stop strings in streamed text: emits what can no longer be the start of one. */
export class StopMatcher {
  readonly #stops: string[];
  #pending = "";

  /** Matches `stop` (none: text passes straight through). */
  constructor(stop: string | string[] | undefined) {
    this.#stops = [stop ?? []].flat();
  }

  /** Adds a piece of text: returns the text now safe to emit, and whether a stop string ended it. */
  push(text: string): { text: string; stopped: boolean } {
    if (this.#stops.length === 0) return { text, stopped: false };
    const all = this.#pending + text;
    let first = -1;
    for (const s of this.#stops) {
      const at = all.indexOf(s);
      if (at >= 0 && (first < 0 || at < first)) first = at;
    }
    if (first >= 0) {
      this.#pending = "";
      return { text: all.slice(0, first), stopped: true };
    }
    // Hold back the longest tail that begins some stop string.
    let hold = 0;
    for (const s of this.#stops) {
      for (let n = Math.min(s.length - 1, all.length); n > hold; n--) {
        if (all.endsWith(s.slice(0, n))) {
          hold = n;
          break;
        }
      }
    }
    this.#pending = all.slice(all.length - hold);
    return { text: all.slice(0, all.length - hold), stopped: false };
  }

  /** The held-back text, at the end of a generation that no stop string ended. */
  flush(): string {
    const rest = this.#pending;
    this.#pending = "";
    return rest;
  }
}

/** Runs a streamed generation to its end and returns its result. */
export async function drain(generation: AsyncGenerator<GeneratedToken, GenerationResult>): Promise<GenerationResult> {
  for (;;) {
    const step = await generation.next();
    if (step.done) return step.value;
  }
}
