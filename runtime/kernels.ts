// Loads the AssemblyScript kernel module and gives the host typed access to it.
// Two builds exist: strict SIMD (everywhere) and relaxed SIMD (Node 22+, Deno, Bun,
// Chromium); "auto" picks by feature detection. A precompiled WebAssembly.Module may be
// passed instead (Cloudflare Workers only accept WASM imported as a module).
import { instantiate } from "@assemblyscript/loader";
import { BitNetError, OptionError } from "../model/errors.ts";
import { Arena } from "./arena.ts";
import { hasRelaxedSimd } from "./features.ts";
import { readBytes } from "./files.ts";
import { spawnThread, threadsAvailable } from "./spawn-thread.ts";
import { JOB_BYTES, PARALLEL_KERNELS, ThreadPool } from "./threads.ts";

export type SimdLevel = "relaxed" | "strict";

export interface KernelOptions {
  /** Which build to use: "auto" (default) takes relaxed SIMD where the runtime has it. */
  simd?: "auto" | SimdLevel;
  /** A precompiled kernel module of the chosen level (required where WASM cannot be compiled from bytes). */
  wasmModule?: WebAssembly.Module;
  /** Where the .wasm files are, if not next to this package's build/ folder. */
  wasmUrl?: string | URL;
  /**
   * Threads for the matrix products (default 1). More than one needs shared memory and
   * workers (Node, Deno, Bun, cross-origin-isolated pages); elsewhere (Cloudflare Workers,
   * pages without COOP/COEP) the kernels run on one thread and `Kernels.threads` says so.
   */
  threads?: number;
}

