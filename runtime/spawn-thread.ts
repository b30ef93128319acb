// Starting a kernel worker thread, the one part of threading that differs by runtime:
// Node has worker_threads; Deno, Bun and browsers have module Web Workers.
import type { ThreadHandle } from "./threads.ts";

const isNode = () => typeof (globalThis as { process?: { versions?: { node?: string } } }).process?.versions?.node === "string" &&
  typeof (globalThis as { Deno?: unknown }).Deno === "undefined" && typeof (globalThis as { Bun?: unknown }).Bun === "undefined";

/** Whether worker threads with shared memory can run here (not in Cloudflare Workers or pages without cross-origin isolation). */
export function threadsAvailable(): boolean {
  if (typeof SharedArrayBuffer === "undefined" || (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated === false) return false;
  return typeof Worker === "function" || isNode();
}

/** Starts a worker on `init` (see thread-worker.js); resolves once its kernels are instantiated. */
export async function spawnThread(init: unknown): Promise<ThreadHandle> {
  const url = new URL("./thread-worker.js", import.meta.url); // plain JavaScript, from source and built alike
  if (typeof Worker === "function" && !isNode()) {
    const worker = new Worker(url, { type: "module" });
    await new Promise<void>((resolve, reject) => {
      worker.onmessage = () => resolve();
      worker.onerror = (e) => reject(new Error(e.message));
      worker.postMessage(init);
    });
    return worker;
  }
  const { Worker: NodeWorker } = await import("node:worker_threads");
  const worker = new NodeWorker(url);
  worker.unref(); // idle kernel threads never keep the process alive
  await new Promise<void>((resolve, reject) => {
    worker.once("message", () => resolve());
    worker.once("error", reject);
    worker.postMessage(init);
  });
  return { terminate: () => void worker.terminate() };
}
