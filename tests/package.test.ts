// The packages as published: the file set `deno publish` would upload, served over HTTP and
// imported by URL in a Deno process that may only talk to 127.0.0.1 (as a JSR user's Deno
// would import the package, with the bare specifiers JSR rewrites to npm:), generating the
// same greedy text as the library in this process; npm's file list; the version everywhere.
// Runs under every runtime; the JSR part needs a deno binary (this one under Deno).
import { suite } from "uvu";
import * as assert from "uvu/assert";
import process from "node:process";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { delimiter, extname, join, relative, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { loadBitNet } from "../mod.ts";
import { VERSION } from "../cli/version.ts";
import { needs } from "./helpers.ts";

const test = suite("package");
const ROOT = fileURLToPath(new URL("../", import.meta.url));
const json = (path: string) => JSON.parse(readFileSync(join(ROOT, path), "utf8"));
/** The kernel builds, as asconfig.json names them (build/kernels-*.wasm). */
const KERNELS: string[] = Object.values(json("asconfig.json").targets as Record<string, { outFile: string }>).map((t) => t.outFile);
const PROMPT = "Once upon a time";
const CHILD_DEADLINE_MS = 120_000;

declare const Deno: { execPath(): string } | undefined;

/** A deno binary: this one under Deno, else .ci/run's in .tools/, else one on PATH. */
function findDeno(): string | undefined {
  if (typeof Deno !== "undefined") return Deno.execPath();
  const candidates = [join(ROOT, ".tools/node_modules/.bin/deno"), ...(process.env.PATH ?? "").split(delimiter).filter(Boolean).map((dir) => join(dir, "deno"))];
  return candidates.find((c) => existsSync(c));
}
const DENO = findDeno();

const DENO_TOOL = { tool: "deno", available: DENO !== undefined, reason: "none in .tools/node_modules/.bin or on PATH; .ci/run installs one there" };

/** Registers a test that needs deno: skipped with a message without one, failed under CI. */
function withDeno(name: string, files: string[], fn: (deno: string, ...bytes: Uint8Array[]) => unknown): void {
  needs(test, name, { tools: [DENO_TOOL], files }, (...bytes) => fn(DENO!, ...bytes));
}

let published: Promise<string[]> | undefined;
/** The files `deno publish --dry-run` lists, relative to the project root (run once per process). */
function publishedFiles(deno: string): Promise<string[]> {
  published ??= Promise.resolve().then(() => {
    const r = spawnSync(deno, ["publish", "--dry-run", "--allow-dirty"], { cwd: ROOT, encoding: "utf8", env: { ...process.env, NO_COLOR: "1" }, timeout: CHILD_DEADLINE_MS });
    const output = `${r.stdout}${r.stderr}`;
    assert.is(r.status, 0, `deno publish --dry-run --allow-dirty failed:\n${output}`);
    const files = [...output.matchAll(/^\s*(file:\/\/\S+)/gm)].map((m) => relative(ROOT, fileURLToPath(m[1])).split(sep).join("/"));
    assert.ok(files.length > 0, `no file list in:\n${output}`);
    return files.sort();
  });
  return published;
}

const TYPES: Record<string, string> = {
  ".ts": "application/typescript; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".json": "application/json",
  ".wasm": "application/wasm",
  ".md": "text/markdown",
};

/** Serves exactly `files` (package paths, from the project) and `extra` (other paths, given bytes) on 127.0.0.1; everything else is a 404, recorded in `misses`. */
async function serve(files: string[], extra: Record<string, Uint8Array>): Promise<{ server: Server; base: string; hits: Set<string>; misses: string[] }> {
  const allowed = new Set(files), hits = new Set<string>(), misses: string[] = [];
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname).slice(1);
    const body = Object.hasOwn(extra, path) ? extra[path] : allowed.has(path) ? readFileSync(join(ROOT, path)) : null;
    if (!body) {
      misses.push(path);
      res.writeHead(404).end();
      return;
    }
    hits.add(path);
    res.writeHead(200, { "content-type": TYPES[extname(path)] ?? "application/octet-stream", "content-length": body.byteLength }).end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { server, base: `http://127.0.0.1:${(server.address() as { port: number }).port}/`, hits, misses };
}

