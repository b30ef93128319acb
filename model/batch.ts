// Decoding the sessions of one model together. A decoding step reads every weight for one
// token, so sessions that generate at the same time and each read the weights for their own
// token share the memory bandwidth; here the steps that sessions ask for within one turn of
// the event loop run as one Transformer.decode, which reads the weights once for all of
// them (llama-server's continuous batching, without its padding: each row is its own
// sequence). Every row is computed exactly as it would be alone, so results do not change.
// A session generating alone steps at once, as before.
import { yieldToEventLoop } from "../runtime/yield.ts";
import { offset } from "../runtime/ptr.ts";
import type { KVCache } from "./kv-cache.ts";
import { MAX_BLOCK, type Transformer } from "./transformer.ts";

interface Pending {
  cache: KVCache;
  token: number;
  pos: number;
  resolve: (logits: Float32Array) => void;
  reject: (e: unknown) => void;
}

/** Gathers concurrent sessions' decoding steps into shared forward passes. */
export class DecodeBatcher {
  /** Sessions generating now. */
  #generating = 0;
  #pending: Pending[] = [];
  #scheduled = false;

  /** Steps run on the model's forward pass (which throws once the model is disposed). */
  constructor(readonly transformer: () => Transformer) {}

  /** A session starts generating; the function it returns says it has stopped. */
  enter(): () => void {
    this.#generating++;
    let left = false;
    return () => {
      if (!left) this.#generating--;
      left = true;
    };
  }

  /** The logits after feeding `token` at `pos` of `cache`: now when one session generates, else in the next shared pass. */
  step(cache: KVCache, token: number, pos: number): Float32Array | Promise<Float32Array> {
    const t = this.transformer();
    if (this.#generating <= 1 && this.#pending.length === 0) return t.logitsAt(t.forward(cache, [token], pos));
    const result = new Promise<Float32Array>((resolve, reject) => this.#pending.push({ cache, token, pos, resolve, reject }));
    if (!this.#scheduled) {
      this.#scheduled = true;
      // After the other sessions' turns of this round, which queue their steps before this.
      void yieldToEventLoop().then(() => this.#run());
    }
    return result;
  }

  #run(): void {
    this.#scheduled = false;
    while (this.#pending.length > 0) {
      const steps = this.#pending.splice(0, MAX_BLOCK);
      try {
        const t = this.transformer(), logits = t.decode(steps);
        const rowBytes = t.config.vocabSize * 4;
        steps.forEach((s, i) => s.resolve(t.logitsAt(offset(logits, i * rowBytes))));
      } catch (e) {
        for (const s of steps) s.reject(e);
      }
    }
  }
}
