// The example program of the runtime running the tests (examples/node, deno or bun) runs as
// a user would run it, importing the package by its published name, and prints the greedy
// text the library generates in-process, then its speed.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import process from "node:process";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { loadBitNet } from "../model/load.ts";
import { dataPath, withData } from "./helpers.ts";

const test = suite("examples");
const root = fileURLToPath(new URL("../", import.meta.url));
const runtime = typeof (globalThis as { Deno?: unknown }).Deno !== "undefined" ? "deno" : (globalThis as { Bun?: unknown }).Bun ? "bun" : "node";
const COMMAND = {
  node: ["examples/node/main.mjs"],
  bun: ["examples/bun/main.ts"],
  deno: ["run", "--allow-read", "--allow-env", "examples/deno/main.ts"],
}[runtime];

withData(test, `examples/${runtime} generates the library's greedy text on 2 threads and reports tok/s`, ["models/bitllama-3M.bin", "models/tok512.bin"], async () => {
  const model = dataPath("models/bitllama-3M.bin"), prompt = "Once upon a time";
  const r = spawnSync(process.execPath, [...COMMAND, model, prompt, "2"], { cwd: root, encoding: "utf8" });
  assert.is(r.status, 0, r.stderr);
  using m = await loadBitNet(model);
  let want = prompt;
  for await (const { text } of m.generate(prompt, { maxTokens: 64, temperature: 0 })) want += text;
  const [text, summary] = r.stdout.split("\n-- ");
  assert.is(text, want);
  assert.match(summary, new RegExp(`^64 tokens, [0-9.]+ tok/s \\(${runtime} .*, 2 thread\\(s\\)\\)\\n$`));
});

test.run();