/** The functions that assembly/index.ts exports (addresses are byte offsets into memory). */
export interface KernelExports {
  heapBase(): number;
  setScratch(ptr: number): void;
  scratchBytes(): number;
  gemvF32(w: number, rows: number, cols: number, x: number, y: number): void;
  gemmF32(w: number, rows: number, cols: number, x: number, tokens: number, y: number): void;
  gemmF32Scalar(w: number, rows: number, cols: number, x: number, tokens: number, y: number): void;
  addInPlace(x: number, y: number, n: number): void;
  ternaryPackedBytes(rows: number, cols: number): number;
  ternaryMaxCols(): number;
  packTernary(src: number, rows: number, cols: number, dst: number): number;
  ternaryAt(w: number, rows: number, cols: number, r: number, c: number): number;
  ternaryGemm(w: number, rows: number, cols: number, x: number, xSums: number, xScales: number, tokens: number, wScale: number, y: number): void;
  ternaryGemmScalar(w: number, rows: number, cols: number, x: number, xSums: number, xScales: number, tokens: number, wScale: number, y: number): void;
  ternaryGemmGrouped(w: number, rows: number, cols: number, x: number, xGroupSums: number, xScales: number, tokens: number, groupCols: number, scales: number, y: number): void;
  ternaryGemmGroupedScalar(w: number, rows: number, cols: number, x: number, xGroupSums: number, xScales: number, tokens: number, groupCols: number, scales: number, y: number): void;
  sumGroups(x: number, stride: number, cols: number, tokens: number, groupCols: number, out: number): void;
  signPackedBytes(rows: number, cols: number): number;
  packSign(src: number, rows: number, cols: number, dst: number): number;
  binarizeSign(src: number, n: number, dst: number): number;
  signGemm(w: number, rows: number, cols: number, x: number, xSums: number, xScales: number, tokens: number, wScale: number, y: number): void;
  signGemmScalar(w: number, rows: number, cols: number, x: number, xSums: number, xScales: number, tokens: number, wScale: number, y: number): void;
  signGemmGrouped(w: number, rows: number, cols: number, x: number, xGroupSums: number, xScales: number, tokens: number, groupCols: number, scales: number, y: number): void;
  signGemmGroupedScalar(w: number, rows: number, cols: number, x: number, xGroupSums: number, xScales: number, tokens: number, groupCols: number, scales: number, y: number): void;
  decodeSignMagnitude2(src: number, count: number, msbFirst: boolean, dst: number): number;
  encodeSignMagnitude2(src: number, count: number, msbFirst: boolean, dst: number): number;
  i2sBytes(count: number): number;
  decodeI2S(src: number, count: number, dst: number, scale: number): number;
  encodeI2S(src: number, count: number, scale: number, dst: number): number;
  decodeTQ1(src: number, count: number, dst: number, scales: number): number;
  encodeTQ1(src: number, count: number, scale: number, dst: number): number;
  decodeTQ2(src: number, count: number, dst: number, scales: number): number;
  encodeTQ2(src: number, count: number, scale: number, dst: number): number;
  decodeHfPacked(src: number, rows: number, cols: number, dst: number): number;
  encodeHfPacked(src: number, rows: number, cols: number, dst: number): number;
  f16ToF32(h: number): number;
  f32ToF16(f: number): number;
  convertF16ToF32(src: number, n: number, dst: number): void;
  convertBF16ToF32(src: number, n: number, dst: number): void;
  gemmHalf(w: number, rows: number, cols: number, x: number, tokens: number, y: number, bf16: boolean): void;
  gemmHalfScalar(w: number, rows: number, cols: number, x: number, tokens: number, y: number, bf16: boolean): void;
  gemmI8(w: number, wScales: number, rows: number, cols: number, x: number, xStride: number, xScales: number, tokens: number, y: number): void;
  gemmI8Scalar(w: number, wScales: number, rows: number, cols: number, x: number, xStride: number, xScales: number, tokens: number, y: number): void;
  countNonFiniteHalf(src: number, n: number, bf16: boolean): number;
  ternarizeAbsmean(src: number, n: number, dst: number): number;
  ternarizeMedian(src: number, n: number, dst: number): number;
  quantizeGroups(src: number, rows: number, cols: number, groupCols: number, method: number, dst: number, scales: number): number;
  int8ToF32(src: number, n: number, scale: number, dst: number): void;
  int8ToBF16(src: number, n: number, scale: number, dst: number): void;
  countNonZeroI8(src: number, n: number): number;
  quantizeAbsmaxI8(x: number, n: number, tokens: number, q: number, nPad: number, scales: number, sums: number): number;
  quantizeAbsmaxI8Scalar(x: number, n: number, tokens: number, q: number, nPad: number, scales: number, sums: number): number;
  quantizeAbsmeanI4(x: number, n: number, tokens: number, q: number, nPad: number, scales: number, sums: number): number;
  quantizeAbsmeanI4Scalar(x: number, n: number, tokens: number, q: number, nPad: number, scales: number, sums: number): number;
  hadamardBlocks(x: number, n: number, rows: number, block: number): void;
  hadamardBlocksScalar(x: number, n: number, rows: number, block: number): void;
  ternaryColumnsBytes(rows: number, cols: number): number;
  packTernaryColumns(src: number, rows: number, cols: number, dst: number): number;
  ternaryGemvSparse(w: number, rows: number, cols: number, x: number, kept: number, count: number, wScale: number, xScale: number, y: number): void;
  ternaryGemvSparseScalar(w: number, rows: number, cols: number, x: number, kept: number, count: number, wScale: number, xScale: number, y: number): void;
  nonZeroColumns(x: number, n: number, kept: number): number;
  sparsifyTopK(x: number, n: number, tokens: number, zeroCount: number, out: number): void;
  rmsNorm(out: number, x: number, weight: number, n: number, tokens: number, eps: number): void;
  rmsNormScalar(out: number, x: number, weight: number, n: number, tokens: number, eps: number): void;
  l2Norm(out: number, x: number, n: number, tokens: number): void;
  l2NormScalar(out: number, x: number, n: number, tokens: number): void;
  rope(v: number, heads: number, headSize: number, tokens: number, rowStride: number, pos: number, cos: number, sin: number, neox: boolean): void;
  softmax(x: number, n: number): void;
  attention(out: number, q: number, k: number, v: number, scores: number, heads: number, kvHeads: number, headSize: number, tokens: number, pos: number): void;
  attentionScalar(out: number, q: number, k: number, v: number, scores: number, heads: number, kvHeads: number, headSize: number, tokens: number, pos: number): void;
  quantizeKV(src: number, tokens: number, heads: number, headSize: number, bits: number, codes: number, scales: number): number;
  attentionCodes(out: number, q: number, kCodes: number, kScales: number, vCodes: number, vScales: number, scores: number, heads: number, kvHeads: number, headSize: number, tokens: number, pos: number): void;
  attentionCodesScalar(out: number, q: number, kCodes: number, kScales: number, vCodes: number, vScales: number, scores: number, heads: number, kvHeads: number, headSize: number, tokens: number, pos: number): void;
  swiglu(gate: number, up: number, n: number): void;
  relu2glu(gate: number, up: number, n: number): void;
  negLogLikelihood(logits: number, n: number, target: number): number;
  streamRead(ptr: number, bytes: number): number;
  memory: WebAssembly.Memory;
}

