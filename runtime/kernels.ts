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
import { JOB_BYTES, PARALLEL_KERNELS, ThreadPool } from "./threads.ts";

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

/** The functions that assembly/index.ts exports (addresses are byte offsets into memory). */
export interface KernelExports {
  /** First address the host may allocate from (static data and the main scratch lie below). */
  heapBase(): number;
  /** Moves this instance's kernel scratch (a worker thread's own region). */
  setScratch(ptr: number): void;
  /** Bytes of kernel scratch each thread needs. */
  scratchBytes(): number;
  /** y = W x for f32 weights [rows, cols] and one token. */
  gemvF32(w: number, rows: number, cols: number, x: number, y: number): void;
  /** Y = X W^T for f32 weights [rows, cols] and `tokens` tokens. */
  gemmF32(w: number, rows: number, cols: number, x: number, tokens: number, y: number): void;
  /** Scalar twin of gemmF32 (same summation order). */
  gemmF32Scalar(w: number, rows: number, cols: number, x: number, tokens: number, y: number): void;
  /** x += y over n f32 values (residual connections). */
  addInPlace(x: number, y: number, n: number): void;
  /** Bytes of a [rows, cols] ternary matrix in the kernel layout. */
  ternaryPackedBytes(rows: number, cols: number): number;
  /** Widest input the ternary kernels take. */
  ternaryMaxCols(): number;
  /** Packs int8 -1/0/1 [rows, cols] into the kernel layout; returns how many values were invalid. */
  packTernary(src: number, rows: number, cols: number, dst: number): number;
  /** The ternary weight at (r, c) of a packed matrix. */
  ternaryAt(w: number, rows: number, cols: number, r: number, c: number): number;
  /** Ternary weights x int8 activations, one weight scale: Y[t, r] = (W[r] . X[t]) * wScale * xScales[t]. */
  ternaryGemm(w: number, rows: number, cols: number, x: number, xSums: number, xScales: number, tokens: number, wScale: number, y: number): void;
  /** Scalar twin of ternaryGemm. */
  ternaryGemmScalar(w: number, rows: number, cols: number, x: number, xSums: number, xScales: number, tokens: number, wScale: number, y: number): void;
  /** ternaryGemm with one scale per row and group of `groupCols` columns. */
  ternaryGemmGrouped(w: number, rows: number, cols: number, x: number, xGroupSums: number, xScales: number, tokens: number, groupCols: number, scales: number, y: number): void;
  /** Scalar twin of ternaryGemmGrouped. */
  ternaryGemmGroupedScalar(w: number, rows: number, cols: number, x: number, xGroupSums: number, xScales: number, tokens: number, groupCols: number, scales: number, y: number): void;
  /** Sums of int8 activations over each group of columns (for the grouped kernels). */
  sumGroups(x: number, stride: number, cols: number, tokens: number, groupCols: number, out: number): void;
  /** Bytes of a [rows, cols] 1-bit sign matrix in the kernel layout. */
  signPackedBytes(rows: number, cols: number): number;
  /** Packs int8 -1/+1 [rows, cols] into the 1-bit layout; returns how many values were invalid. */
  packSign(src: number, rows: number, cols: number, dst: number): number;
  /** W_b = Sign(W - mean W) as int8; returns beta = mean|W| (NaN for non-finite weights). */
  binarizeSign(src: number, n: number, dst: number): number;
  /** 1-bit weights x int8 activations, one weight scale. */
  signGemm(w: number, rows: number, cols: number, x: number, xSums: number, xScales: number, tokens: number, wScale: number, y: number): void;
  /** Scalar twin of signGemm. */
  signGemmScalar(w: number, rows: number, cols: number, x: number, xSums: number, xScales: number, tokens: number, wScale: number, y: number): void;
  /** signGemm with one scale per row and group of columns. */
  signGemmGrouped(w: number, rows: number, cols: number, x: number, xGroupSums: number, xScales: number, tokens: number, groupCols: number, scales: number, y: number): void;
  /** Scalar twin of signGemmGrouped. */
  signGemmGroupedScalar(w: number, rows: number, cols: number, x: number, xGroupSums: number, xScales: number, tokens: number, groupCols: number, scales: number, y: number): void;
  /** bitllama's 2-bit sign-magnitude codes to int8; returns how many codes were invalid. */
  decodeSignMagnitude2(src: number, count: number, msbFirst: boolean, dst: number): number;
  /** int8 ternary to bitllama's 2-bit codes; returns how many values were invalid. */
  encodeSignMagnitude2(src: number, count: number, msbFirst: boolean, dst: number): number;
  /** Bytes of `count` weights in bitnet.cpp's I2_S layout (codes and scale). */
  i2sBytes(count: number): number;
  /** I2_S to int8 (and its scale); returns how many codes were invalid. */
  decodeI2S(src: number, count: number, dst: number, scale: number): number;
  /** int8 ternary to I2_S with a scale; returns how many values were invalid. */
  encodeI2S(src: number, count: number, scale: number, dst: number): number;
  /** ggml TQ1_0 blocks to int8 and per-block scales. */
  decodeTQ1(src: number, count: number, dst: number, scales: number): number;
  /** int8 ternary to TQ1_0 blocks with one scale. */
  encodeTQ1(src: number, count: number, scale: number, dst: number): number;
  /** ggml TQ2_0 blocks to int8 and per-block scales; returns how many codes were invalid. */
  decodeTQ2(src: number, count: number, dst: number, scales: number): number;
  /** int8 ternary to TQ2_0 blocks with one scale. */
  encodeTQ2(src: number, count: number, scale: number, dst: number): number;
  /** Hugging Face packed BitNet uint8 [rows / 4, cols] to int8; returns how many codes were invalid. */
  decodeHfPacked(src: number, rows: number, cols: number, dst: number): number;
  /** int8 ternary to the Hugging Face packed layout. */
  encodeHfPacked(src: number, rows: number, cols: number, dst: number): number;
  /** One IEEE half (as bits) to f32. */
  f16ToF32(h: number): number;
  /** One f32 to IEEE half bits (round to nearest even). */
  f32ToF16(f: number): number;
  /** n f16 values to f32. */
  convertF16ToF32(src: number, n: number, dst: number): void;
  /** n bfloat16 values to f32. */
  convertBF16ToF32(src: number, n: number, dst: number): void;
  /** Regroups f32 inputs [tokens, cols] for gemmHalf into out; returns its `rescale` argument (1 when some |x| >= 2^16 for f16). */
  prepareHalfInput(x: number, cols: number, tokens: number, out: number, bf16: boolean): number;
  /** Y = X W^T for f16 or bf16 weights (an LM head in its stored precision), X as prepareHalfInput wrote it. */
  gemmHalf(w: number, rows: number, cols: number, x: number, tokens: number, y: number, bf16: boolean, rescale: number): void;
  /** Scalar twin of gemmHalf. */
  gemmHalfScalar(w: number, rows: number, cols: number, x: number, tokens: number, y: number, bf16: boolean, rescale: number): void;
  /** Y = X W^T for int8 rows with per-row scales against int8 activations (the int8 LM head). */
  gemmI8(w: number, wScales: number, rows: number, cols: number, x: number, xStride: number, xScales: number, tokens: number, y: number): void;
  /** Scalar twin of gemmI8. */
  gemmI8Scalar(w: number, wScales: number, rows: number, cols: number, x: number, xStride: number, xScales: number, tokens: number, y: number): void;
  /** How many of n f16 / bf16 values are infinite or NaN. */
  countNonFiniteHalf(src: number, n: number, bf16: boolean): number;
  /** BitNet b1.58 absmean ternarization of n f32 to int8; returns the scale (NaN for non-finite input). */
  ternarizeAbsmean(src: number, n: number, dst: number): number;
  /** As ternarizeAbsmean with gamma = median|W| (BitNet b1.58 Reloaded). */
  ternarizeMedian(src: number, n: number, dst: number): number;
  /** Ternarizes or binarizes each group of columns of each row on its own; returns how many groups were not finite. */
  quantizeGroups(src: number, rows: number, cols: number, groupCols: number, method: number, dst: number, scales: number): number;
  /** int8 values times a scale, as f32. */
  int8ToF32(src: number, n: number, scale: number, dst: number): void;
  /** int8 values times a scale, as bfloat16. */
  int8ToBF16(src: number, n: number, scale: number, dst: number): void;
  /** How many of n int8 values are non-zero. */
  countNonZeroI8(src: number, n: number): number;
  /** Per-token int8 absmax quantization; returns how many rows were not finite. */
  quantizeAbsmaxI8(x: number, n: number, tokens: number, q: number, nPad: number, scales: number, sums: number): number;
  /** Scalar twin of quantizeAbsmaxI8. */
  quantizeAbsmaxI8Scalar(x: number, n: number, tokens: number, q: number, nPad: number, scales: number, sums: number): number;
  /** Per-token int4 absmean quantization (BitNet a4.8); returns how many rows were not finite. */
  quantizeAbsmeanI4(x: number, n: number, tokens: number, q: number, nPad: number, scales: number, sums: number): number;
  /** Scalar twin of quantizeAbsmeanI4. */
  quantizeAbsmeanI4Scalar(x: number, n: number, tokens: number, q: number, nPad: number, scales: number, sums: number): number;
  /** In place, the normalised Walsh-Hadamard transform over blocks of each row (H-BitLinear). */
  hadamardBlocks(x: number, n: number, rows: number, block: number): void;
  /** Scalar twin of hadamardBlocks. */
  hadamardBlocksScalar(x: number, n: number, rows: number, block: number): void;
  /** Bytes of a [rows, cols] ternary matrix in the column-blocked sparse layout. */
  ternaryColumnsBytes(rows: number, cols: number): number;
  /** Packs int8 ternary into the column-blocked layout; returns how many values were invalid. */
  packTernaryColumns(src: number, rows: number, cols: number, dst: number): number;
  /** Ternary GEMV reading only the columns of the kept (non-zero) activations (Q-Sparse). */
  ternaryGemvSparse(w: number, rows: number, cols: number, x: number, kept: number, count: number, wScale: number, xScale: number, y: number): void;
  /** Scalar twin of ternaryGemvSparse. */
  ternaryGemvSparseScalar(w: number, rows: number, cols: number, x: number, kept: number, count: number, wScale: number, xScale: number, y: number): void;
  /** Writes the indices of the non-zero int8 activations; returns their count. */
  nonZeroColumns(x: number, n: number, kept: number): number;
  /** Zeroes the `zeroCount` smallest |x| per token (ties: lower index first). */
  sparsifyTopK(x: number, n: number, tokens: number, zeroCount: number, out: number): void;
  /** RMSNorm of each row times a weight vector. */
  rmsNorm(out: number, x: number, weight: number, n: number, tokens: number, eps: number): void;
  /** Scalar twin of rmsNorm. */
  rmsNormScalar(out: number, x: number, weight: number, n: number, tokens: number, eps: number): void;
  /** x / (||x|| * sqrt(n)) per row (bitllama's BitLinear input norm). */
  l2Norm(out: number, x: number, n: number, tokens: number): void;
  /** Scalar twin of l2Norm. */
  l2NormScalar(out: number, x: number, n: number, tokens: number): void;
  /** Rotary position embedding in place (interleaved pairs, or halves with `neox`). */
  rope(v: number, heads: number, headSize: number, tokens: number, rowStride: number, pos: number, cos: number, sin: number, neox: boolean): void;
  /** In-place softmax over n values. */
  softmax(x: number, n: number): void;
  /** Causal multi-head attention (grouped-query) over an f32 KV cache. */
  attention(out: number, q: number, k: number, v: number, scores: number, heads: number, kvHeads: number, headSize: number, tokens: number, pos: number): void;
  /** Scalar twin of attention. */
  attentionScalar(out: number, q: number, k: number, v: number, scores: number, heads: number, kvHeads: number, headSize: number, tokens: number, pos: number): void;
  /** Quantizes K or V rows per token and head to 8, 4 or 3 bits (absmax); returns how many rows were not finite. */
  quantizeKV(src: number, tokens: number, heads: number, headSize: number, bits: number, codes: number, scales: number): number;
  /** attention over a quantized KV cache, reading the codes directly. */
  attentionCodes(out: number, q: number, kCodes: number, kScales: number, vCodes: number, vScales: number, scores: number, heads: number, kvHeads: number, headSize: number, tokens: number, pos: number): void;
  /** Scalar twin of attentionCodes. */
  attentionCodesScalar(out: number, q: number, kCodes: number, kScales: number, vCodes: number, vScales: number, scores: number, heads: number, kvHeads: number, headSize: number, tokens: number, pos: number): void;
  /** gate = silu(gate) * up (Llama). */
  swiglu(gate: number, up: number, n: number): void;
  /** gate = relu(gate)^2 * up (BitNet b1.58 2B4T). */
  relu2glu(gate: number, up: number, n: number): void;
  /** -log softmax(logits)[target]. */
  negLogLikelihood(logits: number, n: number, target: number): number;
  /** Reads `bytes` with v128 loads (the bandwidth roof of the benchmarks). */
  streamRead(ptr: number, bytes: number): number;
  /** The instance's linear memory (shared in the threaded build). */
  memory: WebAssembly.Memory;
}

