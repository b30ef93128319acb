// Loads the AssemblyScript kernel module and gives the host typed access to it.
// Two builds exist: strict SIMD (everywhere) and relaxed SIMD (Node 22+, Deno, Bun,
// Chromium); "auto" takes relaxed where the runtime has it and runs it faster. A precompiled WebAssembly.Module may be
// passed instead (Cloudflare Workers only accept WASM imported as a module).
import { instantiate } from "@assemblyscript/loader";
import { BitNetError, OptionError } from "../core/errors.ts";
import { Arena } from "./arena.ts";
import { hasRelaxedSimd, relaxedSimdPays } from "./features.ts";
import { readBytes } from "./files.ts";
import { coreCount, spawnThread, threadsAvailable } from "./spawn-thread.ts";
import { JOB_BYTES, JOB_LAYOUT, PARALLEL_KERNELS, ThreadPool } from "./threads.ts";
import { KERNEL_PARAMS, type KernelExports } from "./kernel-exports.ts";
import type { Ptr } from "./ptr.ts";

/** Kernel build: relaxed SIMD (Node 22+, Deno, Bun, Chromium) or strict SIMD (everywhere). */
export type SimdLevel = "relaxed" | "strict";

/** How to load the kernels: build, precompiled module, location, threads. */
export interface KernelOptions {
  /** Which build to use: "auto" (default) takes relaxed SIMD where the runtime has it and runs it faster (see relaxedSimdPays). */
  simd?: "auto" | SimdLevel;
  /** A precompiled kernel module of the chosen level (required where WASM cannot be compiled from bytes). */
  wasmModule?: WebAssembly.Module;
  /** Where the .wasm files are, if not next to this package's build/ folder. */
  wasmUrl?: string | URL;
  /**
   * Threads for the matrix products (default 1). More than one needs shared memory and
   * workers (Node, Deno, Bun, cross-origin-isolated pages); elsewhere (Cloudflare Workers,
   * pages without COOP/COEP) the kernels run on one thread and `Kernels.threads` says so.
   * More threads than the machine has cores print a warning (console.warn) at load. Idle
   * worker threads never keep the process alive (dispose() stops them sooner).
   */
  threads?: number;
}

// The kernel interface is generated from the AssemblyScript build (scripts/kernel-exports.ts).
export type { KernelExports } from "./kernel-exports.ts";

