// Perplexity, by the protocol the README documents (comparisons rely on it):
// - text with <|endoftext|> is a list of documents: each one closed by the separator is
//   stripped and encoded with BOS; an unterminated tail is dropped. Other text is one document.
// - the token stream is cut into windows of `ctx` tokens; each window runs from a fresh
//   KV cache (position 0) and predicts the next token at every position, so every token
//   but the first is predicted exactly once.
// - loss = mean negative log-likelihood; perplexity = exp(loss).
import { OptionError } from "../core/errors.ts";
import type { KVCache } from "./kv-cache.ts";
import { ABORT_SIGNAL, checkOptions } from "../core/options.ts";
import { yieldToEventLoop } from "../runtime/yield.ts";
import type { Tokenizer } from "../text/tokenizer/llama2c.ts";
import { MAX_BLOCK, type Transformer } from "./transformer.ts";

/** Separates documents in a text file (TinyStories' convention). */
export const DOCUMENT_SEPARATOR = "<|endoftext|>";

/** Options of perplexity: window length, progress and abort. */
export interface PerplexityOptions {
  /** Window length in tokens (default: the model's context length). */
  ctx?: number;
  /** Called after each window. */
  onProgress?: (progress: { done: number; total: number }) => void;
  /** Stops the evaluation when aborted. */
  signal?: AbortSignal;
}

/** What perplexity measures. */
export interface PerplexityResult {
  /** Tokens predicted. */
  tokens: number;
  /** Mean negative log-likelihood (nats per token). */
  loss: number;
  /** exp(loss). */
  perplexity: number;
  /** Predicted tokens per second of wall time. */
  tokensPerSecond: number;
}

/** The evaluation token stream of a text (see the protocol above). */
export function evaluationTokens(text: string, tokenizer: Tokenizer): number[] {
  const documents = text.includes(DOCUMENT_SEPARATOR) ? text.split(DOCUMENT_SEPARATOR).slice(0, -1) : [text];
  return documents.map((d) => d.trim()).filter((d) => d.length > 0).flatMap((d) => tokenizer.encode(d, { bos: true }));
}

/** Perplexity of checked token ids, window by window in `cache`. */
export async function perplexityOfTokens(transformer: Transformer, cache: KVCache, tokens: ArrayLike<number>, options: PerplexityOptions = {}): Promise<PerplexityResult> {
  checkOptions(options, { ctx: "number", onProgress: "function", signal: ABORT_SIGNAL }, "perplexity");
  const { ctx = transformer.config.seqLen, onProgress, signal } = options;
  if (!Number.isInteger(ctx) || ctx < 1 || ctx > transformer.config.seqLen) {
    throw new OptionError("ctx", `expected an integer in 1..${transformer.config.seqLen}, got ${ctx}`);
  }
  if (tokens.length < 2) throw new OptionError("text", `needs at least 2 tokens to predict one, got ${tokens.length}`);
  const total = tokens.length - 1;
  let nll = 0, done = 0;
  const started = performance.now();
  for (let start = 0; start < total; start += ctx) {
    signal?.throwIfAborted();
    const window = Array.prototype.slice.call(tokens, start, Math.min(start + ctx, total)) as number[];
    // Block by block, giving abort signals, timers and progress output a turn in between.
    for (let b = 0; b < window.length; b += MAX_BLOCK) {
      transformer.forward(cache, window.slice(b, b + MAX_BLOCK), b, (logits, i) => {
        nll += transformer.negLogLikelihood(logits, tokens[start + b + i + 1]);
      });
      await yieldToEventLoop();
      signal?.throwIfAborted();
    }
    done += window.length;
    onProgress?.({ done, total });
  }
  const seconds = (performance.now() - started) / 1000;
  const loss = nll / total;
  return { tokens: total, loss, perplexity: Math.exp(loss), tokensPerSecond: total / seconds };
}