/** Runs `deno run <args>` (`-` in args: the program is `stdin`), killed at the deadline; resolves with its exit code and output. */
function runDeno(deno: string, args: string[], stdin: string, env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string; timedOut: boolean }> {
  return new Promise((resolve, reject) => {
    const child = spawn(deno, ["run", ...args], { cwd: ROOT, env: { ...process.env, NO_COLOR: "1", ...env }, stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "", stderr = "", timedOut = false;
    child.stdout!.on("data", (d) => (stdout += d));
    child.stderr!.on("data", (d) => (stderr += d));
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
    }, CHILD_DEADLINE_MS);
    child.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, timedOut });
    });
    child.stdin!.end(stdin);
  });
}

test("the version is the same in cli/version.ts, package.json and deno.json", () => {
  assert.match(VERSION, /^\d+\.\d+\.\d+(-[\w.]+)?$/);
  assert.is(json("package.json").version, VERSION);
  assert.is(json("deno.json").version, VERSION);
});

withDeno("deno publish carries the four kernel builds, thread-worker.js, the CLI and LICENSE, and no benchmark scripts", [], async (deno) => {
  const files = await publishedFiles(deno);
  assert.is(KERNELS.length, 4, `asconfig.json targets: ${KERNELS.join(", ")}`);
  for (const f of [...KERNELS, "runtime/thread-worker.js", "mod.ts", "web.ts", "research.ts", "runtime/node.ts", "cli/bitnet-wasm.ts", "cli/version.ts", "LICENSE", "README.md"]) {
    assert.ok(files.includes(f), `${f} is not in the JSR package: ${files.join(", ")}`);
  }
  assert.equal(files.filter((f) => /^eval\/(bench-|chromium)/.test(f)), [], "benchmark scripts in the JSR package");
  assert.ok(files.includes("eval/sweep.ts") && files.includes("model/perplexity.ts"), "research.ts imports eval/sweep.ts, web.ts model/perplexity.ts");
  assert.equal(json("deno.json").exports, { ".": "./mod.ts", "./web": "./web.ts", "./research": "./research.ts", "./cli": "./cli/bitnet-wasm.ts" });
});

withDeno(
  "the published files, imported by URL in a Deno allowed only 127.0.0.1, generate the library's greedy text",
  ["models/bitllama-1M.bin", "models/tok512.bin"],
  async (deno, model, tokenizer) => {
    const files = await publishedFiles(deno);
    // JSR rewrites bare specifiers to what deno.json's "imports" maps them to (npm: here); the
    // import map stands in for that rewrite. Test-only files live under __test__/, not a package path.
    assert.not.ok(files.some((f) => f.startsWith("__test__/")));
    const importMap = new TextEncoder().encode(JSON.stringify({ imports: json("deno.json").imports }));
    const { server, base, hits, misses } = await serve(files, { "__test__/model.bin": model, "__test__/tokenizer.bin": tokenizer, "__test__/import_map.json": importMap });
    const denoDir = mkdtempSync(join(tmpdir(), "bitnet-deno-dir-"));
    try {
      const script = `
      import { loadBitNet } from "${base}mod.ts";
      const bytes = async (path) => new Uint8Array(await (await fetch("${base}" + path)).arrayBuffer());
      const model = await loadBitNet(await bytes("__test__/model.bin"), { tokenizer: await bytes("__test__/tokenizer.bin"), threads: 2 });
      const tokens = [];
      let text = "";
      for await (const piece of model.generate(${JSON.stringify(PROMPT)}, { maxTokens: 20, temperature: 0 })) {
        if (piece.token >= 0) tokens.push(piece.token);
        text += piece.text;
      }
      console.log(JSON.stringify({ tokens, text, threads: model.threads }));
      model.dispose();
    `;
      // --no-config: none of this project's deno.json (imports, workspace) applies, only the
      // import map. npm: specifiers resolve from the project's node_modules (--node-modules-dir=manual,
      // cwd the project): Deno reads them as module loading, which needs no --allow-read, so the
      // child gets no read permission at all. --allow-import=127.0.0.1: Deno 2 imports remote
      // code only from hosts it is allowed to (jsr.io is by default; this server is not).
      // DENO_DIR: a scratch cache for the remote modules.
      const flags = ["--no-config", "--node-modules-dir=manual", `--import-map=${base}__test__/import_map.json`, "--allow-net=127.0.0.1", "--allow-import=127.0.0.1"];
      const r = await runDeno(deno, [...flags, "-"], script, { DENO_DIR: denoDir });
      assert.not.ok(r.timedOut, `the Deno child did not finish in ${CHILD_DEADLINE_MS / 1000} s: ${r.stderr}`);
      assert.is(r.code, 0, `${r.stderr}\n(404s: ${misses.join(", ") || "none"})`);
      const got = JSON.parse(r.stdout.trim().split("\n").pop()!);
      // The kernels came from the served package.
      assert.ok(KERNELS.some((k) => hits.has(k)), `no kernel fetched; served: ${[...hits].join(", ")}`);
      using m = await loadBitNet(model, { tokenizer });
      const want: number[] = [];
      let text = "";
      for await (const piece of m.generate(PROMPT, { maxTokens: 20, temperature: 0 })) {
        if (piece.token >= 0) want.push(piece.token);
        text += piece.text;
      }
      assert.is(want.length, 20);
      assert.equal(got.tokens, want);
      assert.is(got.threads, 2, "the kernel worker threads start from the remote module too");
      assert.is(got.text, text);
      // The CLI export, run by URL as `deno run jsr:@bitnet/wasm/cli` would run it.
      const cli = await runDeno(deno, [...flags, `${base}cli/bitnet-wasm.ts`, "--version"], "", { DENO_DIR: denoDir });
      assert.is(cli.code, 0, cli.stderr);
      assert.is(cli.stdout, `${VERSION}\n`);
    } finally {
      await new Promise((resolve) => server.close(resolve));
      rmSync(denoDir, { recursive: true, force: true });
    }
  },
);