/** One kernel instance: its own linear memory, an allocator over it, and typed views. */
export class Kernels {
  /** Allocator over the instance's memory. */
  readonly arena: Arena;
  #pool: ThreadPool | null = null;
  /** Wraps an instance's exports (see loadKernels). */
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
  allocF32(n: number): number {
    return this.arena.alloc(n * 4);
  }
  /** Allocates n bytes (64-byte aligned); returns the address. */
  allocBytes(n: number): number {
    return this.arena.alloc(n);
  }
  /** A fresh f32 view of n values at ptr. */
  f32(ptr: number, n: number): Float32Array {
    return new Float32Array(this.k.memory.buffer, ptr, n);
  }
  /** A fresh i32 view of n values at ptr. */
  i32(ptr: number, n: number): Int32Array {
    return new Int32Array(this.k.memory.buffer, ptr, n);
  }
  /** A fresh int8 view of n values at ptr. */
  i8(ptr: number, n: number): Int8Array {
    return new Int8Array(this.k.memory.buffer, ptr, n);
  }
  /** A fresh byte view of n bytes at ptr. */
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
    if (cores !== undefined && threads > cores) console.warn(`bitnet-wasm: threads: ${threads} is more than the ${cores} cores of this machine; the threads will compete for cores and the products run slower`);
    return loadThreaded(level, threads, options.wasmUrl);
  }
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
