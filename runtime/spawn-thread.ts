// Starting a kernel worker thread, the one part of threading that differs by runtime:
// Node and Deno start it through node:worker_threads, Bun and browsers as a module Web Worker.
//
// Idle kernel threads must never keep a process alive (a script that forgets dispose() still
// exits), and the decode loop must not pay for that: a token makes ~120 jobs, so workers stay
// up between jobs and are instead detached from the event loop, the way each runtime allows:
// - Node: worker_threads' Worker.unref().
// - Bun: its Web Worker has unref() (and ref()), which works while the worker sleeps in Atomics.wait.
// - Deno: its Web Worker has no unref() (2.x: only postMessage / terminate), and a live Web
//   Worker holds the process open, but Deno's node:worker_threads Worker has a working unref()
//   (denoland/deno#22778), so Deno starts kernel workers through node:worker_threads. The
//   alternatives cost speed: terminating idle workers after an (unref'd) timeout means a
//   respawn, asynchronous (a synchronous job cannot wait for it) and measured at ~25 ms a
//   worker on Deno (~60 ms on Node), after every pause; workers ending themselves on a wait
//   timeout, the same. Decoding through node:worker_threads on Deno is as fast as through Web Workers.
// - Browsers: Web Workers; a page has no process to keep alive.
// A job runs synchronously on the calling thread, so the process is alive anyway while one runs.
// unref() comes after the worker's "ready" reply: waiting for it is what keeps a process
// (Deno's especially) alive while the kernels load.
import type { ThreadHandle } from "./threads.ts";

const isDeno = () => typeof (globalThis as { Deno?: unknown }).Deno !== "undefined";
const isNode = () => typeof (globalThis as { process?: { versions?: { node?: string } } }).process?.versions?.node === "string" &&
  !isDeno() && typeof (globalThis as { Bun?: unknown }).Bun === "undefined";
/** Whether kernel workers start through node:worker_threads (Node, and Deno for its unref()). */
const useNodeWorkers = () => isNode() || isDeno();

/** Whether worker threads with shared memory can run here (not in Cloudflare Workers or pages without cross-origin isolation). */
export function threadsAvailable(): boolean {
  if (typeof SharedArrayBuffer === "undefined" || (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated === false) return false;
  return typeof Worker === "function" || isNode();
}

/** The cores this process may run on (os.availableParallelism on Node, navigator.hardwareConcurrency elsewhere), or undefined if unknown. */
export async function coreCount(): Promise<number | undefined> {
  if (isNode()) {
    const os = await import("node:os");
    return os.availableParallelism?.() ?? os.cpus().length;
  }
  const n = (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator?.hardwareConcurrency;
  return typeof n === "number" && n > 0 ? n : undefined;
}

let dataUrl: Promise<URL> | undefined;
/** node:worker_threads starts file: and data: URLs only: a remote module (Deno importing the package by URL, as from JSR) hands it the worker's source. */
function workerDataUrl(url: URL): Promise<URL> {
  return (dataUrl ??= fetch(url).then(async (response) => {
    if (!response.ok) throw new Error(`cannot fetch ${url.href}: HTTP ${response.status}`);
    return new URL(`data:text/javascript,${encodeURIComponent(await response.text())}`);
  }).catch((e) => {
    dataUrl = undefined; // a later load may try again
    throw e;
  }));
}

/** Starts a worker on `init` (see thread-worker.js); resolves once its kernels are instantiated. */
export async function spawnThread(init: unknown): Promise<ThreadHandle> {
  const url = new URL("./thread-worker.js", import.meta.url); // plain JavaScript, from source and built alike
  if (typeof Worker === "function" && !useNodeWorkers()) {
    const worker = new Worker(url, { type: "module" });
    await new Promise<void>((resolve, reject) => {
      worker.onmessage = () => resolve();
      worker.onerror = (e) => reject(new Error(e.message));
      worker.postMessage(init);
    });
    (worker as { unref?: () => void }).unref?.(); // Bun: idle kernel threads never keep the process alive
    return worker;
  }
  const { Worker: NodeWorker } = await import("node:worker_threads");
  const worker = new NodeWorker(url.protocol === "file:" ? url : await workerDataUrl(url));
  await new Promise<void>((resolve, reject) => {
    worker.once("message", () => resolve());
    worker.once("error", reject);
    worker.postMessage(init);
  });
  worker.unref(); // Node, Deno: idle kernel threads never keep the process alive
  return { terminate: () => void worker.terminate() };
}
