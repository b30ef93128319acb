// Generates runtime/kernel-exports.ts, the host's typed view of the kernel module, from the
// AssemblyScript build itself: asc compiles the production entry (asconfig.json, assembly/
// index.ts) and the test entry (asconfig.test.json, plus assembly/testing.ts) with
// `--bindings raw`, whose declarations give every export's name, parameter names and AS types
// in export order; the doc comments are the `/** ... */` above each `export function` in
// assembly/. AS `usize` (an address on wasm32) becomes Ptr, so addresses and counts do not mix.
//
//   node --import tsx scripts/kernel-exports.ts          writes runtime/kernel-exports.ts
//   node --import tsx scripts/kernel-exports.ts --check  exits 1 if it differs (what tests/bindings.test.ts asserts)
//
// `npm run build:wasm` runs it after the builds. Nothing is written but the one file: asc's
// outputs are kept in memory (unoptimized, a second or so per entry).
import process from "node:process";
import { readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath, pathToFileURL } from "node:url";
import asc from "assemblyscript/asc";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
/** The generated file, relative to the project root. */
export const OUTPUT = "runtime/kernel-exports.ts";

/** One exported function as asc's bindings declare it. */
interface Binding {
  name: string;
  /** Where it is defined: "assembly/float" for assembly/float.ts. */
  file: string;
  params: { name: string; asType: string; tsType: string }[];
  asReturn: string | null;
  tsReturn: string;
}

