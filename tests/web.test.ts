// The two entries: web.ts (browsers, Workers) reaches nothing from node: and has no file
// system, so a path is a BitNetError saying what to pass instead (never a fetch); Blobs and
// Files load piece by piece by slice; any FileSystem given to useFileSystem serves paths;
// mod.ts installs node:fs (runtime/node.ts). Runs under every runtime.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { readFileSync } from "node:fs";
import { BitNetError, type FileSystem, loadBitNet, useFileSystem } from "../web.ts";
import { nodeFileSystem } from "../runtime/node.ts";
import { compileKernels } from "../runtime/kernels.ts";
import { memoryFile } from "../runtime/files.ts";
import type { BitNetModel } from "../model/model.ts";
import { dataPath, rejects, withData } from "./helpers.ts";

const test = suite("web");
const ROOT = new URL("../", import.meta.url);

/** Every module specifier `entry` reaches through relative imports (static and dynamic), by file. */
function importGraph(entry: string): Map<string, string[]> {
  const graph = new Map<string, string[]>(), todo = [new URL(entry, ROOT)];
  while (todo.length) {
    const file = todo.pop()!;
    if (graph.has(file.href)) continue;
    const source = readFileSync(file, "utf8").replace(/^\s*\/\/.*$/gm, "").replace(/\/\*[\s\S]*?\*\//g, "");
    const specifiers = [...source.matchAll(/(?:\bfrom\s*|\bimport\s*\(?\s*)["']([^"']+)["']/g)].map((m) => m[1]);
    graph.set(file.href, specifiers);
    for (const s of specifiers) if (s.startsWith(".")) todo.push(new URL(s, file));
  }
  return graph;
}

const nodeImports = (graph: Map<string, string[]>) =>
  [...graph].flatMap(([file, specifiers]) => specifiers.filter((s) => s.startsWith("node:")).map((s) => `${file.slice(ROOT.href.length)}: ${s}`));

test("web.ts and research.ts reach no node: module; mod.ts reaches node:fs only through runtime/node.ts", () => {
  const web = importGraph("web.ts");
  assert.ok(web.size > 20, `${web.size} modules`);
  assert.equal(nodeImports(web), []);
  assert.equal(nodeImports(importGraph("research.ts")), []);
  const main = importGraph("mod.ts");
  assert.equal([...new Set(nodeImports(main).map((i) => i.split(":")[0]))], ["runtime/node.ts"]);
});

async function greedy(model: BitNetModel): Promise<string> {
  let text = "";
  try {
    for await (const piece of model.generate("Once", { temperature: 0, maxTokens: 20 })) text += piece.text;
  } finally {
    model.dispose();
  }
  return text;
}

/** Runs `fn` with `fs` as the file system (null: none, as under the web entry), then puts node:fs back. */
async function withFileSystem<T>(fs: FileSystem | null, fn: () => Promise<T>): Promise<T> {
  useFileSystem(fs);
  try {
    return await fn();
  } finally {
    useFileSystem(nodeFileSystem);
  }
}

withData(test, "without a file system a path is a BitNetError naming the entries, and nothing is fetched; bytes, Blobs and Files load", [
  "models/bitllama-1M.bin",
  "models/tok512.bin",
], async (model, tok) => {
  const want = await greedy(await loadBitNet(dataPath("models/bitllama-1M.bin"), { tokenizer: dataPath("models/tok512.bin") }));
  const wasmModule = await compileKernels("strict"); // Node's fetch reads no file: URL, so the kernels come compiled
  const realFetch = globalThis.fetch, fetched: string[] = [];
  globalThis.fetch = ((input: RequestInfo | URL, init?: RequestInit) => {
    fetched.push(String(input instanceof Request ? input.url : input));
    return realFetch(input, init);
  }) as typeof fetch;
  try {
    await withFileSystem(null, async () => {
      const hint = /file paths need the Node \/ Deno \/ Bun entry \("bitnet-wasm" or "jsr:@bitnet\/wasm".*Pass an http\(s\) URL .*a Blob or File/;
      await rejects(loadBitNet("models/bitllama-1M.bin", { wasmModule }), BitNetError, hint);
      await rejects(loadBitNet(model, { tokenizer: "tok512.bin", wasmModule }), BitNetError, hint);
      assert.equal(fetched, [], "a relative path is never fetched as a URL");
      assert.is(await greedy(await loadBitNet(model, { tokenizer: tok, wasmModule })), want);
      // A File (what a page's <input type="file"> gives) and a Blob: read by slices, never whole.
      const file = new File([model.slice()], "bitllama-1M.bin");
      const slices: number[] = [];
      const slice = file.slice.bind(file);
      file.slice = (start?: number, end?: number, type?: string) => {
        slices.push((end ?? file.size) - (start ?? 0));
        return slice(start, end, type);
      };
      const progress: number[] = [];
      const m = await loadBitNet(file, { tokenizer: new Blob([tok.slice()]), wasmModule, onProgress: (p) => p.phase === "read" && progress.push(p.loaded) });
      assert.is(m.source, "bitllama-1M.bin");
      assert.is(await greedy(m), want);
      assert.ok(slices.length > 3 && Math.max(...slices) < model.length, `slices: ${slices.join(", ")}`);
      assert.is(progress.at(-1), model.length);
      assert.equal(fetched, []);
    });
  } finally {
    globalThis.fetch = realFetch;
  }
});

withData(
  test,
  "a FileSystem given to useFileSystem serves paths: the model, and the tokenizer looked up beside it",
  ["models/bitllama-1M.bin", "models/tok512.bin"],
  async (model, tok) => {
    const want = await greedy(await loadBitNet(model, { tokenizer: tok }));
    const files = new Map([["/virtual/model.bin", model], ["/virtual/tok512.bin", tok]]);
    const asked: string[] = [];
    const get = (path: string | URL) => {
      asked.push(String(path));
      const bytes = files.get(String(path));
      if (!bytes) throw new Error("no such file");
      return bytes;
    };
    const virtual: FileSystem = {
      open: (path) => Promise.resolve().then(() => memoryFile(get(path), String(path))),
      readFile: (path) => Promise.resolve().then(() => get(path)),
      isFile: (path) => Promise.resolve(files.has(String(path))),
      isDirectory: (path) => Promise.resolve(String(path) === "/virtual"),
      writeFile: () => Promise.reject(new Error("read-only")),
      appendFile: () => Promise.reject(new Error("read-only")),
      sink: () => Promise.reject(new Error("read-only")),
    };
    await withFileSystem(virtual, async () => {
      assert.is(await greedy(await loadBitNet("/virtual/model.bin")), want);
      assert.ok(asked.includes("/virtual/tok512.bin"), asked.join(", "));
      await rejects(loadBitNet("/virtual/missing.bin"), BitNetError, /^cannot read \/virtual\/missing\.bin: no such file$/);
    });
  },
);

test.run();
