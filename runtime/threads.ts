// Threads: worker instances of the kernels sharing one WebAssembly.Memory with the main
// instance. The large matrix products are split between the threads: by rows for one token
// (each thread writes its own outputs), by tokens for several. Every output is computed by
// the same code from the same inputs as with one thread, so results are identical for any
// thread count. Jobs go through a control block per worker in the shared memory (Atomics),
// not through messages: a decoded token makes a few hundred products, too many for a
// message round trip each. The main thread takes the first part itself.
import { BitNetError } from "../model/errors.ts";
import type { KernelExports } from "./kernels.ts";

// Control block (see thread-worker.ts): i32 [seq, done, fn, failed], then f64 args.
const SEQ = 0, DONE = 1, FN = 2, FAILED = 3, ARGS_BYTE = 16, MAX_ARGS = 12;
export const CONTROL_BYTES = ARGS_BYTE + 8 * MAX_ARGS;
// Below this many multiply-adds a product stays on one thread: the hand-off would cost more.
const MIN_WORK = 1 << 16;

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

export class ThreadPool {
  readonly #controls: { ctl: Int32Array; args: Float64Array }[];
  #seq = 0;

  constructor(memory: WebAssembly.Memory, controls: number[], readonly workers: ThreadHandle[]) {
    this.#controls = controls.map((at) => ({
      ctl: new Int32Array(memory.buffer, at, 4),
      args: new Float64Array(memory.buffer, at + ARGS_BYTE, MAX_ARGS),
    }));
  }

  /** Threads in all: the workers and the calling thread. */
  get threads(): number {
    return this.workers.length + 1;
  }

  /** The exports with the parallel kernels replaced by versions that split their work. */
  wrap(k: KernelExports): KernelExports {
    const wrapped = { ...k };
    PARALLEL_KERNELS.forEach((name, index) => {
      const run = k[name] as (...a: number[]) => void, split: Split = SPLITS[name];
      (wrapped as Record<string, unknown>)[name] = (...a: number[]) => this.#run(index, run, split, a);
    });
    return wrapped;
  }

  #run(fn: number, run: (...a: number[]) => void, split: Split, a: Args): void {
    const tokens = split.tokens(a), rows = split.rows(a);
    if (rows * split.cols(a) * tokens < MIN_WORK) return run(...a);
    const parts = tokens === 1
      ? ranges(rows, this.threads, split.rowAlign).map(([r0, r1]) => split.byRows(a, r0, r1))
      : ranges(tokens, this.threads, 1).map(([t0, t1]) => split.byTokens(a, t0, t1));
    const seq = ++this.#seq;
    for (let p = 1; p < parts.length; p++) {
      const { ctl, args } = this.#controls[p - 1];
      args.set(parts[p]);
      ctl[FN] = fn;
      Atomics.store(ctl, SEQ, seq);
      Atomics.notify(ctl, SEQ);
    }
    run(...parts[0]);
    for (let p = 1; p < parts.length; p++) {
      const { ctl } = this.#controls[p - 1];
      while (Atomics.load(ctl, DONE) !== seq) { /* the worker's part is as long as ours: spin */ }
      if (ctl[FAILED]) {
        ctl[FAILED] = 0;
        throw new BitNetError(`kernel ${PARALLEL_KERNELS[fn]} trapped in worker thread ${p}`);
      }
    }
  }

  /** Stops the workers. */
  close(): void {
    const seq = ++this.#seq;
    for (const { ctl } of this.#controls) {
      ctl[FN] = -1;
      Atomics.store(ctl, SEQ, seq);
      Atomics.notify(ctl, SEQ);
    }
    for (const w of this.workers) w.terminate();
  }
}
