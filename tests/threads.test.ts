// Worker threads: every parallel kernel gives the one-thread outputs bit for bit (split by
// rows for one token, by tokens for several), models give identical logits for any thread
// count, a trap in a worker is raised instead of hanging, and bad thread counts are refused.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { BitNetError, OptionError } from "../core/errors.ts";
import { loadBitNet } from "../model/load.ts";
import { type KernelExports, type Kernels, loadKernels } from "../runtime/kernels.ts";
import { PARALLEL_KERNELS } from "../runtime/threads.ts";
import { asPtr, type Ptr } from "../runtime/ptr.ts";
import { dataPath, rng, RUNNABLE_LEVELS, throwsTyped, withData } from "./helpers.ts";

const test = suite("threads");

// One call of a parallel kernel on fresh random inputs in `kx`; returns a reader of its output
// (read later: inside `together` the products run when it returns).
type Case = (kx: Kernels, next: () => number) => () => Float32Array;

function bytes(kx: Kernels, n: number, next: () => number, lo: number, hi: number): Ptr {
  return kx.put(Int8Array.from({ length: n }, () => lo + Math.floor(next() * (hi - lo + 1))));
}
function floats(kx: Kernels, n: number, next: () => number): Ptr {
  return kx.put(Float32Array.from({ length: n }, () => next() * 2 - 1));
}

// Shapes above the split threshold, with row counts that do not fill the last row group.
const ROWS = 301, COLS = 256, PAD = 256;

function bitCase(name: "ternaryGemm" | "ternaryGemmGrouped" | "signGemm" | "signGemmGrouped", tokens: number): Case {
  return (kx, next) => {
    const k = kx.k, sign = name.startsWith("sign"), grouped = name.endsWith("Grouped"), groupCols = 64, groups = COLS / groupCols;
    const w = bytes(kx, ROWS * COLS, next, sign ? 0 : -1, 1);
    if (sign) kx.i8(w, ROWS * COLS).forEach((v, i, a) => (a[i] = v === 0 ? -1 : v));
    const packed = kx.allocBytes((sign ? k.signPackedBytes : k.ternaryPackedBytes)(ROWS, COLS));
    (sign ? k.packSign : k.packTernary)(w, ROWS, COLS, packed);
    const x = bytes(kx, tokens * PAD, next, -128, 127), sums = kx.allocBytes(tokens * groups * 4);
    k.sumGroups(x, PAD, COLS, tokens, grouped ? groupCols : COLS, sums);
    const xScales = floats(kx, tokens, next), y = kx.allocF32(tokens * ROWS);
    if (grouped) (k[name] as KernelExports["ternaryGemmGrouped"])(packed, ROWS, COLS, x, sums, xScales, tokens, groupCols, floats(kx, ROWS * groups, next), y);
    else (k[name] as KernelExports["ternaryGemm"])(packed, ROWS, COLS, x, sums, xScales, tokens, 0.5, y);
    return () => kx.f32(y, tokens * ROWS).slice();
  };
}

const CASES: Record<(typeof PARALLEL_KERNELS)[number], (tokens: number) => Case> = {
  ternaryGemm: (t) => bitCase("ternaryGemm", t),
  ternaryGemmGrouped: (t) => bitCase("ternaryGemmGrouped", t),
  signGemm: (t) => bitCase("signGemm", t),
  signGemmGrouped: (t) => bitCase("signGemmGrouped", t),
  gemmF32: (t) => (kx, next) => {
    const y = kx.allocF32(t * ROWS);
    kx.k.gemmF32(floats(kx, ROWS * COLS, next), ROWS, COLS, floats(kx, t * COLS, next), t, y);
    return () => kx.f32(y, t * ROWS).slice();
  },
  gemvF32: () => (kx, next) => {
    const y = kx.allocF32(ROWS);
    kx.k.gemvF32(floats(kx, ROWS * COLS, next), ROWS, COLS, floats(kx, COLS, next), y);
    return () => kx.f32(y, ROWS).slice();
  },
  gemmHalf: (t) => (kx, next) => {
    const w = kx.put(Uint16Array.from({ length: ROWS * COLS }, () => kx.k.f32ToF16(next() * 2 - 1)));
    const y = kx.allocF32(t * ROWS), x = kx.allocF32(t * COLS);
    kx.k.gemmHalf(w, ROWS, COLS, x, t, y, false, kx.k.prepareHalfInput(floats(kx, t * COLS, next), COLS, t, x, false) !== 0);
    return () => kx.f32(y, t * ROWS).slice();
  },
  gemmI8: (t) => (kx, next) => {
    const y = kx.allocF32(t * ROWS);
    kx.k.gemmI8(bytes(kx, ROWS * COLS, next, -127, 127), floats(kx, ROWS, next), ROWS, COLS, bytes(kx, t * PAD, next, -127, 127), PAD, floats(kx, t, next), t, y);
    return () => kx.f32(y, t * ROWS).slice();
  },
};

test("every parallel kernel, split over 2 and 3 threads, equals one thread bit for bit (1 and 5 tokens)", async () => {
  for (const level of RUNNABLE_LEVELS) {
    const one = await loadKernels({ simd: level });
    for (const threads of [2, 3]) {
      const many = await loadKernels({ simd: level, threads });
      assert.is(many.threads, threads, "the runtime gives worker threads");
      try {
        for (const name of PARALLEL_KERNELS) {
          for (const tokens of name === "gemvF32" ? [1] : [1, 5]) {
            const a = one.arena.mark(), b = many.arena.mark();
            const want = CASES[name](tokens)(one, rng(7))(), got = CASES[name](tokens)(many, rng(7))();
            assert.ok(want.some((v) => v !== 0), `${name}: a non-trivial output`);
            assert.equal(got, want, `${level} ${name}, ${tokens} tokens, ${threads} threads`);
            one.arena.release(a);
            many.arena.release(b);
          }
        }
      } finally {
        many.dispose();
      }
    }
  }
});

