// @ts-check
// A kernel worker thread that fails on purpose, for tests/faults.test.ts, which starts it through
// useThreadStarter in place of runtime/thread-worker.js. It answers the start message as the real
// worker does, then waits for jobs in the job block until it claims a chunk, and then, by
// `init.fault`:
// - "exit": ends its thread without finishing the chunk, as a worker terminated or crashed in the
//   middle of a chunk would;
// - "trap": reports the chunk as trapped (as the real worker reports a kernel that traps), then
//   never claims another one.
// It never runs a kernel. Plain JavaScript, started by URL like the real worker.

/**
 * @param {{ memory: WebAssembly.Memory, job: number, fault: "exit" | "trap", layout: { seq: number, claim: number, stop: number, chunks: number, completed: number, failed: number, argsByte: number, slots: number } }} init
 * @param {(message: unknown) => void} reply
 * @param {() => void} exit
 */
function start(init, reply, exit) {
  const { seq: SEQ, claim: CLAIM, stop: STOP, chunks: CHUNKS, completed: COMPLETED, failed: FAILED, argsByte, slots: SLOTS } = init.layout;
  const job = new Int32Array(init.memory.buffer, init.job, argsByte >> 2), args = new Float64Array(init.memory.buffer, init.job + argsByte);
  reply("ready");
  for (let seen = Atomics.load(job, SEQ);;) {
    Atomics.wait(job, SEQ, seen); // the calling thread may well take every chunk first: the test tries again
    seen = Atomics.load(job, SEQ);
    if (job[STOP]) return;
    const v = Atomics.load(job, CLAIM);
    if (v >>> 16 !== (seen & 0xffff) || (v & 0xffff) >= job[CHUNKS] || Atomics.compareExchange(job, CLAIM, v, v + 1) !== v) continue;
    if (init.fault === "exit") return exit();
    job[FAILED] = args[(v & 0xffff) * SLOTS] + 1;
    Atomics.add(job, COMPLETED, 1);
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0); // idle for good (until terminated)
  }
}

// Started as the real worker is: a Web Worker's global scope, else node:worker_threads' parentPort (Node, Deno, Bun).
const scope = /** @type {any} */ (globalThis);
if (scope.WorkerGlobalScope !== undefined) {
  scope.onmessage = (/** @type {MessageEvent} */ e) => start(e.data, (m) => scope.postMessage(m), () => scope.close());
} else {
  const { parentPort } = await import("node:worker_threads");
  const port = /** @type {import("node:worker_threads").MessagePort} */ (parentPort);
  port.once("message", (m) => start(m, (r) => port.postMessage(r), () => scope.process.exit(0)));
}
