// A loaded model: the forward pass plus its tokenizer, with the user-facing operations.
// Every generation runs in a session (its own KV cache): generate(), chat() and complete()
// are one-shot sessions, so calls running at the same time never share a cache.
import { evaluationTokens, perplexityOfTokens, type PerplexityOptions, type PerplexityResult } from "./perplexity.ts";
import type { Kernels } from "../runtime/kernels.ts";
import type { ModelConfig } from "../formats/config.ts";
import { BitNetError } from "../core/errors.ts";
import { checkGenerateOptions, drain, type GeneratedToken, type GenerateOptions, type GenerationResult } from "../text/generate.ts";
import type { KVCache } from "./kv-cache.ts";
import { type ChatMessage, renderChat } from "../text/chat.ts";
import { DecodeBatcher } from "./batch.ts";
import { checkTokenIds, type ModelCore, Session, type SessionOptions } from "./session.ts";
import type { Tokenizer } from "../text/tokenizer/llama2c.ts";
import type { Transformer } from "./transformer.ts";

/** Counters of the work the sparsity variants skip (BitNetModel.sparsityCounters). */
export interface SparsityCounters {
  /** Every BitLinear input's products with the weights it meets (all tokens), and how many met a non-zero int8 activation: 1 - active / total is the model-level activation sparsity Q-Sparse reports (top-K zeros and the zeros inputs already hold). */
  activeProducts: { total: number; active: number };
  /** DeltaLLM: the attention scores' multiply-adds, dense and as done. */
  attentionScores: { dense: number; done: number };
  /** ffn=sparse: the up projections' row groups of 4 rows, all and computed. */
  upRowGroups: { total: number; computed: number };
  /** ffn=sparse: the down projections' input columns, all and read (non-zero). */
  downColumns: { total: number; read: number };
}

/** A loaded model with its tokenizer: sessions, generation, chat, logits, perplexity. */
export class BitNetModel {
  #transformer: Transformer | null;
  #kernels: Kernels | null;
  /** The cache behind logits() and step() (allocated on first use). */
  #stepCache: KVCache | null = null;
  readonly #core: ModelCore;

  /** Which kernel build runs this model. */
  readonly simd: "relaxed" | "strict";
  /** Threads the matrix products run on (1 where the runtime has no shared-memory workers). */
  readonly threads: number;

  /** The Jinja template chat() renders conversations with: the checkpoint's own, or the load option `chatTemplate`. */
  readonly chatTemplate: string | undefined;

  /** Made by loadBitNet; `tokenizer` is null for a model loaded with `tokenizer: "none"` (token ids only). */
  constructor(
    kernels: Kernels,
    transformer: Transformer,
    readonly tokenizer: Tokenizer | null,
    readonly source: string,
    chatTemplate: string | undefined = tokenizer?.chatTemplate,
  ) {
    this.#kernels = kernels;
    this.#transformer = transformer;
    this.simd = kernels.level;
    this.threads = kernels.threads;
    this.chatTemplate = chatTemplate;
    const live = () => this.#live();
    this.#core = { transformer: live, tokenizer, chatTemplate, source, batcher: new DecodeBatcher(live) };
  }

  /** Architecture and sizes. */
  get config(): ModelConfig {
    return this.#live().config;
  }

  /** How the projections' weights are held: "fp32" as stored, or "ternary" / "sign" (1-bit) BitLinears. */
  get projectionWeights(): "fp32" | "fbi" | "ternary" | "sign" {
    return this.#live().projectionWeights;
  }

  /** What loading decided that the options did not say, e.g. a variant run in its post-training form by default (the CLI prints these). */
  get notices(): readonly string[] {
    return this.#live().notices;
  }

  /**
   * Work skipped so far, counted as it happens: the BitLinears' products that meet a zero
   * activation (model-level sparsity), DeltaLLM's score
   * multiply-adds (dense and done), ffn=sparse's up-projection row groups (all and computed)
   * and down-projection input columns (all and read).
   */
  get sparsityCounters(): SparsityCounters {
    const t = this.#live();
    return { activeProducts: { ...t.activeProducts }, attentionScores: { ...t.attentionWork }, upRowGroups: { ...t.ffnRowGroups }, downColumns: t.downColumns };
  }

  /** Bytes of WebAssembly memory this model holds (weights, buffers, the KV caches of its sessions). */
  get memoryBytes(): number {
    return this.#kernels?.arena.bytesUsed ?? 0;
  }

