// The Cloudflare Worker example in workerd (the Workers runtime, from npm): bundled with
// esbuild, the kernels imported as a compiled WebAssembly module, bitllama-1M and its
// tokenizer as data modules; the streamed response is the greedy text Node generates.
// Runs in the Node pass only (it builds and starts workerd from Node).
import { suite } from "uvu";
import * as assert from "uvu/assert";
import process from "node:process";
import { spawn } from "node:child_process";
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { loadBitNet } from "../model/load.ts";
import { CI, dataPath, withData } from "./helpers.ts";

const test = suite("worker");
const root = fileURLToPath(new URL("../", import.meta.url));
const isNode = typeof (globalThis as { Deno?: unknown }).Deno === "undefined" && !(globalThis as { Bun?: unknown }).Bun;
// workerd is not a project dependency (npm ci would need every platform's binary package in
// the lock file): .ci/run installs it into .tools/workerd.
const WORKERD = process.env.WORKERD ?? join(root, ".tools/workerd/node_modules/.bin/workerd");

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer().listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

if (isNode) {
  withData(test, "examples/worker in workerd streams the Node greedy text of bitllama-1M", ["models/bitllama-1M.bin", "models/tok512.bin"], async () => {
    if (!existsSync(WORKERD)) {
      if (CI) assert.unreachable(`${WORKERD} is missing (.ci/run installs workerd there)`);
      console.log(`  (skipped: no ${WORKERD}; npm install --prefix .tools/workerd workerd, or set WORKERD)`);
      return;
    }
    const dir = mkdtempSync(join(tmpdir(), "bitnet-worker-"));
    const esbuild = await import("esbuild");
    await esbuild.build({
      entryPoints: [join(root, "examples/worker/worker.js")], bundle: true, format: "esm", platform: "neutral", outfile: join(dir, "worker.mjs"),
      external: ["./kernels.wasm", "./model.bin", "./tokenizer.bin", "node:*"], alias: { "bitnet-wasm": join(root, "dist/mod.js") },
      mainFields: ["module", "main"], logLevel: "error",
    });
    copyFileSync(join(root, "build/kernels-simd.wasm"), join(dir, "kernels.wasm"));
    copyFileSync(dataPath("models/bitllama-1M.bin"), join(dir, "model.bin"));
    copyFileSync(dataPath("models/tok512.bin"), join(dir, "tokenizer.bin"));
    const port = await freePort();
    writeFileSync(join(dir, "config.capnp"), readFileSync(join(root, "examples/worker/config.capnp.template"), "utf8").replace("PORT", String(port)));
    const workerd = spawn(WORKERD, ["serve", "config.capnp"], { cwd: dir, stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    workerd.stderr.on("data", (d) => (stderr += d));
    try {
      const prompt = "Once upon a time", url = `http://127.0.0.1:${port}/?${new URLSearchParams({ prompt, maxTokens: "64", temperature: "0" })}`;
      let response: Response | null = null;
      for (let i = 0; i < 100 && !response; i++) {
        response = await fetch(url).catch(() => new Promise<null>((r) => setTimeout(() => r(null), 200)));
      }
      assert.ok(response, `workerd did not answer: ${stderr}`);
      assert.is(response!.status, 200, stderr);
      // Streamed: the body arrives in several chunks.
      const reader = response!.body!.getReader(), decoder = new TextDecoder();
      let got = "", chunks = 0;
      for (let r = await reader.read(); !r.done; r = await reader.read()) {
        got += decoder.decode(r.value, { stream: true });
        chunks++;
      }
      const m = await loadBitNet(dataPath("models/bitllama-1M.bin"));
      let want = prompt;
      for await (const { text } of m.generate(prompt, { maxTokens: 64, temperature: 0 })) want += text;
      m.dispose();
      assert.is(got, want, stderr);
      assert.ok(chunks > 1, `${chunks} chunk(s)`);
    } finally {
      workerd.kill();
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

test.run();
