// Shared test utilities: the real data in ../shared/data, kernel builds, random inputs.
import process from "node:process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { hasRelaxedSimd } from "../runtime/features.ts";
import { type Kernels, loadKernels, type SimdLevel } from "../runtime/kernels.ts";
import { memoryFile } from "../runtime/files.ts";
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

const warned = new Set<string>();
/** Registers `fn` with the files it needs, or as skipped (with a message) when one is absent. */
export function withData(
  test: { (name: string, fn: () => unknown): void; skip: (name: string, fn?: () => unknown) => void },
  name: string,
  files: string[],
  fn: (...bytes: Uint8Array[]) => unknown,
): void {
  const bytes = files.map(sharedData);
  const missing = files.filter((_, i) => bytes[i] === null);
  if (missing.length > 0) {
    const key = missing.join(", ");
    if (!warned.has(key)) console.log(`  (skipping tests that need ../shared/data/${key}: not present)`);
    warned.add(key);
    test.skip(name);
  } else {
    test(name, () => fn(...(bytes as Uint8Array[])));
  }
}

/** Both kernel builds where this runtime can run them (strict always; relaxed where supported). */
export const LEVELS: SimdLevel[] = hasRelaxedSimd() ? ["strict", "relaxed"] : ["strict"];
if (!hasRelaxedSimd()) console.log("  (this runtime has no relaxed SIMD: relaxed-build kernel tests run under Deno and Bun)");

export async function kernels(level: SimdLevel): Promise<Kernels> {
  return loadKernels({ simd: level });
}

/** A deterministic generator for test data (mulberry32). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

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
