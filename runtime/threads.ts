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
import { KERNEL_PARAMS, type KernelExports } from "./kernel-exports.ts";
import type { Ptr } from "./ptr.ts";

/**
 * The job block, defined here only: thread-worker.js gets this object in its start message.
 * i32 fields at these indices: seq, claim, stop, chunks, completed, failed; from byte
 * `argsByte`, per chunk `slots` f64: the kernel's index in PARALLEL_KERNELS, then its
 * arguments. `claim` holds (seq & 0xffff) << 16 | next chunk, so a worker still looking at an
 * older job can never claim a chunk of the current one; `failed` is 1 + the index of a kernel
 * that trapped; stop != 0 ends the workers.
 */
export const JOB_LAYOUT = { seq: 0, claim: 1, stop: 2, chunks: 3, completed: 4, failed: 5, argsByte: 32, slots: 13 } as const;
/** The job block's layout (see JOB_LAYOUT). */
export type JobLayout = typeof JOB_LAYOUT;
const { seq: SEQ, claim: CLAIM, stop: STOP, chunks: CHUNKS, completed: COMPLETED, failed: FAILED, argsByte: ARGS_BYTE, slots: SLOTS } = JOB_LAYOUT;
// Chunks per thread: enough to rebalance when one thread is delayed, few enough to keep hand-offs cheap.
const CHUNKS_PER_THREAD = 2, MAX_CHUNKS = 64 * CHUNKS_PER_THREAD;
export const JOB_BYTES = ARGS_BYTE + 8 * SLOTS * MAX_CHUNKS;
// Below this many multiply-adds a product stays on one thread: the hand-off would cost more.
const MIN_WORK = 1 << 16;
// A spin-loop hint (x86 PAUSE) where the runtime has it (not Node 20).
const pause = (Atomics as { pause?: () => void }).pause ?? (() => {});
// A worker that claimed a chunk and never finishes it (terminated from outside, crashed, or
// killed with its process's resources) would leave the calling thread spinning forever, and it
// spins synchronously, so nothing else in its event loop could notice. So the wait for the last
// chunks gives up after STALL_MS plus STALL_FACTOR times what the largest chunk of the job should
// take at the slowest rate the calling thread has measured on its own chunks (PRIOR_MS_PER_WORK
// until it has measured one of at least TIMED_WORK multiply-adds), and the pool is then broken.
// The clock counts time spent waiting only: a gap of more than GAP_MS between two looks (this
// thread descheduled, the process stopped and resumed) counts as GAP_MS.
const STALL_MS = 2000, STALL_FACTOR = 20, PRIOR_MS_PER_WORK = 1e-5, TIMED_WORK = 1 << 20, GAP_MS = 50;

type Args = number[];
type Params = typeof KERNEL_PARAMS;
/** A kernel's arguments by name (its parameter names in assembly/). */
type Named<P extends string> = { readonly [name in P]: number };
/** Bytes an address argument moves per row or per token, from the call's arguments. */
type Step<P extends string> = (a: Named<P>) => number;

/**
 * How one kernel's work divides, by its parameter names: rows of one token (in whole groups of
 * `rowAlign` rows: packed layouts), or tokens. The chunk for rows [r0, r1) gets `rows` = r1 - r0
 * and each address of `perRow` moved on by r0 steps; the chunk for tokens [t0, t1) likewise
 * with `tokens` and `perToken`. Every other argument is passed as it is.
 */
interface SplitSpec<P extends string> {
  rows: P;
  cols: P;
  /** The token count; absent: one token (a GEMV). */
  tokens?: P;
  rowAlign: number;
  perRow: Partial<Record<P, Step<P>>>;
  perToken: Partial<Record<P, Step<P>>>;
}

/** A SplitSpec resolved to argument indices once, with room for the steps of the call at hand (nothing allocated per product but the chunks' arguments). */
class Split {
  readonly rowsAt: number;
  readonly colsAt: number;
  readonly tokensAt: number;
  readonly rowAlign: number;
  readonly #names: readonly string[];
  readonly #named: Record<string, number> = {};
  readonly #rowAt: Int32Array;
  readonly #rowStep: Step<string>[];
  readonly #rowBytes: Float64Array;
  readonly #tokenAt: Int32Array;
  readonly #tokenStep: Step<string>[];
  readonly #tokenBytes: Float64Array;

