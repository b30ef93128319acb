// The Cloudflare Worker example in workerd (the Workers runtime, from npm): bundled with
// esbuild, the kernels imported as a compiled WebAssembly module, bitllama-1M and its
// tokenizer as data modules, the chat template as a text module; driven by the `openai`
// client, its completions and chat completion are the greedy text Node generates.
// The bundle resolves `bitnet-wasm` as an installed package under the "workerd" condition,
// which picks the web entry (dist/web.js): no node: import to mark external, none in the bundle.
// Runs in the Node pass only (it builds and starts workerd from Node).
import { suite } from "uvu";
import * as assert from "uvu/assert";
import process from "node:process";
import { spawn } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import OpenAI from "openai";
import { loadBitNet } from "../model/load.ts";
import { dataPath, needs, onlyUnder } from "./helpers.ts";

const test = suite("worker");
const root = fileURLToPath(new URL("../", import.meta.url));
// workerd is not a project dependency (npm ci would need every platform's binary package in
// the lock file): .ci/run installs it into .tools/workerd.
const WORKERD = process.env.WORKERD ?? join(root, ".tools/workerd/node_modules/.bin/workerd");
const WORKERD_TOOL = { tool: WORKERD, available: existsSync(WORKERD), reason: "npm install --prefix .tools/workerd workerd (.ci/run does), or set WORKERD" };

/**
 * Bundles examples/worker/worker.js into `dir`/worker.mjs as wrangler would: `bitnet-wasm` is
 * this package installed in `dir`/node_modules (a link to the project) and resolved through
 * its package.json exports under the "workerd" and "worker" conditions; only the four files
 * the Worker imports are external. Returns the bundle's text.
 */
async function bundleWorker(dir: string): Promise<string> {
  mkdirSync(join(dir, "node_modules"), { recursive: true });
  symlinkSync(root, join(dir, "node_modules/bitnet-wasm"), "dir");
  const esbuild = await import("esbuild");
  const result = await esbuild.build({
    entryPoints: [join(root, "examples/worker/worker.js")],
    bundle: true,
    format: "esm",
    platform: "neutral",
    outfile: join(dir, "worker.mjs"),
    external: ["./kernels.wasm", "./model.bin", "./tokenizer.bin", "./chat-template.jinja"],
    nodePaths: [join(dir, "node_modules")],
    conditions: ["workerd", "worker"],
    mainFields: ["module", "main"],
    logLevel: "error",
    metafile: true,
  });
  const inputs = Object.keys(result.metafile!.inputs);
  assert.ok(inputs.some((i) => /(^|\/)dist\/web\.js$/.test(i)), `bitnet-wasm resolved to dist/web.js: ${inputs.filter((i) => !i.includes("node_modules/@")).join(", ")}`);
  assert.not.ok(inputs.some((i) => /(^|\/)dist\/(mod|runtime\/node)\.js$/.test(i)), "the main entry or the node adapter is in the bundle");
  return readFileSync(join(dir, "worker.mjs"), "utf8");
}

