// The host's kernel interface against the AssemblyScript build: runtime/kernel-exports.ts is
// what scripts/kernel-exports.ts generates from assembly/ now (so the two cannot drift), the
// production builds export exactly its functions (no scalar twins: those are in the test
// builds only), and loading checks a module's exports against it.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { readFileSync } from "node:fs";
import { BitNetError } from "../core/errors.ts";
import { checkExports, instantiateKernels, kernelUrl } from "../runtime/kernels.ts";
import { KERNEL_PARAMS, type KernelExports, TEST_KERNEL_PARAMS, type TestKernelExports } from "../runtime/kernel-exports.ts";
import { generateKernelExports, OUTPUT } from "../scripts/kernel-exports.ts";
import { rejects, testKernels, throwsTyped } from "./helpers.ts";

const test = suite("bindings");
const file = (path: string) => new URL(`../${path}`, import.meta.url);

/** The export names of a .wasm file, read from its export section (no compiling: Node 20 cannot compile the relaxed builds). */
function exportNames(path: URL): string[] {
  const bytes = new Uint8Array(readFileSync(path)), names: string[] = [];
  let at = 8; // magic and version
  const leb = () => {
    let v = 0, shift = 0, b;
    do v += ((b = bytes[at++]) & 0x7f) * 2 ** shift, shift += 7; while (b & 0x80);
    return v;
  };
  while (at < bytes.length) {
    const id = bytes[at++], size = leb(), end = at + size;
    if (id === 7) {
      for (let n = leb(); n > 0; n--) {
        const length = leb();
        names.push(new TextDecoder().decode(bytes.subarray(at, at += length)));
        at++; // kind
        leb(); // index
      }
    }
    at = end;
  }
  return names.sort();
}

test(`${OUTPUT} is what scripts/kernel-exports.ts generates from assembly/ (run it, or npm run build:wasm, after changing a kernel's exports)`, async () => {
  const { text: generated } = await generateKernelExports();
  assert.ok(generated === readFileSync(file(OUTPUT), "utf8"), `${OUTPUT} is stale: node --import tsx scripts/kernel-exports.ts rewrites it`);
});

test("the four production builds export the generated interface's functions and memory, and no scalar twin", () => {
  const want = [...Object.keys(KERNEL_PARAMS), "memory"].sort();
  for (const level of ["strict", "relaxed"] as const) {
    for (const threaded of [false, true]) {
      const names = exportNames(kernelUrl(level, undefined, threaded));
      assert.equal(names, want, `${level}${threaded ? " threaded" : ""}`);
    }
  }
  assert.ok(Object.keys(TEST_KERNEL_PARAMS).filter((n) => n.endsWith("Scalar")).length >= 15, "the twins are in the test builds' table");
});

test("the test builds export the production functions and the test-only ones", () => {
  const want = [...Object.keys(KERNEL_PARAMS), ...Object.keys(TEST_KERNEL_PARAMS), "memory"].sort();
  for (const name of ["kernels-test.wasm", "kernels-test-relaxed.wasm"]) assert.equal(exportNames(file(`build/${name}`)), want, name);
});

test("loading checks a module against the interface: a missing function or another parameter count is refused, naming it", async () => {
  const production = await WebAssembly.compile(readFileSync(kernelUrl("strict")));
  await rejects(
    instantiateKernels<TestKernelExports>(production, "strict", { ...KERNEL_PARAMS, ...TEST_KERNEL_PARAMS }),
    BitNetError,
    /has no function gemmF32Scalar: it is not the build of this runtime/,
  );
  const kx = await testKernels("strict");
  const exports = kx.k as unknown as Record<string, unknown>;
  throwsTyped(() => checkExports<KernelExports>(exports, { ...KERNEL_PARAMS, gemvF32: ["w", "rows", "cols", "x"] }), BitNetError, /has gemvF32 with 5 parameters, not 4/);
  throwsTyped(() => checkExports<KernelExports>({ ...exports, memory: undefined }, KERNEL_PARAMS), BitNetError, /exports no memory/);
  assert.is(checkExports<KernelExports>(exports, KERNEL_PARAMS), exports);
});

test.run();
