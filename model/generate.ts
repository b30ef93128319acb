// Streaming generation: prefill the prompt as one block, then sample and feed one token
// at a time. Ends at maxTokens, at the end of the context, or at one of the tokenizer's
// stop tokens (llama2.c: BOS or EOS; Llama 3: end of text or end of turn).
import { OptionError } from "./errors.ts";
import { Sampler, type SamplingOptions } from "./sampler.ts";
import type { Tokenizer } from "./tokenizer/llama2c.ts";
import type { Transformer } from "./transformer.ts";

/** Options of generate and chat: sampling, length and abort. */
export interface GenerateOptions extends SamplingOptions {
  /** Most tokens to generate (default: until the context is full). */
  maxTokens?: number;
  /** Stops generation when aborted. */
  signal?: AbortSignal;
}

/** One generated token and the text it completes (UTF-8 safe). */
export interface GeneratedToken {
  /** Token id (-1 for a trailing piece of text without a token). */
  token: number;
  /** The text this token adds (may be "" while a multi-byte character is incomplete). */
  text: string;
}

/** Continues `promptTokens` (already encoded, BOS included where the model wants it). */
export async function* generateTokens(
  transformer: Transformer, tokenizer: Tokenizer, promptTokens: number[], options: GenerateOptions = {},
): AsyncGenerator<GeneratedToken> {
  const { maxTokens = transformer.config.seqLen, signal } = options;
  if (!Number.isInteger(maxTokens) || maxTokens <= 0) throw new OptionError("maxTokens", `expected an integer > 0, got ${maxTokens}`);
  if (promptTokens.length === 0) throw new OptionError("prompt", "encodes to no tokens: nothing to continue");
  const sampler = new Sampler(options);
  const seqLen = transformer.config.seqLen;
  if (promptTokens.length >= seqLen) {
    throw new OptionError("prompt", `${promptTokens.length} tokens leave no room in the ${seqLen}-token context`);
  }
  signal?.throwIfAborted();
  let logits = transformer.forward(promptTokens, 0);
  let pos = promptTokens.length, prev = promptTokens[pos - 1];
  const decoder = new TextDecoder();
  for (let n = 0; n < maxTokens && pos < seqLen; n++) {
    signal?.throwIfAborted();
    const token = sampler.sample(transformer.logitsAt(logits));
    if (tokenizer.stopTokens.has(token)) break;
    yield { token, text: decoder.decode(tokenizer.decodeBytes(prev, token), { stream: true }) };
    prev = token;
    if (n + 1 < maxTokens && pos + 1 < seqLen) logits = transformer.forward([token], pos);
    pos++;
  }
  const tail = decoder.decode();
  if (tail) yield { token: -1, text: tail };
}
