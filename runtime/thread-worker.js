// @ts-check
// A kernel worker thread: instantiates the kernel module on the memory it shares with the
// main instance, moves its scratch to its own region, then claims and runs chunks of the
// jobs the main thread posts in the job block until told to stop. The block's layout is
// threads.ts's JOB_LAYOUT, which comes in the start message (this file imports nothing of the host's).
// Plain JavaScript with no static imports, so every runtime starts it as it is, from source or
// built. It is started by URL (spawn-thread.ts), never imported, so it is outside the web
// entry's import graph and bundlers leave it alone; its one dynamic import, node:worker_threads
// at the end, runs only in workers that runtime/node.ts started through node:worker_threads
// (Node, Deno), never in a Web Worker (browsers, Bun).

// Spin this many polls before sleeping: a decoded token brings a few hundred jobs, each
// shortly after the last, and a futex wake-up per job would cost more than the spinning.
const SPINS = 1 << 20;
// A spin-loop hint (x86 PAUSE) where the runtime has it, so spinning takes less from a sibling hyperthread.
const pause = /** @type {{ pause?: () => void }} */ (Atomics).pause ?? (() => {});

/**
 * @typedef {{ seq: number, claim: number, stop: number, chunks: number, completed: number, failed: number, argsByte: number, slots: number }} JobLayout
 *   threads.ts's JOB_LAYOUT: indices of the i32 fields, and where (bytes) and how wide (f64 slots) each chunk's kernel index and arguments are.
 * @param {{ module: WebAssembly.Module, memory: WebAssembly.Memory, job: number, scratch: number, names: string[], layout: JobLayout }} init
 *   job / scratch: addresses of the job block and of this worker's kernel scratch; names: the kernels a job may name, by index.
 * @param {(message: unknown) => void} reply
 */
async function start(init, reply) {
  const { seq: SEQ, claim: CLAIM, stop: STOP, chunks: CHUNKS, completed: COMPLETED, failed: FAILED, argsByte, slots: SLOTS } = init.layout;
  if (SLOTS > 13) throw new Error(`thread-worker.js passes a kernel 12 arguments, the job block has ${SLOTS - 1} per chunk`);
  const instance = await WebAssembly.instantiate(init.module, { env: { memory: init.memory } });
  const exports = /** @type {Record<string, (...args: number[]) => void>} */ (instance.exports);
  exports.setScratch(init.scratch);
  const fns = init.names.map((name) => exports[name]);
  const job = new Int32Array(init.memory.buffer, init.job, argsByte >> 2);
  const args = new Float64Array(init.memory.buffer, init.job + argsByte);
  reply("ready");
  let seen = 0;
  for (;;) {
    for (let spins = 0; Atomics.load(job, SEQ) === seen;) {
      pause();
      if (++spins > SPINS) {
        Atomics.wait(job, SEQ, seen);
        spins = 0;
      }
    }
    seen = Atomics.load(job, SEQ);
    if (job[STOP]) return;
    const tag = seen & 0xffff;
    // Claim chunks of this job (and no later one) while there are any.
    for (let v = Atomics.load(job, CLAIM); v >>> 16 === tag && (v & 0xffff) < job[CHUNKS]; v = Atomics.load(job, CLAIM)) {
      if (Atomics.compareExchange(job, CLAIM, v, v + 1) !== v) continue;
      const a = (v & 0xffff) * SLOTS, fn = args[a];
      try {
        fns[fn](args[a + 1], args[a + 2], args[a + 3], args[a + 4], args[a + 5], args[a + 6], args[a + 7], args[a + 8], args[a + 9], args[a + 10], args[a + 11], args[a + 12]);
      } catch {
        job[FAILED] = fn + 1; // a trap: the main thread raises it once every chunk is accounted for
      }
      Atomics.add(job, COMPLETED, 1);
    }
  }
}

// The one runtime quirk: node:worker_threads workers (Node's, and Deno's: spawn-thread.ts says
// why) talk through parentPort, Web Workers through their global scope. Bun's Web Workers have
// no WorkerGlobalScope but do have parentPort. (Told by the scope the worker finds itself in,
// since nothing can be passed before the first message; the web entry never takes the else.)
const scope = /** @type {any} */ (globalThis);
if (scope.WorkerGlobalScope !== undefined) {
  scope.onmessage = (/** @type {MessageEvent} */ e) => void start(e.data, (m) => scope.postMessage(m));
} else {
  const { parentPort } = await import("node:worker_threads");
  const port = /** @type {import("node:worker_threads").MessagePort} */ (parentPort);
  port.once("message", (m) => void start(m, (r) => port.postMessage(r)));
}