/** npm on PATH (or beside this Node). */
function findNpm(): string | undefined {
  const dirs = [...(process.env.PATH ?? "").split(delimiter).filter(Boolean)];
  return dirs.map((dir) => join(dir, "npm")).find((c) => existsSync(c));
}

const NPM = findNpm(), BUILT = existsSync(join(ROOT, "dist/mod.js"));
const NPM_PACK = "npm pack ships dist (kernels, thread worker), README and LICENSE, and no benchmark scripts";
const NPM_TOOLS = [
  { tool: "npm", available: NPM !== undefined, reason: "none on PATH" },
  { tool: "dist/mod.js", available: BUILT, reason: "dist/ is not built: npm run build" },
];
needs(test, NPM_PACK, { tools: NPM_TOOLS }, () => {
  const npm = NPM!;
  // --ignore-scripts: list what dist/ holds now, without prepack's rebuild.
  const r = spawnSync(npm, ["pack", "--dry-run", "--json", "--ignore-scripts"], { cwd: ROOT, encoding: "utf8", timeout: CHILD_DEADLINE_MS });
  assert.is(r.status, 0, r.stderr);
  const files: string[] = JSON.parse(r.stdout)[0].files.map((f: { path: string }) => f.path);
  const entries = ["mod", "web", "research"].flatMap((e) => [`dist/${e}.js`, `dist/${e}.d.ts`]);
  for (
    const f of [
      ...KERNELS.map((k) => `dist/${k}`),
      "dist/runtime/thread-worker.js",
      ...entries,
      "dist/runtime/node.js",
      "dist/cli/bitnet-wasm.js",
      "dist/cli/version.js",
      "LICENSE",
      "README.md",
      "package.json",
    ]
  ) {
    assert.ok(files.includes(f), `${f} is not in the npm package`);
  }
  assert.equal(files.filter((f) => /^dist\/eval\/(bench-|chromium)/.test(f)), [], "benchmark scripts in the npm package");
  assert.ok(files.includes("dist/eval/sweep.js"));
  // Browsers and Workers resolve the package to the web entry, Node, Deno and Bun to the main one.
  const main = json("package.json").exports["."];
  assert.equal([main.browser, main.workerd, main.worker, main.import], ["./dist/web.js", "./dist/web.js", "./dist/web.js", "./dist/mod.js"]);
  assert.match(readFileSync(join(ROOT, "LICENSE"), "utf8"), /^MIT License\n\nCopyright \(c\) 2026 the bitnet-wasm authors\n/);
});

test.run();
