// A loaded model: the forward pass plus its tokenizer, with the user-facing operations.
import { evaluationTokens, perplexityOfTokens, type PerplexityOptions, type PerplexityResult } from "../eval/perplexity.ts";
import type { Kernels } from "../runtime/kernels.ts";
import type { ModelConfig } from "./config.ts";
import { BitNetError } from "./errors.ts";
import { type GenerateOptions, type GeneratedToken, generateTokens } from "./generate.ts";
import { type ChatMessage, renderChat } from "./chat.ts";
import type { Tokenizer } from "./tokenizer/llama2c.ts";
import type { Transformer } from "./transformer.ts";

/** A loaded model with its tokenizer: generation, chat, logits, perplexity. */
export class BitNetModel {
  #transformer: Transformer | null;
  #kernels: Kernels | null;

  /** Which kernel build runs this model. */
  readonly simd: "relaxed" | "strict";
  /** Threads the matrix products run on (1 where the runtime has no shared-memory workers). */
  readonly threads: number;

  /** Made by loadBitNet. */
  constructor(kernels: Kernels, transformer: Transformer, readonly tokenizer: Tokenizer | null, readonly source: string) {
    this.#kernels = kernels;
    this.#transformer = transformer;
    this.simd = kernels.level;
    this.threads = kernels.threads;
  }

  /** Architecture and sizes. */
  get config(): ModelConfig {
    return this.#live().config;
  }

  /** How the projections' weights are held: "fp32" as stored, or "ternary" / "sign" (1-bit) BitLinears. */
  get projectionWeights(): "fp32" | "ternary" | "sign" {
    return this.#live().projectionWeights;
  }

  /** Bytes of WebAssembly memory this model holds (weights, KV cache, buffers). */
  get memoryBytes(): number {
    return this.#kernels?.arena.bytesUsed ?? 0;
  }

  #live(): Transformer {
    if (!this.#transformer) throw new BitNetError(`${this.source}: model was disposed`);
    return this.#transformer;
  }

  #tokenizer(): Tokenizer {
    if (!this.tokenizer) throw new BitNetError(`${this.source}: no tokenizer was loaded; pass options.tokenizer`);
    return this.tokenizer;
  }

  /** Streams generated tokens and their text; the prompt is not repeated. */
  generate(prompt = "", options: GenerateOptions = {}): AsyncGenerator<GeneratedToken> {
    const tokenizer = this.#tokenizer();
    return generateTokens(this.#live(), tokenizer, tokenizer.encode(prompt, { bos: true }), options);
  }

  /**
   * Answers a conversation: renders it with the checkpoint's own chat template (Jinja, via
   * @huggingface/jinja) and streams the reply, which ends at the end-of-turn token.
   */
  chat(messages: ChatMessage[], options: GenerateOptions = {}): AsyncGenerator<GeneratedToken> {
    const tokenizer = this.#tokenizer();
    const prompt = renderChat(tokenizer, messages, this.source);
    return generateTokens(this.#live(), tokenizer, tokenizer.encode(prompt, { bos: false }), options);
  }

  /** Logits [tokens.length, vocab] for a token sequence from position 0. */
  logits(tokens: ArrayLike<number>): Float32Array[] {
    const t = this.#live();
    const out: Float32Array[] = [];
    t.forward(tokens, 0, (ptr) => out.push(t.logitsAt(ptr)));
    return out;
  }

  /**
   * Feeds a token (or a block of tokens, as a prompt's prefill) at position `pos` onwards
   * (positions before `pos` must be in the KV cache) and returns the last token's logits:
   * a decoding step for custom sampling loops.
   */
  step(tokens: number | ArrayLike<number>, pos: number): Float32Array {
    const t = this.#live();
    return t.logitsAt(t.forward(typeof tokens === "number" ? [tokens] : tokens, pos));
  }

  /** Perplexity of a text (see the README's protocol) or of a token sequence. */
  perplexity(input: string | ArrayLike<number>, options?: PerplexityOptions): Promise<PerplexityResult> {
    const tokens = typeof input === "string" ? evaluationTokens(input, this.#tokenizer()) : input;
    return perplexityOfTokens(this.#live(), tokens, options);
  }

  /** Stops its worker threads and frees the model's WebAssembly memory (the instance becomes unreachable). */
  dispose(): void {
    this.#kernels?.dispose();
    this.#transformer = null;
    this.#kernels = null;
  }
}