  constructor(name: string, names: readonly string[], spec: SplitSpec<string>) {
    const at = (p: string) => {
      const i = names.indexOf(p);
      if (i < 0) throw new Error(`threads.ts: ${name} has no parameter ${p}`);
      return i;
    };
    if (names.length > SLOTS - 1) throw new Error(`threads.ts: ${name} takes ${names.length} arguments, a job slot holds ${SLOTS - 1}`);
    this.#names = names;
    this.rowsAt = at(spec.rows);
    this.colsAt = at(spec.cols);
    this.tokensAt = spec.tokens === undefined ? -1 : at(spec.tokens);
    this.rowAlign = spec.rowAlign;
    const rows = Object.entries(spec.perRow) as [string, Step<string>][], tokens = Object.entries(spec.perToken) as [string, Step<string>][];
    this.#rowAt = Int32Array.from(rows, ([p]) => at(p));
    this.#rowStep = rows.map(([, s]) => s);
    this.#rowBytes = new Float64Array(rows.length);
    this.#tokenAt = Int32Array.from(tokens, ([p]) => at(p));
    this.#tokenStep = tokens.map(([, s]) => s);
    this.#tokenBytes = new Float64Array(tokens.length);
    for (const p of names) this.#named[p] = 0; // the named view keeps one shape
  }

  /** The call's token count. */
  tokens(a: Args): number {
    return this.tokensAt < 0 ? 1 : a[this.tokensAt];
  }