test("a trap in any chunk is raised as a BitNetError once every chunk is done, not a hang", async () => {
  const kx = await loadKernels({ simd: "strict", threads: 2 });
  try {
    const rows = 512, cols = 256, packed = kx.allocBytes(kx.k.ternaryPackedBytes(rows, cols)), y = kx.allocF32(2 * rows);
    const sums = kx.allocBytes(8), scales = kx.put(Float32Array.of(1, 1));
    // Token 0's activations are the last bytes of memory: token 1's chunk reads past the end.
    const x = asPtr(kx.memory.buffer.byteLength - cols);
    throwsTyped(() => kx.k.ternaryGemm(packed, rows, cols, x, sums, scales, 2, 1, y), BitNetError, /kernel ternaryGemm trapped/);
    // The pool still works afterwards.
    kx.k.ternaryGemm(packed, rows, cols, kx.allocBytes(2 * cols), sums, scales, 2, 1, y);
  } finally {
    kx.dispose();
  }
});

test("products run together (nested, and past the 128 chunks a job holds) equal one thread; a trap or a throw inside leaves the pool working", async () => {
  const one = await loadKernels({ simd: "strict" }), many = await loadKernels({ simd: "strict", threads: 3 });
  try {
    // 40 products of 4 kinds, 6 chunks each on 3 threads: `together` has to run several jobs.
    const kinds = [bitCase("ternaryGemm", 1), bitCase("signGemmGrouped", 1), CASES.gemvF32(1), CASES.gemmI8(3)];
    const products = (kx: Kernels, wrap: (body: () => void) => void) => {
      const next = rng(11), outputs: (() => Float32Array)[] = [];
      wrap(() => {
        for (let i = 0; i < 40; i++) outputs.push(kinds[i % 4](kx, next));
      });
      return outputs.map((read) => read());
    };
    const want = products(one, (body) => body());
    assert.ok(want.every((o) => o.some((v) => v !== 0)), "non-trivial outputs");
    assert.equal(products(many, (body) => many.together(() => many.together(body))), want);
    // Without threads `together` just runs the body.
    assert.equal(products(one, (body) => one.together(body)), want);

    const rows = 512, cols = 256, packed = many.allocBytes(many.k.ternaryPackedBytes(rows, cols)), y = many.allocF32(rows);
    const sums = many.allocBytes(4), scales = many.put(Float32Array.of(1)), x = many.allocBytes(cols);
    const gemv = (at: Ptr) => many.k.ternaryGemm(packed, rows, cols, at, sums, scales, 1, 1, y);
    const past = asPtr(many.memory.buffer.byteLength - 16); // reads past the end of memory
    throwsTyped(
      () =>
        many.together(() => {
          gemv(x);
          gemv(past);
        }),
      BitNetError,
      /kernel ternaryGemm trapped/,
    );
    // A throw in the body drops what it collected (the trapping product never runs).
    assert.throws(() =>
      many.together(() => {
        gemv(past);
        throw new Error("stop");
      }), /^stop$/);
    assert.equal(products(many, (body) => many.together(body)), want, "the pool still works");
  } finally {
    many.dispose();
  }
});

test("with a precompiled module (what Cloudflare Workers pass) the kernels fall back to one thread", async () => {
  const { readFileSync } = await import("node:fs");
  const { kernelUrl } = await import("../runtime/kernels.ts");
  const kx = await loadKernels({ simd: "strict", threads: 4, wasmModule: await WebAssembly.compile(readFileSync(kernelUrl("strict"))) });
  try {
    assert.is(kx.threads, 1);
  } finally {
    kx.dispose();
  }
});

test("thread counts must be integers from 1 to 64", async () => {
  for (const threads of [0, -1, 1.5, 65, Number.NaN]) {
    const e = await loadKernels({ threads }).then(() => null, (e) => e);
    assert.ok(e instanceof OptionError && /option threads: expected an integer from 1 to 64/.test(e.message), `${threads}: ${e}`);
  }
});

const FILES = ["models/bitllama-3M.bin", "models/stories260K.bin", "models/tok512.bin"];
withData(test, "models give identical logits on 1, 2 and 3 threads (ternary, fp32, grouped and 1-bit variants, int8 head)", FILES, async () => {
  const tokens = [1, 403, 407, 261, 378, 432, 383, 286, 261, 376, 298];
  for (
    const [file, options] of [
      ["models/bitllama-3M.bin", {}],
      ["models/bitllama-3M.bin", { variant: "a4.8,weights=absmean:group:64", lmHead: "int8" }],
      ["models/bitllama-3M.bin", { variant: "weights=sign:channel" }],
      ["models/stories260K.bin", {}],
    ] as const
  ) {
    const outputs: number[][] = [];
    for (const threads of [1, 2, 3]) {
      const model = await loadBitNet(dataPath(file), { simd: "strict", threads, ...options });
      try {
        assert.is(model.threads, threads);
        // A prompt (GEMMs split by tokens) then decoded steps (GEMVs split by rows).
        const all = model.logits(tokens.slice(0, 6)).flatMap((l) => Array.from(l));
        for (let i = 6; i < tokens.length; i++) all.push(...model.step(tokens[i], i));
        outputs.push(all);
      } finally {
        model.dispose();
      }
    }
    assert.equal(outputs[1], outputs[0], `${file} ${JSON.stringify(options)}: 2 threads`);
    assert.equal(outputs[2], outputs[0], `${file} ${JSON.stringify(options)}: 3 threads`);
  }
});

test.run();
