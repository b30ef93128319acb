// Kernel loading: feature detection, forcing a build, precompiled modules (as Workers
// need), and memory limits that fail with an error instead of crashing.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { readFileSync } from "node:fs";
import { BitNetError, OptionError, ShapeError } from "../core/errors.ts";
import { ActivationQuantizer } from "../quant/activations.ts";
import { BitLinear } from "../quant/bitlinear.ts";
import { hasRelaxedSimd } from "../runtime/features.ts";
import { kernelUrl, loadKernels, resolveSimdLevel } from "../runtime/kernels.ts";
import "../runtime/node.ts"; // the kernels are read from file: URLs
import { throwsTyped } from "./helpers.ts";

const test = suite("runtime");

test("auto picks relaxed exactly where the runtime validates the relaxed dot opcode", () => {
  // "auto" takes relaxed only where it is faster: Deno (V8 15), Node 24+ (V8 13+); not Node 20
  // (no relaxed SIMD), Node 22 (V8 12.4) or Bun (JavaScriptCore).
  const g = globalThis as { Deno?: unknown; Bun?: unknown };
  const fast = g.Deno !== undefined || (g.Bun === undefined && Number(process.versions.node.split(".")[0]) >= 24);
  assert.is(resolveSimdLevel("auto"), fast ? "relaxed" : "strict");
  assert.is(resolveSimdLevel("strict"), "strict");
  if (hasRelaxedSimd()) assert.is(resolveSimdLevel("relaxed"), "relaxed");
  else throwsTyped(() => resolveSimdLevel("relaxed"), OptionError, /lacks it/);
  throwsTyped(() => resolveSimdLevel("avx" as never), OptionError, /option simd/);
  // The relaxed binary itself validates only where the probe says so.
  assert.is(WebAssembly.validate(readFileSync(kernelUrl("relaxed"))), hasRelaxedSimd());
  assert.ok(WebAssembly.validate(readFileSync(kernelUrl("strict"))));
});

test("a precompiled WebAssembly.Module is used as given (no file access)", async () => {
  const module = await WebAssembly.compile(readFileSync(kernelUrl("strict")));
  const kx = await loadKernels({ simd: "strict", wasmModule: module, wasmUrl: "https://invalid.example/never-fetched/" });
  const x = kx.put(Float32Array.from([1, -2, 3]));
  const w = kx.put(Float32Array.from([1, 1, 1, 2, 0, -1]));
  const y = kx.allocF32(2);
  kx.k.gemvF32(w, 2, 3, x, y);
  assert.equal(Array.from(kx.f32(y, 2)), [2, -1]);
});

test("each instance has its own memory; absurd allocations fail with a BitNetError", async () => {
  const a = await loadKernels({ simd: "strict" }), b = await loadKernels({ simd: "strict" });
  assert.is.not(a.memory, b.memory);
  throwsTyped(() => a.arena.alloc(5 * 2 ** 30), BitNetError, /out of WebAssembly memory/);
  const mark = a.arena.mark();
  a.arena.alloc(1 << 20);
  a.arena.release(mark);
  assert.is(a.arena.mark(), mark);
});

test("ternary layers wider than the kernels take are refused with a ShapeError", async () => {
  const kx = await loadKernels({ simd: "strict" });
  const cols = kx.k.ternaryMaxCols() + 64;
  const error = await BitLinear.fromInt8(kx, new ActivationQuantizer(kx, 1, 64), 1, cols, false, "wide", () => Promise.resolve(1)).then(() => null, (e) => e);
  assert.ok(error instanceof ShapeError && /wide: \d+ input columns, the ternary kernels take at most 65536/.test(error.message), String(error));
});

test.run();
