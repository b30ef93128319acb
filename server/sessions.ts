// Sessions kept between requests, as llama-server's prompt cache: a chat client sends the
// whole conversation every turn, and a request given the idle session whose cache already
// holds the longest start of its prompt computes only the rest (the new turn, not the
// history). Up to `keep` idle sessions per model, each with a cache of the model's whole
// context; when WebAssembly memory runs out for a new one, idle sessions are freed, and a
// cache only as long as the request needs is the last resort.
import { BitNetError } from "../core/errors.ts";
import type { BitNetModel } from "../model/model.ts";
import type { Session } from "../model/session.ts";

/** Idle sessions of each model, most recently used last. */
export class SessionPool {
  readonly #idle = new Map<BitNetModel, Session[]>();

  /** Keeps up to `keep` idle sessions per model. */
  constructor(readonly keep: number) {}

  /** A session for `prompt` that can hold `length` tokens: the idle one sharing the longest start with it, else a new one. */
  take(model: BitNetModel, prompt: readonly number[], length: number): Session {
    const idle = this.#idle.get(model) ?? [];
    let best = -1, longest = -1;
    idle.forEach((s, i) => {
      const shared = sharedStart(s.cachedTokens, prompt);
      if (s.contextLength >= length && shared >= longest) [best, longest] = [i, shared];
    });
    if (best >= 0) {
      const [session] = idle.splice(best, 1);
      session.reset();
      return session;
    }
    const full = model.config.seqLen;
    for (;;) {
      try {
        return model.createSession({ contextLength: full });
      } catch (e) {
        if (!(e instanceof BitNetError)) throw e; // only the arena's out-of-memory is a reason to make room
        if (!this.#freeOne()) return model.createSession({ contextLength: length }); // no memory for a whole context: what this request needs
      }
    }
  }

  /** Keeps a session whose request has ended, for the next request. */
  give(model: BitNetModel, session: Session): void {
    const idle = this.#idle.get(model) ?? [];
    this.#idle.set(model, idle);
    idle.push(session);
    if (idle.length > this.keep) idle.shift()!.dispose();
  }

  /** Frees an idle session (a model's oldest); false when there is none. */
  #freeOne(): boolean {
    for (const idle of this.#idle.values()) {
      if (idle.length > 0) {
        idle.shift()!.dispose();
        return true;
      }
    }
    return false;
  }
}

function sharedStart(a: readonly number[], b: readonly number[]): number {
  let n = 0;
  while (n < a.length && n < b.length && a[n] === b[n]) n++;
  return n;
}