/** One kernel instance: its own linear memory, an allocator over it, and typed views. */
export class Kernels {
  readonly arena: Arena;
  #pool: ThreadPool | null = null;
  constructor(public k: KernelExports, readonly level: SimdLevel) {
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
  /** Stops the worker threads, if any (the memory goes with the last reference). */
  dispose(): void {
    this.#pool?.close();
    this.#pool = null;
  }
  get memory(): WebAssembly.Memory {
    return this.k.memory;
  }
  /** Allocates n f32 / bytes / i32 (views are made fresh: memory growth detaches old ones). */
  allocF32(n: number): number {
    return this.arena.alloc(n * 4);
  }
  allocBytes(n: number): number {
    return this.arena.alloc(n);
  }
  f32(ptr: number, n: number): Float32Array {
    return new Float32Array(this.k.memory.buffer, ptr, n);
  }
  i32(ptr: number, n: number): Int32Array {
    return new Int32Array(this.k.memory.buffer, ptr, n);
  }
  i8(ptr: number, n: number): Int8Array {
    return new Int8Array(this.k.memory.buffer, ptr, n);
  }
  u8(ptr: number, n: number): Uint8Array {
    return new Uint8Array(this.k.memory.buffer, ptr, n);
  }
  /** Copies bytes (any typed array) into memory at ptr. */
  write(ptr: number, data: ArrayBufferView): void {
    this.u8(ptr, data.byteLength).set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  }
  /** Allocates and fills in one step. */
  put(data: ArrayBufferView): number {
    const ptr = this.arena.alloc(data.byteLength);
    this.write(ptr, data);
    return ptr;
  }
}

const compiled = new Map<string, Promise<WebAssembly.Module>>();

/** Resolves "auto" to the build this runtime can run. */
export function resolveSimdLevel(simd: KernelOptions["simd"] = "auto"): SimdLevel {
  if (simd === "auto") return hasRelaxedSimd() ? "relaxed" : "strict";
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
  if (threads > 1 && !options.wasmModule && (await threadsAvailable())) return loadThreaded(level, threads, options.wasmUrl);
  const module = options.wasmModule ?? (await compileKernels(level, options.wasmUrl));
  const { exports } = await instantiate<Record<string, unknown>>(module, {});
  return new Kernels(exports as unknown as KernelExports, level);
}

// The threaded build imports a shared memory; each worker instantiates it on that memory
// with its own scratch; they share one job block. Both are allocated here before anything else.
async function loadThreaded(level: SimdLevel, threads: number, wasmUrl?: string | URL): Promise<Kernels> {
  const module = await compileKernels(level, wasmUrl, true);
  const memory = new WebAssembly.Memory({ initial: 1, maximum: 65536, shared: true });
  const { exports } = await instantiate<Record<string, unknown>>(module, { env: { memory } });
  const kernels = new Kernels(exports as unknown as KernelExports, level);
  const job = kernels.allocBytes(JOB_BYTES), workers = [];
  try {
    for (let i = 1; i < threads; i++) {
      const scratch = kernels.allocBytes(kernels.k.scratchBytes());
      workers.push(await spawnThread({ module, memory, job, scratch, names: PARALLEL_KERNELS }));
    }
  } catch (e) {
    for (const w of workers) w.terminate();
    throw new BitNetError(`could not start ${threads - 1} kernel worker threads`, { cause: e });
  }
  kernels.useThreads(new ThreadPool(memory, job, workers));
  return kernels;
}