  /** Works out the steps of the call with arguments `a` (before byRows / byTokens). */
  measure(a: Args): void {
    const named = this.#named, names = this.#names;
    for (let i = 0; i < names.length; i++) named[names[i]] = a[i];
    for (let j = 0; j < this.#rowAt.length; j++) this.#rowBytes[j] = this.#rowStep[j](named);
    for (let j = 0; j < this.#tokenAt.length; j++) this.#tokenBytes[j] = this.#tokenStep[j](named);
  }

  /** The arguments for rows [r0, r1) of a single token. */
  byRows(a: Args, r0: number, r1: number): Args {
    const b = a.slice(), at = this.#rowAt;
    b[this.rowsAt] = r1 - r0;
    for (let j = 0; j < at.length; j++) b[at[j]] = a[at[j]] + r0 * this.#rowBytes[j];
    return b;
  }

  /** The arguments for tokens [t0, t1). */
  byTokens(a: Args, t0: number, t1: number): Args {
    const b = a.slice(), at = this.#tokenAt;
    b[this.tokensAt] = t1 - t0;
    for (let j = 0; j < at.length; j++) b[at[j]] = a[at[j]] + t0 * this.#tokenBytes[j];
    return b;
  }
}

/** The split of kernel `name`, its spec checked against the kernel's parameter names (KERNEL_PARAMS, generated from assembly/). */
function split<N extends keyof Params>(name: N, spec: SplitSpec<Params[N][number]>): Split {
  return new Split(name, KERNEL_PARAMS[name], spec as SplitSpec<string>);
}

const blocks64 = (cols: number) => Math.ceil(cols / 64);
const F32 = () => 4;
const outputRow = ({ rows }: Named<"rows">) => rows * 4; // y: f32 [tokens, rows]
// Ternary (16 bytes per row and block of 64 columns, rows in groups of 4) and 1-bit (8 bytes,
// rows in groups of 8) layouts; int8 activations padded to whole blocks of 64 columns.
const ternaryRow = ({ cols }: Named<"cols">) => blocks64(cols) * 16;
const signRow = ({ cols }: Named<"cols">) => blocks64(cols) * 8;
const paddedRow = ({ cols }: Named<"cols">) => blocks64(cols) * 64;
const perGroup = ({ cols, groupCols }: Named<"cols" | "groupCols">) => (cols / groupCols) * 4; // an f32 or i32 per group

const SPLITS = {
  ternaryGemm: split("ternaryGemm", {
    rows: "rows",
    cols: "cols",
    tokens: "tokens",
    rowAlign: 4,
    perRow: { w: ternaryRow, y: F32 },
    perToken: { x: paddedRow, xSums: F32, xScales: F32, y: outputRow },
  }),
  ternaryGemmGrouped: split("ternaryGemmGrouped", {
    rows: "rows",
    cols: "cols",
    tokens: "tokens",
    rowAlign: 4,
    perRow: { w: ternaryRow, scales: perGroup, y: F32 },
    perToken: { x: paddedRow, xGroupSums: perGroup, xScales: F32, y: outputRow },
  }),
  signGemm: split("signGemm", {
    rows: "rows",
    cols: "cols",
    tokens: "tokens",
    rowAlign: 8,
    perRow: { w: signRow, y: F32 },
    perToken: { x: paddedRow, xSums: F32, xScales: F32, y: outputRow },
  }),
  signGemmGrouped: split("signGemmGrouped", {
    rows: "rows",
    cols: "cols",
    tokens: "tokens",
    rowAlign: 8,
    perRow: { w: signRow, scales: perGroup, y: F32 },
    perToken: { x: paddedRow, xGroupSums: perGroup, xScales: F32, y: outputRow },
  }),
  gemmF32: split("gemmF32", {
    rows: "rows",
    cols: "cols",
    tokens: "tokens",
    rowAlign: 1,
    perRow: { w: ({ cols }) => cols * 4, y: F32 },
    perToken: { x: ({ cols }) => cols * 4, y: outputRow },
  }),
  gemmHalf: split("gemmHalf", {
    rows: "rows",
    cols: "cols",
    tokens: "tokens",
    rowAlign: 1,
    perRow: { w: ({ cols }) => cols * 2, y: F32 },
    perToken: { x: ({ cols }) => cols * 4, y: outputRow }, // x: f32, as prepareHalfInput regrouped it
  }),
  gemvF32: split("gemvF32", {
    rows: "rows",
    cols: "cols",
    rowAlign: 1,
    perRow: { w: ({ cols }) => cols * 4, y: F32 },
    perToken: {},
  }),
  gemmI8: split("gemmI8", {
    rows: "rows",
    cols: "cols",
    tokens: "tokens",
    rowAlign: 1,
    perRow: { w: ({ cols }) => cols, wScales: F32, y: F32 },
    perToken: { x: ({ xStride }) => xStride, xScales: F32, y: outputRow },
  }),
};

export type ParallelKernel = keyof typeof SPLITS;
export const PARALLEL_KERNELS = Object.keys(SPLITS) as ParallelKernel[];

/** A started worker, as the runtime gives it. */
export interface ThreadHandle {
  terminate(): void;
}

/** One piece of a job: a kernel (its index and function), its arguments and its multiply-adds. */
interface Chunk {
  fn: number;
  run: (...a: number[]) => void;
  args: Args;
  work: number;
}

/**
 * Kernel worker threads sharing the main instance's memory, and the job block that drives them.
 * A worker that dies between jobs costs only speed (the others, and the calling thread, claim
 * its share); one that dies holding a chunk breaks the pool: that product throws a BitNetError
 * once the wait for it times out (see STALL_MS), the workers are stopped, and every later product
 * throws the same error, so the model's calls fail instead of hanging or computing on.
 */
export class ThreadPool {
  readonly #workers: ThreadHandle[];
  readonly #job: Int32Array;
  readonly #slots: Float64Array;
  #seq = 0;
  /** Chunks collected by `together`, or null when each product runs as its own job. */
  #pending: Chunk[] | null = null;
  /** Milliseconds per multiply-add of the slowest chunk this thread has timed (0: none yet). */
  #msPerWork = 0;
  /** Why the pool is broken, once a job's chunk was never finished. */
  #broken: BitNetError | null = null;

  /** A pool over started `workers`, driven through the job block at `job` in `memory`. */
  constructor(memory: WebAssembly.Memory, job: Ptr, workers: ThreadHandle[]) {
    this.#workers = workers;
    this.#job = new Int32Array(memory.buffer, job, ARGS_BYTE >> 2);
    this.#slots = new Float64Array(memory.buffer, job + ARGS_BYTE, SLOTS * MAX_CHUNKS);
  }

  /** Threads in all: the workers and the calling thread. */
  get threads(): number {
    return this.#workers.length + 1;
  }

  /** The exports with the parallel kernels replaced by versions that split their work. */
  wrap<K extends KernelExports>(k: K): K {
    const wrapped = { ...k };
    PARALLEL_KERNELS.forEach((name, fn) => {
      const run = k[name] as (...a: number[]) => void, split = SPLITS[name];
      (wrapped as Record<string, unknown>)[name] = (...a: number[]) => this.#submit(fn, run, split, a);
    });
    return wrapped;
  }

  /**
   * Runs the parallel products that `body` calls as one job, once it returns. They must not
   * depend on each other's outputs (none of them may read what another writes).
   */
  together(body: () => void): void {
    if (this.#broken) throw this.#broken;
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
    if (this.#broken) throw this.#broken;
    const tokens = split.tokens(a), rows = a[split.rowsAt], cols = a[split.colsAt];
    if (rows * cols * tokens < MIN_WORK) return run(...a);
    split.measure(a);
    // [0, n) in `parts` ranges of whole `align`-sized pieces (the last takes the rest): rows for one token, else tokens.
    const byRows = tokens === 1, n = byRows ? rows : tokens, align = byRows ? split.rowAlign : 1;
    const parts = this.threads * CHUNKS_PER_THREAD, pieces = Math.ceil(n / align), chunks: Chunk[] = [];
    for (let p = 0, start = 0; p < parts && start < n; p++) {
      const end = Math.min(n, Math.round((pieces * (p + 1)) / parts) * align);
      if (end > start) {
        chunks.push({ fn, run, args: byRows ? split.byRows(a, start, end) : split.byTokens(a, start, end), work: (end - start) * cols * (byRows ? 1 : rows) });
      }
      start = end;
    }
    const pending = this.#pending;
    if (!pending) return this.#runJob(chunks);
    if (pending.length + chunks.length > MAX_CHUNKS) this.#runJob(pending.splice(0));
    pending.push(...chunks);
  }

  #runJob(chunks: Chunk[]): void {
    const job = this.#job, tag = ++this.#seq & 0xffff;
    let largest = 0;
    chunks.forEach((c, i) => {
      this.#slots[i * SLOTS] = c.fn;
      this.#slots.set(c.args, i * SLOTS + 1);
      largest = Math.max(largest, c.work);
    });
    job[CHUNKS] = chunks.length;
    job[COMPLETED] = 0;
    job[FAILED] = 0;
    Atomics.store(job, CLAIM, tag << 16); // from here on chunks can be claimed
    Atomics.store(job, SEQ, this.#seq);
    Atomics.notify(job, SEQ);
    for (let v = Atomics.load(job, CLAIM); (v & 0xffff) < chunks.length; v = Atomics.load(job, CLAIM)) {
      if (Atomics.compareExchange(job, CLAIM, v, v + 1) !== v) continue;
      const c = chunks[v & 0xffff], timed = c.work >= TIMED_WORK, t0 = timed ? performance.now() : 0;
      try {
        c.run(...c.args);
      } catch {
        job[FAILED] = c.fn + 1;
      }
      if (timed) this.#msPerWork = Math.max(this.#msPerWork, (performance.now() - t0) / c.work);
      Atomics.add(job, COMPLETED, 1);
    }
    // The last chunks are as short as ours: spin, looking at the clock now and then (see STALL_MS).
    if (Atomics.load(job, COMPLETED) < chunks.length) this.#awaitChunks(chunks, STALL_MS + STALL_FACTOR * largest * (this.#msPerWork || PRIOR_MS_PER_WORK));
    if (job[FAILED]) throw new BitNetError(`kernel ${PARALLEL_KERNELS[job[FAILED] - 1]} trapped (an address or size out of range)`);
  }

  /** Spins until every chunk is done; breaks the pool if none finishes for `limit` ms of waiting. */
  #awaitChunks(chunks: Chunk[], limit: number): void {
    const job = this.#job;
    let seen = Atomics.load(job, COMPLETED), waited = 0, last = performance.now();
    for (let spins = 1; Atomics.load(job, COMPLETED) < chunks.length; spins++) {
      pause();
      if ((spins & 1023) !== 0) continue;
      const now = performance.now(), n = Atomics.load(job, COMPLETED);
      waited = n === seen ? waited + Math.min(now - last, GAP_MS) : 0;
      seen = n;
      last = now;
      if (waited > limit) {
        const names = [...new Set(chunks.map((c) => PARALLEL_KERNELS[c.fn]))].join(", ");
        this.#broken = new BitNetError(
          `a kernel worker thread stopped in the middle of a job (${chunks.length - n} of its ${chunks.length} chunks of ${names} unfinished after ` +
            `${Math.round(limit)} ms: the worker was terminated or crashed); this model's threads are stopped and it cannot compute any more: dispose() it and load it again`,
        );
        this.close();
        throw this.#broken;
      }
    }
  }

  /** Stops the workers (products still run, on the calling thread alone, unless the pool is broken). */
  close(): void {
    this.#job[STOP] = 1;
    Atomics.store(this.#job, SEQ, ++this.#seq);
    Atomics.notify(this.#job, SEQ);
    for (const w of this.#workers) w.terminate();
  }
}
