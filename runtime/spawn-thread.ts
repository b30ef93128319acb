// Starting a kernel worker thread, the one part of threading that differs by runtime:
// Node and Deno start it through node:worker_threads, Bun and browsers as a module Web Worker.
// This module is web-standard (Web Workers, navigator.hardwareConcurrency); the node:worker_threads
// path is a ThreadStarter that the Node / Deno / Bun adapter (runtime/node.ts) installs.
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

/**
 * How kernel worker threads start where Web Workers are not the way (runtime/node.ts gives
 * one: node:worker_threads on Node and Deno). Without one, threads are module Web Workers and
 * the core count is navigator.hardwareConcurrency.
 */
export interface ThreadStarter {
  /** Starts a worker on `url` (thread-worker.js), posts it `init` and resolves once it replies; idle, it must not keep the process alive. */
  spawn(url: URL, init: unknown): Promise<ThreadHandle>;
  /** The cores this process may run on; absent or undefined: navigator.hardwareConcurrency. */
  coreCount?: () => number | undefined;
}

let starter: ThreadStarter | null = null;

/** Installs how threads start (runtime/node.ts does on import); null: module Web Workers. */
export function useThreadStarter(s: ThreadStarter | null): void {
  starter = s;
}

/** Whether worker threads with shared memory can run here (not in Cloudflare Workers or pages without cross-origin isolation). */
export function threadsAvailable(): boolean {
  if (typeof SharedArrayBuffer === "undefined" || (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated === false) return false;
  return starter !== null || typeof Worker === "function";
}

/** The cores this process may run on (the thread starter's count, else navigator.hardwareConcurrency), or undefined if unknown. */
export function coreCount(): Promise<number | undefined> {
  const counted = starter?.coreCount?.();
  if (counted !== undefined) return Promise.resolve(counted);
  const n = (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator?.hardwareConcurrency;
  return Promise.resolve(typeof n === "number" && n > 0 ? n : undefined);
}

/** Starts a module Web Worker on `url`, posts it `init`, resolves once it replies; unref'd where the runtime allows (Bun). */
export async function spawnWebWorker(url: URL, init: unknown): Promise<ThreadHandle> {
  const worker = new Worker(url, { type: "module" });
  await new Promise<void>((resolve, reject) => {
    worker.onmessage = () => resolve();
    worker.onerror = (e) => reject(new Error(e.message));
    worker.postMessage(init);
  });
  (worker as { unref?: () => void }).unref?.(); // Bun: idle kernel threads never keep the process alive
  return worker;
}

/** Starts a worker on `init` (see thread-worker.js); resolves once its kernels are instantiated. */
export function spawnThread(init: unknown): Promise<ThreadHandle> {
  const url = new URL("./thread-worker.js", import.meta.url); // plain JavaScript, from source and built alike
  return starter ? starter.spawn(url, init) : spawnWebWorker(url, init);
}