/** Compiles one entry set (unoptimized) and returns its bindings, in export order. */
async function bindings(config: string, target: string): Promise<Binding[]> {
  const out: Record<string, string> = {};
  const stderr = asc.createMemoryStream();
  const { error } = await asc.main(
    ["--config", config, "--target", target, "--baseDir", ROOT, "--optimizeLevel", "0", "--shrinkLevel", "0", "--outFile", "kernel-exports.wasm", "--bindings", "raw"],
    { stdout: asc.createMemoryStream(), stderr, writeFile: (name: string, contents: string | Uint8Array) => void (out[name] = String(contents)) },
  );
  if (error) throw new Error(`asc --config ${config} --target ${target} failed:\n${stderr.toString()}`);
  const dts = out["kernel-exports.d.ts"];
  if (dts === undefined) throw new Error(`asc wrote no bindings (${Object.keys(out).join(", ")})`);
  const body = dts.slice(dts.indexOf("declare namespace __AdaptedExports {"), dts.indexOf("\n}"));
  const result: Binding[] = [];
  // Each declaration: /** internal/name, @param n `type`..., @returns `type` */ export function name(n: ts, ...): ts;
  for (const m of body.matchAll(/\/\*\*([\s\S]*?)\*\/\s*export (function|const) (\w+)([^;]*);/g)) {
    const [, doc, kind, name, rest] = m;
    if (kind === "const") {
      if (name !== "memory") throw new Error(`unexpected exported global ${name}: the host only knows functions and memory`);
      continue;
    }
    const internal = /^\s*\*\s*(\S+)\/(\w+)\s*$/m.exec(doc);
    if (!internal || internal[2] !== name) throw new Error(`${name}: no internal name in its bindings comment`);
    const asTypes = [...doc.matchAll(/@param (\w+) `([^`]+)`/g)].map((p) => p[2]);
    const asReturn = /@returns `([^`]+)`/.exec(doc)?.[1] ?? null;
    const sig = /^\(([^)]*)\): (.+)$/.exec(rest.trim());
    if (!sig) throw new Error(`${name}: cannot read its signature ${rest}`);
    const tsParams = sig[1] === "" ? [] : sig[1].split(", ").map((p) => p.split(": "));
    if (tsParams.length !== asTypes.length) throw new Error(`${name}: ${tsParams.length} parameters but ${asTypes.length} AS types`);
    result.push({
      name,
      file: internal[1],
      params: tsParams.map(([n, t], i) => ({ name: n, asType: asTypes[i], tsType: tsType(asTypes[i], t) })),
      asReturn,
      tsReturn: asReturn === null ? "void" : tsType(asReturn, sig[2], true),
    });
  }
  return result;
}

/** The host type of an AS type: usize is an address (Ptr); the rest as asc types them (a bool result arrives as 0 / 1). */
function tsType(asType: string, ascTs: string, result = false): string {
  if (asType === "usize") return "Ptr";
  if (asType === "bool" && result) return "number";
  return ascTs;
}

const sources = new Map<string, string>();
/** The doc comment above `export function name` in file.ts, as lines; null if it has none. */
function docOf(file: string, name: string): string[] | null {
  let text = sources.get(file);
  if (text === undefined) sources.set(file, text = readFileSync(`${ROOT}${file}.ts`, "utf8"));
  const at = new RegExp(`^export function ${name}\\b`, "m").exec(text);
  if (!at) throw new Error(`${name}: no \`export function ${name}\` in ${file}.ts`);
  const before = text.slice(0, at.index).trimEnd();
  if (!before.endsWith("*/")) return null;
  const start = before.lastIndexOf("/**");
  if (start < 0 || before.lastIndexOf("*/", before.length - 3) > start) return null;
  return before.slice(start + 3, -2).split("\n").map((l) => l.replace(/^\s*\*(?!\/)/, "").trim()).filter((l, i, all) => l !== "" || (i > 0 && i < all.length - 1));
}

const warnings: string[] = [];
function member(b: Binding): string {
  let doc = docOf(b.file, b.name);
  if (!doc) {
    warnings.push(`${b.file}.ts: ${b.name} has no doc comment`);
    doc = [`(No doc comment above it in ${b.file}.ts.)`];
  }
  const comment = doc.length === 1 ? `  /** ${doc[0]} */` : ["  /**", ...doc.map((l) => (l ? `   * ${l}` : "   *")), "   */"].join("\n");
  return `${comment}\n  ${b.name}(${b.params.map((p) => `${p.name}: ${p.tsType}`).join(", ")}): ${b.tsReturn};`;
}

const table = (list: Binding[]) => list.map((b) => `  ${b.name}: [${b.params.map((p) => JSON.stringify(p.name)).join(", ")}],`).join("\n");

/** The text of runtime/kernel-exports.ts for the AS sources as they are now, and what they lack (exports without a doc comment). */
export async function generateKernelExports(): Promise<{ text: string; warnings: string[] }> {
  warnings.length = 0;
  sources.clear();
  const production = await bindings("asconfig.json", "simd");
  const names = new Set(production.map((b) => b.name));
  const testOnly = (await bindings("asconfig.test.json", "test")).filter((b) => !names.has(b.name));
  const members = production.map(member), testMembers = testOnly.map(member);
  const text = `// Generated by scripts/kernel-exports.ts from the AssemblyScript build: do not edit. \`npm run
// build:wasm\` regenerates it, and tests/bindings.test.ts fails when it differs from what the
// sources give. Names, parameters and types are asc's bindings of assembly/index.ts (and of
// assembly/testing.ts for the test builds), AS usize (an address) typed as Ptr; each doc
// comment is the one above the function's \`export function\` in assembly/.
import type { Ptr } from "./ptr.ts";

/** The exports of the production kernel builds (assembly/index.ts). Addresses (Ptr) are byte offsets into \`memory\`. */
export interface KernelExports {
  /** The instance's linear memory (imported, and shared, in the threaded builds). */
  memory: WebAssembly.Memory;
${members.join("\n")}
}

/** The exports of the test builds (build/kernels-test*.wasm, never shipped): the production kernels, their scalar twins and the other test-only functions of assembly/testing.ts. */
export interface TestKernelExports extends KernelExports {
${testMembers.join("\n")}
}

/** The parameter names of every production kernel function, in order: loadKernels checks the module against them, threads.ts splits arguments by them. */
export const KERNEL_PARAMS = {
${table(production)}
} as const satisfies Record<keyof Omit<KernelExports, "memory">, readonly string[]>;

/** The parameter names of the test builds' extra functions. */
export const TEST_KERNEL_PARAMS = {
${table(testOnly)}
} as const satisfies Record<Exclude<keyof TestKernelExports, keyof KernelExports>, readonly string[]>;
`;
  return { text, warnings: [...warnings] };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const { text, warnings: lacking } = await generateKernelExports();
  for (const w of lacking) console.warn(`kernel-exports: ${w}`);
  const path = `${ROOT}${OUTPUT}`;
  let old: string | null = null;
  try {
    old = readFileSync(path, "utf8");
  } catch {
    // not generated yet
  }
  if (process.argv.includes("--check")) {
    if (old !== text) {
      console.error(`${OUTPUT} is stale: run node --import tsx scripts/kernel-exports.ts (npm run build:wasm does)`);
      process.exit(1);
    }
    console.log(`${OUTPUT} is up to date`);
  } else if (old !== text) {
    writeFileSync(path, text);
    console.log(`wrote ${OUTPUT}`);
  } else console.log(`${OUTPUT} is up to date`);
}
