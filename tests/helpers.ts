// Shared test utilities: the real data in ../shared/data, tests that need data or tools (skipped
// without them, failed under CI), typed-error assertions, kernel builds, random inputs.
import { uniform } from "../core/random.ts";
import process from "node:process";
import { suite, type Test } from "uvu";
import * as assert from "uvu/assert";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { hasRelaxedSimd } from "../runtime/features.ts";
import { instantiateKernels, type Kernels, loadKernels, type SimdLevel } from "../runtime/kernels.ts";
import { KERNEL_PARAMS, TEST_KERNEL_PARAMS, type TestKernelExports } from "../runtime/kernel-exports.ts";
import { memoryFile } from "../runtime/files.ts";
import "../runtime/node.ts"; // paths and node:worker_threads, as the main entry (mod.ts) installs them
import type { Checkpoint } from "../formats/checkpoint.ts";
import { readCheckpoint } from "../model/load.ts";
import { BitNetModel } from "../model/model.ts";
import type { Tokenizer } from "../text/tokenizer/llama2c.ts";
import { Transformer, type TransformerOptions } from "../model/transformer.ts";

export const CI = process.env.CI === "true";
const DATA = new URL("../../shared/data/", import.meta.url);

/** Path of a file under ../shared/data. */
export function dataPath(relative: string): string {
  return fileURLToPath(new URL(relative, DATA));
}

/**
 * The bytes of ../shared/data/<relative>, or null when absent (a user's clone). Under CI
 * a missing file is an error: CI must run every test.
 */
export function sharedData(relative: string): Uint8Array | null {
  try {
    return new Uint8Array(readFileSync(dataPath(relative)));
  } catch (e) {
    if (CI) throw new Error(`CI=true but ../shared/data/${relative} is missing`, { cause: e });
    return null;
  }
}

/** The runtime running the tests. */
export const RUNTIME: "node" | "deno" | "bun" = typeof (globalThis as { Deno?: unknown }).Deno !== "undefined"
  ? "deno"
  : typeof (globalThis as { Bun?: unknown }).Bun !== "undefined"
  ? "bun"
  : "node";

/** The command line's source, as the tests run it. */
export const CLI = fileURLToPath(new URL("../cli/bitnet-wasm.ts", import.meta.url));

/** The command that runs a .ts file in this runtime, from any folder (tsx by its absolute URL). */
export function runtimeCommand(): string[] {
  const deno = (globalThis as { Deno?: { execPath(): string } }).Deno;
  if (deno) return [deno.execPath(), "run", "-A"];
  if (RUNTIME === "bun") return [process.execPath];
  return [process.execPath, "--import", new URL("../node_modules/tsx/dist/esm/index.mjs", import.meta.url).href];
}

/** A tool (a binary, a package, a runtime) a test needs, and whether this machine has it. */
export interface Tool {
  /** What is needed, as the skip message ("skipped: needs <tool> (<reason>)") and the CI failure name it. */
  tool: string;
  available: boolean | (() => boolean);
  /** Why it is missing, or how to get it. */
  reason: string;
  /**
   * Whether a missing tool fails the test under CI=true (default true). False only for what
   * CI cannot supply: the runtime of this pass (e.g. a Node-only test under Deno), the machine.
   */
  ci?: boolean;
}

/** A "tool" that is the runtime of this pass: for tests that run under some runtimes only (skipped elsewhere, even under CI). */
export function onlyUnder(...runtimes: (typeof RUNTIME)[]): Tool {
  return { tool: runtimes.join(" or "), available: runtimes.includes(RUNTIME), reason: `runs in the ${runtimes.join(" and ")} pass only`, ci: false };
}

function readShared(relative: string): Uint8Array | null {
  try {
    return new Uint8Array(readFileSync(dataPath(relative)));
  } catch {
    return null;
  }
}

const warned = new Set<string>();
function skipped(test: Test, name: string, reason: string, once = false): void {
  if (!once || !warned.has(reason)) console.log(`  skipped: ${reason}${once ? "" : ` ("${name}")`}`);
  warned.add(reason);
  test.skip(name);
}

