// A session: one KV cache and the tokens in it. Text or a chat turn is appended to what the
// session already holds; only the tokens past the longest cached prefix are computed
// (a new chat turn prefills its new tokens, not the whole conversation). Calls on one
// session run one at a time; sessions of one model interleave token by token, and their
// decoding steps run as one batched forward pass when several generate at once (batch.ts),
// each exactly as it would run alone: a row of a pass reads nothing of another session's
// but the shared weights.
import { yieldToEventLoop } from "../runtime/yield.ts";
import { type ChatMessage, renderChat } from "../text/chat.ts";
import { BitNetError, OptionError } from "../core/errors.ts";
import { checkGenerateOptions, drain, type FinishReason, type GeneratedToken, type GenerateOptions, type GenerationResult, shiftKeep, StopMatcher } from "../text/generate.ts";
import type { KVCache } from "./kv-cache.ts";
import type { DecodeBatcher } from "./batch.ts";
import { checkOptions, describe } from "../core/options.ts";
import { Sampler } from "../text/sampler.ts";
import type { Tokenizer } from "../text/tokenizer/llama2c.ts";
import { MAX_BLOCK, type Transformer } from "./transformer.ts";

/** Options of createSession. */
export interface SessionOptions {
  /** Positions its KV cache holds (default and maximum: the model's context). */
  contextLength?: number;
  /** A system message that starts the conversation (chat). */
  system?: string;
}

/** What a session needs of its model (made by BitNetModel). */
export interface ModelCore {
  /** The forward pass (throws once the model is disposed). */
  transformer(): Transformer;
  tokenizer: Tokenizer | null;
  /** The chat template chat turns are rendered with (the checkpoint's, or the one given at load). */
  chatTemplate: string | undefined;
  /** Decoding steps of the model's sessions, run together when several generate at once. */
  batcher: DecodeBatcher;
  source: string;
}

/** Checks token ids before they reach a kernel: integers within the vocabulary. */
export function checkTokenIds(tokens: ArrayLike<number>, vocabSize: number, what = "tokens"): void {
  if (tokens === null || typeof tokens !== "object" || typeof tokens.length !== "number") throw new OptionError(what, `expected an array of token ids, got ${describe(tokens)}`);
  for (let i = 0; i < tokens.length; i++) {
    const id = tokens[i];
    if (!Number.isInteger(id) || id < 0 || id >= vocabSize) {
      throw new OptionError(what, `token id ${typeof id === "number" ? id : describe(id)} at index ${i} is not an integer within the vocabulary 0..${vocabSize - 1}`);
    }
  }
}

const SESSION_OPTIONS = { contextLength: "number", system: "string" } as const;

/** A conversation or a text with its own KV cache (see BitNetModel.createSession). */
export class Session {
  readonly #model: ModelCore;
  #cache: KVCache | null;
  /** The session's token ids: prompts and replies, in order. */
  #tokens: number[] = [];
  /** How many of #tokens have their keys and values in the cache. */
  #cached = 0;
  /** After reset(): the tokens whose keys and values the cache still holds. */
  #held: number[] = [];
  #messages: ChatMessage[] = [];
  #queue: Promise<void> = Promise.resolve();

  /** Made by BitNetModel.createSession. */
  constructor(model: ModelCore, options: SessionOptions = {}) {
    checkOptions(options, SESSION_OPTIONS, "createSession");
    const t = model.transformer(), max = t.config.seqLen;
    const { contextLength = max, system } = options;
    if (!Number.isInteger(contextLength) || contextLength < 2 || contextLength > max) {
      throw new OptionError("contextLength", `expected an integer in 2..${max} (the model's context), got ${contextLength}`);
    }
    this.#model = model;
    this.#cache = t.newCache(contextLength);
    if (system !== undefined) this.#messages.push({ role: "system", content: system });
  }

  /** Positions the session's KV cache holds. */
  get contextLength(): number {
    return this.#live().length;
  }

  /** The token ids the session holds (prompts and replies). */
  get tokens(): readonly number[] {
    return this.#tokens;
  }

  /** The conversation so far (chat). */
  get messages(): readonly ChatMessage[] {
    return this.#messages;
  }

  /** Bytes of WebAssembly memory the session's KV cache takes. */
  get cacheBytes(): number {
    return this.#live().bytes;
  }

  /** Streams a continuation of the session's text by `input` (text, or token ids); remembered. */
  generate(input: string | ArrayLike<number> = "", options: GenerateOptions = {}): AsyncGenerator<GeneratedToken, GenerationResult> {
    checkGenerateOptions(options);
    this.#live();
    return this.#inTurn(() => this.#run(this.#appended(input), options)); // the session's tokens as they are when its turn comes
  }