  #live(): Transformer {
    if (!this.#transformer) throw new BitNetError(`${this.source}: model was disposed`);
    return this.#transformer;
  }

  #tokenizer(): Tokenizer {
    if (!this.tokenizer) throw new BitNetError(`${this.source}: no tokenizer was loaded (tokenizer: "none"); pass token ids`);
    return this.tokenizer;
  }

  /**
   * A session with its own KV cache (allocated now, `contextLength` positions, freed by
   * dispose()): text continued by session.generate / prompt, or a conversation by
   * session.chat, each turn computing only its new tokens.
   */
  createSession(options: SessionOptions = {}): Session {
    return new Session(this.#core, options);
  }

  /** Streams generated tokens and their text (the prompt, text or token ids, is not repeated); returns the GenerationResult. */
  generate(prompt: string | ArrayLike<number> = "", options: GenerateOptions = {}): AsyncGenerator<GeneratedToken, GenerationResult> {
    checkGenerateOptions(options);
    if (typeof prompt === "string") this.#tokenizer();
    return this.#oneShot((s) => s.generate(prompt, options));
  }

  /**
   * Answers a conversation: renders it with the checkpoint's own chat template (Jinja, via
   * @huggingface/jinja) and streams the reply, which ends at the end-of-turn token.
   */
  chat(messages: ChatMessage[], options: GenerateOptions = {}): AsyncGenerator<GeneratedToken, GenerationResult> {
    checkGenerateOptions(options);
    renderChat(this.#tokenizer(), messages, this.source, this.chatTemplate); // the template and the messages are checked now
    return this.#oneShot((s) => s.chatStream(messages, options));
  }

  /** The whole generation in one call: a prompt (text or token ids) or a conversation (chat messages). */
  complete(input: string | ArrayLike<number> | ChatMessage[], options: GenerateOptions = {}): Promise<GenerationResult> {
    const chat = Array.isArray(input) && input.length > 0 && typeof input[0] === "object";
    return drain(chat ? this.chat(input as ChatMessage[], options) : this.generate(input as string | ArrayLike<number>, options));
  }

  async *#oneShot(run: (s: Session) => AsyncGenerator<GeneratedToken, GenerationResult>): AsyncGenerator<GeneratedToken, GenerationResult> {
    const session = this.createSession();
    try {
      return yield* run(session);
    } finally {
      session.dispose();
    }
  }

  #ownCache(): KVCache {
    return (this.#stepCache ??= this.#live().newCache());
  }

  /** Logits [tokens.length, vocab] for a token sequence from position 0 (in the cache step() continues). */
  logits(tokens: ArrayLike<number>): Float32Array[] {
    const t = this.#live();
    checkTokenIds(tokens, t.config.vocabSize);
    const out: Float32Array[] = [];
    t.forward(this.#ownCache(), tokens, 0, (ptr) => out.push(t.logitsAt(ptr)));
    return out;
  }

  /**
   * Feeds a token (or a block of tokens, as a prompt's prefill) at position `pos` onwards
   * (positions before `pos` must be in the model's own cache, filled by logits() or earlier
   * steps) and returns the last token's logits: a decoding step for custom sampling loops.
   */
  step(tokens: number | ArrayLike<number>, pos: number): Float32Array {
    const t = this.#live(), ids = typeof tokens === "number" ? [tokens] : tokens;
    checkTokenIds(ids, t.config.vocabSize);
    return t.logitsAt(t.forward(this.#ownCache(), ids, pos));
  }

  /** Perplexity of a text (see the README's protocol) or of a token sequence, in a cache of its own. */
  async perplexity(input: string | ArrayLike<number>, options?: PerplexityOptions): Promise<PerplexityResult> {
    const t = this.#live();
    const tokens = typeof input === "string" ? evaluationTokens(input, this.#tokenizer()) : input;
    checkTokenIds(tokens, t.config.vocabSize);
    const cache = t.newCache();
    try {
      return await perplexityOfTokens(t, cache, tokens, options);
    } finally {
      cache.dispose();
    }
  }

  /** `using model = await loadBitNet(...)` disposes it at the end of the block. */
  [Symbol.dispose](): void {
    this.dispose();
  }

  /** Stops its worker threads and frees the model's WebAssembly memory (its sessions become unusable). */
  dispose(): void {
    this.#kernels?.dispose();
    this.#transformer = null;
    this.#kernels = null;
    this.#stepCache = null;
  }
}