/**
 * Registers `fn` as test `name` when every tool is available and every file of
 * ../shared/data is present (`fn` gets the files' bytes, in order). Otherwise the test is
 * registered with `test.skip` (counted as skipped, with a "skipped: <reason>" line), except
 * under CI=true, where a missing tool (unless `ci: false`) or file registers a test that
 * fails naming it: CI must run every test.
 */
export function needs(test: Test, name: string, requires: { tools?: Tool[]; files?: string[] }, fn: (...bytes: Uint8Array[]) => unknown): void {
  const { tools = [], files = [] } = requires;
  const absent = tools.filter((t) => !(typeof t.available === "function" ? t.available() : t.available));
  const required = absent.filter((t) => t.ci !== false);
  if (absent.length > required.length || (!CI && absent.length > 0)) {
    return skipped(test, name, absent.filter((t) => !CI || t.ci === false).map((t) => `needs ${t.tool} (${t.reason})`).join("; "));
  }
  if (required.length > 0) {
    return test(name, () => {
      throw new Error(`CI=true but this test needs ${required.map((t) => `${t.tool} (${t.reason})`).join(" and ")}, which is missing`);
    });
  }
  const bytes = files.map(readShared);
  const missing = files.filter((_, i) => bytes[i] === null);
  if (missing.length === 0) {
    return test(name, async () => {
      await fn(...(bytes as Uint8Array[]));
    });
  }
  const list = missing.map((f) => `../shared/data/${f}`).join(", ");
  if (!CI) return skipped(test, name, `tests that need ${list}: not present`, true);
  test(name, () => {
    throw new Error(`CI=true but ${list} ${missing.length === 1 ? "is" : "are"} missing`);
  });
}

/** Registers `fn` with the files of ../shared/data it needs (see `needs`). */
export function withData(test: Test, name: string, files: string[], fn: (...bytes: Uint8Array[]) => unknown): void {
  needs(test, name, { files }, fn);
}

type ErrorClass = abstract new (...args: never[]) => Error;

const describe = (e: unknown) => (e instanceof Error ? `${e.constructor.name}: ${e.message}` : `${typeof e} ${String(e)}`);

function checkError(e: unknown, type: ErrorClass, pattern: RegExp): Error {
  if (e instanceof assert.Assertion && (type as unknown) !== assert.Assertion) throw e; // a failed assertion inside fn, not the error expected
  assert.instance(e, type, `expected ${type.name} matching ${pattern}, got ${describe(e)}`);
  const { message } = e as Error;
  assert.match(message, pattern, `expected ${type.name} matching ${pattern}, got ${describe(e)}`);
  return e as Error;
}

/**
 * Asserts that a promise (or what `fn` returns, or throws) rejects with an instance of
 * `type` whose message matches `pattern`; returns the error for further checks. An
 * assertion failure inside `fn` is not mistaken for the expected error.
 */
export async function rejects(promiseOrFn: Promise<unknown> | (() => unknown), type: ErrorClass, pattern: RegExp): Promise<Error> {
  let error: unknown, threw = false;
  try {
    await (typeof promiseOrFn === "function" ? promiseOrFn() : promiseOrFn);
  } catch (e) {
    error = e;
    threw = true;
  }
  if (!threw) assert.unreachable(`expected ${type.name} matching ${pattern}, but it resolved`);
  return checkError(error, type, pattern);
}

/** Asserts that `fn` throws, synchronously, an instance of `type` whose message matches `pattern`; returns the error. */
export function throwsTyped(fn: () => unknown, type: ErrorClass, pattern: RegExp): Error {
  try {
    fn();
  } catch (e) {
    return checkError(e, type, pattern);
  }
  assert.unreachable(`expected ${type.name} matching ${pattern}, but nothing was thrown`);
  throw new Error("unreachable");
}

