// Generation slots: `parallel` generations run at once (their tokens interleave, one forward
// step each in turn, since a session yields to the event loop between tokens); up to `queue`
// more wait in arrival order; past that a request is refused at once (the server answers 503)
// rather than held without bound. A waiter whose client goes away leaves the queue.
import { BitNetError } from "../core/errors.ts";

/** The queue is full: try again later. */
export class QueueFull extends BitNetError {
  /** Error class name. */
  override name = "QueueFull";
}

/** Gives out `parallel` slots, with a bounded queue of waiters. */
export class Slots {
  #running = 0;
  readonly #waiting: { start: () => void; fail: (e: unknown) => void }[] = [];

  /** `parallel` slots at once, `queue` waiters at most. */
  constructor(readonly parallel: number, readonly queue: number) {}

  /** Generations running now. */
  get running(): number {
    return this.#running;
  }

  /** Requests waiting for a slot. */
  get queued(): number {
    return this.#waiting.length;
  }

  /** Resolves with the function that frees the slot once one is free; QueueFull when the queue is; the signal's reason when aborted while waiting. */
  async acquire(signal?: AbortSignal): Promise<() => void> {
    signal?.throwIfAborted();
    if (this.#running < this.parallel) {
      this.#running++;
      return this.#release();
    }
    if (this.#waiting.length >= this.queue) throw new QueueFull(`all ${this.parallel} slots are busy and ${this.queue} requests are waiting`);
    await new Promise<void>((start, fail) => {
      const waiter = { start, fail };
      this.#waiting.push(waiter);
      signal?.addEventListener("abort", () => {
        const at = this.#waiting.indexOf(waiter);
        if (at < 0) return;
        this.#waiting.splice(at, 1);
        fail(signal.reason);
      }, { once: true });
    });
    return this.#release(); // the slot was handed over by the one who freed it
  }

  /** A release function that works once: the slot passes to the first waiter, or is freed. */
  #release(): () => void {
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const next = this.#waiting.shift();
      if (next) next.start();
      else this.#running--;
    };
  }
}
