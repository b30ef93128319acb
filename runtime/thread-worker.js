// @ts-check
// A kernel worker thread: instantiates the kernel module on the memory it shares with the
// main instance, moves its scratch to its own region, then runs the jobs the main thread
// writes into its control block (layout in threads.ts) until told to stop. Plain
// JavaScript with no imports, so every runtime starts it as it is, from source or built.

// Control block: i32 [seq, done, fn, failed] then f64 args. fn < 0 ends the worker.
const SEQ = 0, DONE = 1, FN = 2, FAILED = 3, ARGS_BYTE = 16, MAX_ARGS = 12;
// Spin this many polls before sleeping: a decoded token brings a few hundred jobs, each
// shortly after the last, and a futex wake-up per job would cost more than the spinning.
const SPINS = 1 << 20;

/**
 * @param {{ module: WebAssembly.Module, memory: WebAssembly.Memory, control: number, scratch: number, names: string[] }} init
 *   control / scratch: addresses of this worker's control block and kernel scratch; names: the kernels a job may name, by index.
 * @param {(message: unknown) => void} reply
 */
async function start(init, reply) {
  const instance = await WebAssembly.instantiate(init.module, { env: { memory: init.memory } });
  const exports = /** @type {Record<string, (...args: number[]) => void>} */ (instance.exports);
  exports.setScratch(init.scratch);
  const fns = init.names.map((name) => exports[name]);
  const ctl = new Int32Array(init.memory.buffer, init.control, 4);
  const a = new Float64Array(init.memory.buffer, init.control + ARGS_BYTE, MAX_ARGS);
  reply("ready");
  let seen = 0;
  for (;;) {
    for (let spins = 0; Atomics.load(ctl, SEQ) === seen; ) {
      if (++spins > SPINS) {
        Atomics.wait(ctl, SEQ, seen);
        spins = 0;
      }
    }
    seen = Atomics.load(ctl, SEQ);
    const fn = ctl[FN];
    if (fn < 0) return;
    try {
      fns[fn](a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9], a[10], a[11]);
    } catch {
      ctl[FAILED] = 1; // a trap: the main thread raises it rather than wait forever
    }
    Atomics.store(ctl, DONE, seen);
    Atomics.notify(ctl, DONE);
  }
}

// The one runtime quirk: Node's worker_threads talk through parentPort, the others are Web Workers.
const scope = /** @type {any} */ (globalThis);
if (scope.WorkerGlobalScope !== undefined) {
  scope.onmessage = (/** @type {MessageEvent} */ e) => void start(e.data, (m) => scope.postMessage(m));
} else {
  const { parentPort } = await import("node:worker_threads");
  const port = /** @type {import("node:worker_threads").MessagePort} */ (parentPort);
  port.once("message", (m) => void start(m, (r) => port.postMessage(r)));
}