/** Both kernel builds: tests and suites of the relaxed one are skipped where the runtime lacks relaxed SIMD (see `levelTools`, `levelSuite`). */
export const LEVELS: SimdLevel[] = ["strict", "relaxed"];
/** The kernel builds this runtime runs, for checks inside one test that compare across builds. */
export const RUNNABLE_LEVELS: SimdLevel[] = LEVELS.filter((level) => level === "strict" || hasRelaxedSimd());

const RELAXED_SIMD: Tool = { tool: "relaxed SIMD", available: hasRelaxedSimd, reason: "Node 20 has none; the Node 22 / 24, Deno and Bun passes run it", ci: false };

/** What a test of `level`'s kernel build needs, for `needs`. */
export function levelTools(level: SimdLevel): Tool[] {
  return level === "relaxed" ? [RELAXED_SIMD] : [];
}

/**
 * A suite named "<name> (<level> build)", or null where this runtime cannot run that build:
 * then the suite runs with one skipped entry saying why, and the caller defines nothing.
 */
export function levelSuite(name: string, level: SimdLevel): Test | null {
  const test = suite(`${name} (${level} build)`);
  if (RUNNABLE_LEVELS.includes(level)) return test;
  needs(test, `every ${name} test of the ${level} build`, { tools: levelTools(level) }, () => {});
  test.run();
  return null;
}

export function kernels(level: SimdLevel): Promise<Kernels> {
  return loadKernels({ simd: level });
}

const testModules = new Map<SimdLevel, Promise<WebAssembly.Module>>();
/**
 * A kernel instance of the test build of `level`: build/kernels-test.wasm (strict) or
 * kernels-test-relaxed.wasm (asconfig.test.json, never shipped), the production kernels plus
 * their scalar twins (TestKernelExports), checked against the generated tables as loadKernels checks its builds.
 */
export async function testKernels(level: SimdLevel): Promise<Kernels<TestKernelExports>> {
  let module = testModules.get(level);
  if (!module) testModules.set(level, module = WebAssembly.compile(readFileSync(new URL(`../build/kernels-test${level === "relaxed" ? "-relaxed" : ""}.wasm`, import.meta.url))));
  return instantiateKernels<TestKernelExports>(await module, level, { ...KERNEL_PARAMS, ...TEST_KERNEL_PARAMS });
}

/** A deterministic generator for test data (mulberry32). */
export const rng = uniform;

export function randomF32(n: number, next: () => number, scale = 1): Float32Array {
  return Float32Array.from({ length: n }, () => (next() * 2 - 1) * scale);
}

export function randomTernary(n: number, next: () => number): Int8Array {
  return Int8Array.from({ length: n }, () => Math.floor(next() * 3) - 1);
}

/** Bytes as a typed array of another element type (copies, so alignment never matters). */
export function asF32(bytes: Uint8Array): Float32Array {
  return new Float32Array(bytes.slice().buffer);
}

export function bitsEqual(a: Float32Array, b: Float32Array): boolean {
  if (a.length !== b.length) return false;
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length), ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  return ua.every((v, i) => v === ub[i]);
}

export function maxRelativeError(got: ArrayLike<number>, want: ArrayLike<number>): number {
  let scale = 0, worst = 0;
  for (let i = 0; i < want.length; i++) scale = Math.max(scale, Math.abs(want[i]));
  for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[i] - want[i]) / (scale || 1));
  return worst;
}

/** A checkpoint parsed from bytes in memory. */
export function checkpointOf(bytes: Uint8Array, name: string, options: { bitOrder?: "msb" | "lsb" } = {}): Promise<Checkpoint> {
  return readCheckpoint(memoryFile(bytes, name), options);
}

/** A model over a parsed checkpoint (no tokenizer unless given). */
export async function modelOf(kx: Kernels, ckpt: Checkpoint, options: TransformerOptions = {}, tokenizer: Tokenizer | null = null): Promise<BitNetModel> {
  return new BitNetModel(kx, await Transformer.load(kx, ckpt, options), tokenizer, ckpt.file);
}