/** One kernel instance: its own linear memory, an allocator over it, and typed views (K: the test builds' wider exports in the tests). */
export class Kernels<K extends KernelExports = KernelExports> {
  /** Allocator over the instance's memory. */
  readonly arena: Arena;
  #pool: ThreadPool | null = null;
  /** Wraps an instance's exports (see loadKernels). */
  constructor(public k: K, readonly level: SimdLevel) {
    this.arena = new Arena(k.memory, k.heapBase());
  }
  /** Threads the matrix products run on. */
  get threads(): number {
    return this.#pool?.threads ?? 1;
  }
  /** Splits the matrix products over a pool of worker threads sharing this memory. */
  useThreads(pool: ThreadPool): void {
    this.#pool = pool;
    this.k = pool.wrap(this.k);
  }
  /**
   * Runs the matrix products that `body` calls as one job for the worker threads (q, k and v
   * of one input, say): they must not read each other's outputs. Without threads it just calls body.
   */
  together(body: () => void): void {
    if (this.#pool) this.#pool.together(body);
    else body();
  }
  /** Stops the worker threads, if any (the memory goes with the last reference). */
  dispose(): void {
    this.#pool?.close();
    this.#pool = null;
  }
  /** The instance's linear memory. */
  get memory(): WebAssembly.Memory {
    return this.k.memory;
  }
  /** Allocates n f32 / bytes / i32 (views are made fresh: memory growth detaches old ones). */
  allocF32(n: number): Ptr {
    return this.arena.alloc(n * 4);
  }
  /** Allocates n bytes (64-byte aligned); returns the address. */
  allocBytes(n: number): Ptr {
    return this.arena.alloc(n);
  }
  /** A fresh f32 view of n values at ptr. */
  f32(ptr: Ptr, n: number): Float32Array {
    return new Float32Array(this.k.memory.buffer, ptr, n);
  }
  /** A fresh i32 view of n values at ptr. */
  i32(ptr: Ptr, n: number): Int32Array {
    return new Int32Array(this.k.memory.buffer, ptr, n);
  }
  /** A fresh int8 view of n values at ptr. */
  i8(ptr: Ptr, n: number): Int8Array {
    return new Int8Array(this.k.memory.buffer, ptr, n);
  }
  /** A fresh byte view of n bytes at ptr. */
  u8(ptr: Ptr, n: number): Uint8Array {
    return new Uint8Array(this.k.memory.buffer, ptr, n);
  }
  /** Copies bytes (any typed array) into memory at ptr. */
  write(ptr: Ptr, data: ArrayBufferView): void {
    this.u8(ptr, data.byteLength).set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  }
  /** Allocates and fills in one step. */
  put(data: ArrayBufferView): Ptr {
    const ptr = this.allocBytes(data.byteLength);
    this.write(ptr, data);
    return ptr;
  }
}

/** A table of parameter names for every function of K (runtime/kernel-exports.ts generates them). */
export type KernelParams<K extends KernelExports> = { readonly [name in Exclude<keyof K, "memory">]: readonly string[] };

/**
 * The exports of an instance, typed as K once checked against `params`: each function is
 * there with as many parameters as the AssemblyScript source gives it, so a build/*.wasm
 * older or newer than this runtime fails here, naming the function, instead of in a kernel.
 */
export function checkExports<K extends KernelExports>(exports: Record<string, unknown>, params: KernelParams<K>): K {
  if (!(exports.memory instanceof WebAssembly.Memory)) throw new BitNetError("the kernel module exports no memory: not a bitnet-wasm kernel build");
  for (const [name, list] of Object.entries(params) as [string, readonly string[]][]) {
    const fn = exports[name] as ((...a: unknown[]) => unknown) & { original?: (...a: unknown[]) => unknown } | undefined;
    const arity = typeof fn === "function" ? (fn.original ?? fn).length : -1;
    if (arity !== list.length) {
      const what = arity < 0 ? `has no function ${name}` : `has ${name} with ${arity} parameters, not ${list.length}`;
      throw new BitNetError(`the kernel module ${what}: it is not the build of this runtime's assembly/ sources (npm run build:wasm)`);
    }
  }
  return exports as K;
}

/** Instantiates a one-thread kernel module (of `level`) and checks its exports against `params` (loadKernels: the production table). */
export async function instantiateKernels<K extends KernelExports>(module: WebAssembly.Module, level: SimdLevel, params: KernelParams<K>): Promise<Kernels<K>> {
  const { exports } = await instantiate<Record<string, unknown>>(module, {});
  return new Kernels(checkExports<K>(exports, params), level);
}

const compiled = new Map<string, Promise<WebAssembly.Module>>();

/** Resolves "auto" to the faster build this runtime can run. */
export function resolveSimdLevel(simd: KernelOptions["simd"] = "auto"): SimdLevel {
  if (simd === "auto") return relaxedSimdPays() ? "relaxed" : "strict";
  if (simd !== "relaxed" && simd !== "strict") {
    throw new OptionError("simd", `expected "auto", "relaxed" or "strict", got ${JSON.stringify(simd)}`);
  }
  if (simd === "relaxed" && !hasRelaxedSimd()) {
    throw new OptionError("simd", "relaxed SIMD was requested but this runtime's WebAssembly lacks it (Node 20 does; use Node 22+, Deno, Bun or a recent browser)");
  }
  return simd;
}

/** The URL of a kernel binary: build/kernels-{simd,relaxed}[-threads].wasm next to this package. */
export function kernelUrl(level: SimdLevel, base?: string | URL, threaded = false): URL {
  const file = `kernels-${level === "relaxed" ? "relaxed" : "simd"}${threaded ? "-threads" : ""}.wasm`;
  return base ? new URL(file, base) : new URL(`../build/${file}`, import.meta.url);
}

/** Compiles (once per process) the kernel module of a level. */
export function compileKernels(level: SimdLevel, wasmUrl?: string | URL, threaded = false): Promise<WebAssembly.Module> {
  const url = kernelUrl(level, wasmUrl, threaded);
  let module = compiled.get(url.href);
  if (!module) {
    module = readBytes(url).then((bytes) => WebAssembly.compile(bytes as BufferSource));
    compiled.set(url.href, module);
    module.catch(() => compiled.delete(url.href));
  }
  return module;
}

/** A fresh kernel instance (its own memory), with worker threads when asked for and possible. */
export async function loadKernels(options: KernelOptions = {}): Promise<Kernels> {
  const level = resolveSimdLevel(options.simd);
  const threads = options.threads ?? 1;
  if (!Number.isInteger(threads) || threads < 1 || threads > 64) throw new OptionError("threads", `expected an integer from 1 to 64, got ${threads}`);
  if (threads > 1 && !options.wasmModule && threadsAvailable()) {
    // More threads than cores run slower, not faster (they take turns, and a spinning one holds a core): say so.
    const cores = await coreCount();
    if (cores !== undefined && threads > cores) {
      console.warn(`bitnet-wasm: threads: ${threads} is more than the ${cores} cores of this machine; the threads will compete for cores and the products run slower`);
    }
    return loadThreaded(level, threads, options.wasmUrl);
  }
  const module = options.wasmModule ?? (await compileKernels(level, options.wasmUrl));
  return instantiateKernels<KernelExports>(module, level, KERNEL_PARAMS);
}

// The threaded build imports a shared memory; each worker instantiates it on that memory
// with its own scratch; they share one job block. Both are allocated here before anything else.
async function loadThreaded(level: SimdLevel, threads: number, wasmUrl?: string | URL): Promise<Kernels> {
  const module = await compileKernels(level, wasmUrl, true);
  const memory = new WebAssembly.Memory({ initial: 1, maximum: 65536, shared: true });
  const { exports } = await instantiate<Record<string, unknown>>(module, { env: { memory } });
  const kernels = new Kernels(checkExports<KernelExports>(exports, KERNEL_PARAMS), level);
  const job = kernels.allocBytes(JOB_BYTES), workers = [];
  try {
    for (let i = 1; i < threads; i++) {
      const scratch = kernels.allocBytes(kernels.k.scratchBytes());
      workers.push(await spawnThread({ module, memory, job, scratch, names: PARALLEL_KERNELS, layout: JOB_LAYOUT }));
    }
  } catch (e) {
    for (const w of workers) w.terminate();
    throw new BitNetError(`could not start ${threads - 1} kernel worker threads`, { cause: e });
  }
  kernels.useThreads(new ThreadPool(memory, job, workers));
  return kernels;
}