/** The node: modules a bundle imports (static, dynamic or required). */
const nodeImports = (code: string) => [...code.matchAll(/(?:\bfrom\s*|\bimport\s*\(?\s*|\brequire\s*\(\s*)["'](node:[^"']+)["']/g)].map((m) => m[1]);

const DIST_WEB = { tool: "dist/web.js", available: existsSync(join(root, "dist/web.js")), reason: "dist/ is not built: npm run build" };

const BUNDLE = "the Worker bundle resolves bitnet-wasm to the web entry by the workerd condition, with no node: import and no externals for it";
needs(test, BUNDLE, { tools: [onlyUnder("node"), DIST_WEB] }, async () => {
  const dir = mkdtempSync(join(tmpdir(), "bitnet-worker-bundle-"));
  try {
    assert.equal(nodeImports(await bundleWorker(dir)), []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer().listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** The text of a streamed completion or chat completion, and how many chunks carried it. */
async function collect(stream: AsyncIterable<{ choices: { text?: string; delta?: { content?: string | null } }[] }>) {
  let text = "", chunks = 0;
  for await (const chunk of stream) {
    chunks++;
    for (const c of chunk.choices) text += c.text ?? c.delta?.content ?? "";
  }
  return { text, chunks };
}

const NAME = "bitllama-1M", API_KEY = "worker-test-key";

needs(
  test,
  "examples/worker in workerd is an OpenAI API: completions (plain and streamed in chunks) and a chat completion equal Node's greedy text of bitllama-1M; /v1/models lists it, /health answers, the API_KEY binding is required",
  { tools: [onlyUnder("node"), WORKERD_TOOL, DIST_WEB], files: ["models/bitllama-1M.bin", "models/tok512.bin"] },
  async () => {
    const dir = mkdtempSync(join(tmpdir(), "bitnet-worker-"));
    await bundleWorker(dir);
    copyFileSync(join(root, "build/kernels-simd.wasm"), join(dir, "kernels.wasm"));
    copyFileSync(dataPath("models/bitllama-1M.bin"), join(dir, "model.bin"));
    copyFileSync(dataPath("models/tok512.bin"), join(dir, "tokenizer.bin"));
    copyFileSync(join(root, "examples/worker/chat-template.jinja"), join(dir, "chat-template.jinja"));
    const port = await freePort();
    const config = readFileSync(join(root, "examples/worker/config.capnp.template"), "utf8").replace("PORT", String(port));
    // The key as the Worker's env binding (wrangler secret put API_KEY, in production).
    writeFileSync(join(dir, "config.capnp"), config.replace("compatibilityDate =", `bindings = [(name = "API_KEY", text = "${API_KEY}")],\n  compatibilityDate =`));
    const workerd = spawn(WORKERD, ["serve", "config.capnp"], { cwd: dir, stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    workerd.stderr.on("data", (d) => (stderr += d));
    const model = await loadBitNet(dataPath("models/bitllama-1M.bin"), { chatTemplate: readFileSync(join(root, "examples/worker/chat-template.jinja"), "utf8") });
    try {
      const url = `http://127.0.0.1:${port}/`;
      let health: Response | null = null;
      for (let i = 0; i < 100 && !health; i++) {
        health = await fetch(`${url}health`).catch(() => new Promise<null>((r) => setTimeout(() => r(null), 200)));
      }
      assert.ok(health, `workerd did not answer: ${stderr}`);
      assert.is(health!.status, 200, stderr);
      assert.is((await health!.json()).status, "ok");
      const unauthorized = await fetch(`${url}v1/models`);
      assert.is(unauthorized.status, 401, stderr);
      await unauthorized.body?.cancel();

      // maxRetries 0: a failure shows as itself.
      const client = new OpenAI({ baseURL: `${url}v1`, apiKey: API_KEY, maxRetries: 0 });
      assert.equal((await client.models.list()).data.map((m) => m.id), [NAME]);

      const prompt = "Once upon a time";
      const want = await model.complete(prompt, { temperature: 0, maxTokens: 64 });
      const got = await client.completions.create({ model: NAME, prompt, max_tokens: 64, temperature: 0 });
      assert.is(got.choices[0].text, want.text, stderr);
      const streamed = await collect(await client.completions.create({ model: NAME, prompt, max_tokens: 64, temperature: 0, stream: true }));
      assert.is(streamed.text, want.text, stderr);
      assert.ok(streamed.chunks > 2, `${streamed.chunks} chunk(s)`);

      const messages = [{ role: "user" as const, content: "Tell me a story about a dog." }];
      const wantChat = await model.complete(messages, { temperature: 0, maxTokens: 16 });
      const chat = await client.chat.completions.create({ model: NAME, messages, max_tokens: 16, temperature: 0 });
      assert.is(chat.choices[0].message.content, wantChat.text, stderr);
    } finally {
      model.dispose();
      workerd.kill();
      rmSync(dir, { recursive: true, force: true });
    }
  },
);

test.run();