  /** Continues the session's text by `input` and returns the generated text (remembered). */
  async prompt(input: string | ArrayLike<number>, options: GenerateOptions = {}): Promise<string> {
    return (await drain(this.generate(input, options))).text;
  }

  /** Streams the reply to a chat message (the conversation and the reply are remembered). */
  chatStream(message: string | ChatMessage | ChatMessage[], options: GenerateOptions = {}): AsyncGenerator<GeneratedToken, GenerationResult> {
    checkGenerateOptions(options);
    const added = typeof message === "string" ? [{ role: "user" as const, content: message }] : [message].flat();
    renderChat(this.#tokenizer(), [...this.#messages, ...added], this.#model.source, this.#model.chatTemplate); // template and messages checked now
    return this.#inTurn(() => this.#chatTurn(added, options));
  }

  /** Answers a chat message with the checkpoint's chat template and returns the reply (remembered). */
  async chat(message: string | ChatMessage | ChatMessage[], options: GenerateOptions = {}): Promise<string> {
    return (await drain(this.chatStream(message, options))).text;
  }

  /**
   * Forgets the text and the conversation. The cache keeps its keys and values: a next prompt
   * that starts the same way (the same system prompt, or a chat's earlier turns sent again)
   * computes only the tokens after the shared start.
   */
  reset(): void {
    this.#held = [...this.cachedTokens];
    this.#tokens = [];
    this.#cached = 0;
    this.#messages = this.#messages.filter((m) => m.role === "system").slice(0, 1);
  }

  /** The tokens whose keys and values the cache holds (positions 0..), which a next generation reuses where its tokens start the same. */
  get cachedTokens(): readonly number[] {
    return this.#cached > 0 ? this.#tokens.slice(0, this.#cached) : this.#held;
  }

  /** Frees the session's KV cache; the session cannot be used afterwards. */
  dispose(): void {
    this.#cache?.dispose();
    this.#cache = null;
  }

  /** `using session = model.createSession()` disposes it at the end of the block. */
  [Symbol.dispose](): void {
    this.dispose();
  }

  #live(): KVCache {
    this.#model.transformer(); // throws once the model is disposed
    if (!this.#cache) throw new BitNetError(`${this.#model.source}: session was disposed`);
    return this.#cache;
  }

  #tokenizer(): Tokenizer {
    if (!this.#model.tokenizer) throw new BitNetError(`${this.#model.source}: no tokenizer was loaded (tokenizer: "none"); pass token ids`);
    return this.#model.tokenizer;
  }

  /** The session's tokens followed by `input`: text (BOS first when the session is empty) or ids. */
  #appended(input: string | ArrayLike<number>): number[] {
    const ids = typeof input === "string"
      ? (input === "" && this.#tokens.length > 0 ? [] : this.#tokenizer().encode(input, { bos: this.#tokens.length === 0 }))
      : Array.from(input);
    if (typeof input !== "string") checkTokenIds(ids, this.#model.transformer().config.vocabSize, "prompt");
    return [...this.#tokens, ...ids];
  }

  async *#chatTurn(added: ChatMessage[], options: GenerateOptions): AsyncGenerator<GeneratedToken, GenerationResult> {
    this.#messages.push(...added);
    const tokenizer = this.#tokenizer();
    const result = yield* this.#run(tokenizer.encode(renderChat(tokenizer, this.#messages, this.#model.source, this.#model.chatTemplate), { bos: false }), options);
    this.#messages.push({ role: "assistant", content: result.text });
    return result;
  }

  /** Runs `body` once the calls before it on this session have finished (as one of the model's generating sessions). */
  async *#inTurn<T>(body: () => AsyncGenerator<GeneratedToken, T>): AsyncGenerator<GeneratedToken, T> {
    let release!: () => void;
    const before = this.#queue;
    this.#queue = new Promise<void>((resolve) => (release = resolve));
    await before;
    const leave = this.#model.batcher.enter();
    try {
      return yield* body();
    } finally {
      leave();
      release();
    }
  }

  /** Generates after the token sequence `target` (the session's tokens become it). */
  async *#run(target: number[], options: GenerateOptions): AsyncGenerator<GeneratedToken, GenerationResult> {
    const started = performance.now();
    const cache = this.#live(), tokenizer = this.#model.tokenizer;
    let tokens = target;
    const { maxTokens = Infinity, signal, cooperative = true } = options;
    const keep = shiftKeep(options.contextShift);
    if (tokens.length === 0) throw new OptionError("prompt", "encodes to no tokens: nothing to continue");
    if (keep !== undefined && keep > cache.length - 2) throw new OptionError("contextShift", `keep ${keep} leaves nothing to drop in a ${cache.length}-token context`);
    while (tokens.length >= cache.length) {
      if (keep === undefined) throw new OptionError("prompt", `${tokens.length} tokens leave no room in the ${cache.length}-token context`);
      tokens = shifted(tokens, keep);
    }
    const sampler = new Sampler(options);
    const held = this.cachedTokens;
    let cached = 0;
    while (cached < Math.min(held.length, tokens.length - 1) && held[cached] === tokens[cached]) cached++;
    this.#held = [];
    const promptTokens = tokens.length;
    this.#tokens = [...tokens];
    this.#cached = cached;

    const generated: number[] = [], stops = new StopMatcher(options.stop), decoder = new TextDecoder();
    let text = "", finishReason: FinishReason | undefined, prefillMs = 0, firstAt = 0, prev = tokens[tokens.length - 1];
    const finish = (reason: FinishReason): GenerationResult => {
      const now = performance.now(), decodeMs = now - started - prefillMs;
      return {
        text,
        tokens: generated,
        finishReason: reason,
        usage: { promptTokens, completionTokens: generated.length, cachedTokens: cached },
        timings: {
          prefillMs,
          decodeMs,
          promptTokensPerSecond: prefillMs > 0 ? ((promptTokens - cached) * 1000) / prefillMs : 0,
          // The first token comes with the prefill; the decode speed counts the ones after it.
          tokensPerSecond: generated.length > 1 ? ((generated.length - 1) * 1000) / (now - firstAt) : 0,
        },
      };
    };
    if (signal?.aborted) return finish("abort");
    let logits = await this.#feed(cache, cooperative, signal);
    prefillMs = performance.now() - started;
    if (cooperative) await yieldToEventLoop();
    if (signal?.aborted) logits = null;
    for (;;) {
      if (!logits) {
        finishReason = "abort";
        break;
      }
      const token = sampler.sample(logits, this.#tokens);
      if (tokenizer?.stopTokens.has(token)) {
        finishReason = "stop";
        break;
      }
      if (generated.push(token) === 1) firstAt = performance.now();
      this.#tokens.push(token);
      const piece = stops.push(tokenizer ? decoder.decode(tokenizer.decodeBytes(prev, token), { stream: true }) : "");
      prev = token;
      text += piece.text;
      yield { token, text: piece.text };
      if (piece.stopped) return finish("stop");
      if (generated.length >= maxTokens) {
        finishReason = "length";
        break;
      }
      if (this.#tokens.length >= cache.length) {
        if (keep === undefined) {
          finishReason = "context";
          break;
        }
        this.#tokens = shifted(this.#tokens, keep);
        this.#cached = Math.min(this.#cached, keep);
      }
      if (cooperative) await yieldToEventLoop();
      logits = signal?.aborted ? null : await this.#feed(cache, cooperative, signal);
    }
    const tail = stops.flush() + decoder.decode();
    if (tail) {
      text += tail;
      yield { token: -1, text: tail };
    }
    return finish(finishReason!);
  }

  /** Computes the keys and values of the uncached tokens, block by block; the last one's logits (null if aborted). */
  async #feed(cache: KVCache, cooperative: boolean, signal: AbortSignal | undefined): Promise<Float32Array | null> {
    if (this.#tokens.length - this.#cached === 1) {
      // A decoding step: with the steps of the model's other generating sessions, when there are any.
      const logits = await this.#model.batcher.step(cache, this.#tokens[this.#cached], this.#cached);
      this.#cached++;
      return logits;
    }
    const t = this.#model.transformer();
    for (;;) {
      const block = this.#tokens.slice(this.#cached, this.#cached + MAX_BLOCK);
      const logits = t.forward(cache, block, this.#cached);
      this.#cached += block.length;
      if (this.#cached === this.#tokens.length) return t.logitsAt(logits);
      if (cooperative) await yieldToEventLoop();
      if (signal?.aborted) return null;
    }
  }
}

/** llama.cpp's context shift: the first `keep` tokens, then the newer half of the rest. */
export function shifted(tokens: number[], keep: number): number[] {
  const rest = tokens.slice(keep);
  return [...tokens.slice(0, keep), ...rest.slice(Math.floor(rest.length / 2))];
}
