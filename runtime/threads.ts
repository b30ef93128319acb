// Threads: worker instances of the kernels sharing one WebAssembly.Memory with the main
// instance. A large matrix product is cut into chunks: rows for one token (whole packed row
// groups, each chunk writing its own outputs), tokens for several. Every output is computed
// by the same code from the same inputs as with one thread, so results are identical for
// any thread count. The calling thread and the workers claim chunks from a shared counter
// until none is left, so a thread the OS delays gets fewer chunks instead of holding the
// others up. Jobs go through a small job block in the shared memory (Atomics), not through
// messages: a decoded token makes a few hundred products, too many for a message round trip
// each. Independent products (q, k and v of one input; gate and up) can share one job
// (`together`), which halves the hand-offs and lets the small ones fill the big one's tail.
import { BitNetError } from "../core/errors.ts";
import type { KernelExports } from "./kernels.ts";

// The job block (read by thread-worker.js): i32 [seq, claim, stop, chunks, completed, failed],
// then per chunk SLOTS f64: the kernel's index in PARALLEL_KERNELS and its arguments.
// `claim` holds (seq & 0xffff) << 16 | next chunk, so a worker still looking at an older job
// can never claim a chunk of the current one; `failed` is 1 + the index of a kernel that trapped.
const SEQ = 0, CLAIM = 1, STOP = 2, CHUNKS = 3, COMPLETED = 4, FAILED = 5, ARGS_BYTE = 32, SLOTS = 13;
// Chunks per thread: enough to rebalance when one thread is delayed, few enough to keep hand-offs cheap.
const CHUNKS_PER_THREAD = 2, MAX_CHUNKS = 64 * CHUNKS_PER_THREAD;
export const JOB_BYTES = ARGS_BYTE + 8 * SLOTS * MAX_CHUNKS;
// Below this many multiply-adds a product stays on one thread: the hand-off would cost more.
const MIN_WORK = 1 << 16;
// A spin-loop hint (x86 PAUSE) where the runtime has it (not Node 20).
const pause = (Atomics as { pause?: () => void }).pause ?? (() => {});

type Args = number[];
/** How one kernel's work divides: rows of one token (in whole packed row groups), or tokens. */
interface Split {
  rowAlign: number;
  rows(a: Args): number;
  cols(a: Args): number;
  tokens(a: Args): number;
  /** The arguments for rows [r0, r1) of a single token. */
  byRows(a: Args, r0: number, r1: number): Args;
  /** The arguments for tokens [t0, t1). */
  byTokens(a: Args, t0: number, t1: number): Args;
}

const blocks64 = (cols: number) => Math.ceil(cols / 64);

// Ternary and 1-bit layouts: `rowBytes` per row (in whole row groups), activations padded to 64 columns.
function bitSplit(rowAlign: number, rowBytes: (cols: number) => number, grouped: boolean): Split {
  // (w, rows, cols, x, xSums, xScales, tokens, wScale | groupCols, [scales,] y)
  const yAt = grouped ? 9 : 8;
  const groups = (a: Args) => (grouped ? a[2] / a[7] : 1);
  return {
    rowAlign, rows: (a) => a[1], cols: (a) => a[2], tokens: (a) => a[6],
    byRows: (a, r0, r1) => {
      const b = [...a];
      b[0] = a[0] + r0 * rowBytes(a[2]);
      b[1] = r1 - r0;
      if (grouped) b[8] = a[8] + r0 * groups(a) * 4;
      b[yAt] = a[yAt] + r0 * 4;
      return b;
    },
    byTokens: (a, t0, t1) => {
      const b = [...a];
      b[3] = a[3] + t0 * blocks64(a[2]) * 64;
      b[4] = a[4] + t0 * groups(a) * 4;
      b[5] = a[5] + t0 * 4;
      b[6] = t1 - t0;
      b[yAt] = a[yAt] + t0 * a[1] * 4;
      return b;
    },
  };
}

// Float weights [rows, cols] of `bytes` each: (w, rows, cols, x, tokens, y, ...rest).
function floatSplit(bytes: number): Split {
  return {
    rowAlign: 1, rows: (a) => a[1], cols: (a) => a[2], tokens: (a) => a[4],
    byRows: (a, r0, r1) => [a[0] + r0 * a[2] * bytes, r1 - r0, a[2], a[3], a[4], a[5] + r0 * 4, ...a.slice(6)],
    byTokens: (a, t0, t1) => [a[0], a[1], a[2], a[3] + t0 * a[2] * 4, t1 - t0, a[5] + t0 * a[1] * 4, ...a.slice(6)],
  };
}

const SPLITS = {
  ternaryGemm: bitSplit(4, (cols) => blocks64(cols) * 16, false),
  ternaryGemmGrouped: bitSplit(4, (cols) => blocks64(cols) * 16, true),
  signGemm: bitSplit(8, (cols) => blocks64(cols) * 8, false),
  signGemmGrouped: bitSplit(8, (cols) => blocks64(cols) * 8, true),
  gemmF32: floatSplit(4),
  gemmHalf: floatSplit(2),
  // (w, rows, cols, x, y): one token
  gemvF32: {
    rowAlign: 1, rows: (a) => a[1], cols: (a) => a[2], tokens: () => 1,
    byRows: (a, r0, r1) => [a[0] + r0 * a[2] * 4, r1 - r0, a[2], a[3], a[4] + r0 * 4],
    byTokens: (a) => a,
  },
  // (w, wScales, rows, cols, x, xStride, xScales, tokens, y)
  gemmI8: {
    rowAlign: 1, rows: (a) => a[2], cols: (a) => a[3], tokens: (a) => a[7],
    byRows: (a, r0, r1) => [a[0] + r0 * a[3], a[1] + r0 * 4, r1 - r0, a[3], a[4], a[5], a[6], a[7], a[8] + r0 * 4],
    byTokens: (a, t0, t1) => [a[0], a[1], a[2], a[3], a[4] + t0 * a[5], a[5], a[6] + t0 * 4, t1 - t0, a[8] + t0 * a[2] * 4],
  },
} satisfies Record<string, Split>;

export type ParallelKernel = keyof typeof SPLITS;
export const PARALLEL_KERNELS = Object.keys(SPLITS) as ParallelKernel[];

/** Cuts [0, n) into `parts` ranges of whole `align`-sized pieces (the last takes the rest). */
function ranges(n: number, parts: number, align: number): [number, number][] {
  const pieces = Math.ceil(n / align), out: [number, number][] = [];
  for (let p = 0, start = 0; p < parts && start < n; p++) {
    const end = Math.min(n, Math.round((pieces * (p + 1)) / parts) * align);
    if (end > start) out.push([start, end]);
    start = end;
  }
  return out;
}

/** A started worker, as the runtime gives it. */
export interface ThreadHandle {
  terminate(): void;
}

/** One piece of a job: a kernel (its index and function) and its arguments. */
interface Chunk {
  fn: number;
  run: (...a: number[]) => void;
  args: Args;
}

export class ThreadPool {
  readonly #job: Int32Array;
  readonly #slots: Float64Array;
  #seq = 0;
  /** Chunks collected by `together`, or null when each product runs as its own job. */
  #pending: Chunk[] | null = null;

  constructor(memory: WebAssembly.Memory, job: number, readonly workers: ThreadHandle[]) {
    this.#job = new Int32Array(memory.buffer, job, 8);
    this.#slots = new Float64Array(memory.buffer, job + ARGS_BYTE, SLOTS * MAX_CHUNKS);
  }

  /** Threads in all: the workers and the calling thread. */
  get threads(): number {
    return this.workers.length + 1;
  }

  /** The exports with the parallel kernels replaced by versions that split their work. */
  wrap(k: KernelExports): KernelExports {
    const wrapped = { ...k };
    PARALLEL_KERNELS.forEach((name, fn) => {
      const run = k[name] as (...a: number[]) => void, split: Split = SPLITS[name];
      (wrapped as Record<string, unknown>)[name] = (...a: number[]) => this.#submit(fn, run, split, a);
    });
    return wrapped;
  }

  /**
   * Runs the parallel products that `body` calls as one job, once it returns. They must not
   * depend on each other's outputs (none of them may read what another writes).
   */
  together(body: () => void): void {
    if (this.#pending) return body();
    this.#pending = [];
    let chunks: Chunk[];
    try {
      body();
    } finally {
      chunks = this.#pending;
      this.#pending = null;
    }
    if (chunks.length > 0) this.#runJob(chunks);
  }

  #submit(fn: number, run: (...a: number[]) => void, split: Split, a: Args): void {
    const tokens = split.tokens(a), rows = split.rows(a);
    if (rows * split.cols(a) * tokens < MIN_WORK) return run(...a);
    const parts = this.threads * CHUNKS_PER_THREAD;
    const chunks = (tokens === 1
      ? ranges(rows, parts, split.rowAlign).map(([r0, r1]) => split.byRows(a, r0, r1))
      : ranges(tokens, parts, 1).map(([t0, t1]) => split.byTokens(a, t0, t1))).map((args) => ({ fn, run, args }));
    const pending = this.#pending;
    if (!pending) return this.#runJob(chunks);
    if (pending.length + chunks.length > MAX_CHUNKS) this.#runJob(pending.splice(0));
    pending.push(...chunks);
  }

  #runJob(chunks: Chunk[]): void {
    const job = this.#job, tag = ++this.#seq & 0xffff;
    chunks.forEach((c, i) => {
      this.#slots[i * SLOTS] = c.fn;
      this.#slots.set(c.args, i * SLOTS + 1);
    });
    job[CHUNKS] = chunks.length;
    job[COMPLETED] = 0;
    job[FAILED] = 0;
    Atomics.store(job, CLAIM, tag << 16); // from here on chunks can be claimed
    Atomics.store(job, SEQ, this.#seq);
    Atomics.notify(job, SEQ);
    for (let v = Atomics.load(job, CLAIM); (v & 0xffff) < chunks.length; v = Atomics.load(job, CLAIM)) {
      if (Atomics.compareExchange(job, CLAIM, v, v + 1) !== v) continue;
      const c = chunks[v & 0xffff];
      try {
        c.run(...c.args);
      } catch {
        job[FAILED] = c.fn + 1;
      }
      Atomics.add(job, COMPLETED, 1);
    }
    while (Atomics.load(job, COMPLETED) < chunks.length) pause(); // the last chunks are as short as ours: spin
    if (job[FAILED]) throw new BitNetError(`kernel ${PARALLEL_KERNELS[job[FAILED] - 1]} trapped (an address or size out of range)`);
  }

  /** Stops the workers. */
  close(): void {
    this.#job[STOP] = 1;
    Atomics.store(this.#job, SEQ, ++this.#seq);
    Atomics.notify(this.#job, SEQ);
    for (const w of this.workers) w.terminate();
  }
}
