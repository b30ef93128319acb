// Worker threads never keep a process alive: in the runtime running the tests (Node, Deno or
// Bun), a script that loads a model on 2 threads, generates and forgets dispose() exits by
// itself, and so does the CLI; more threads than cores warn on stderr at load.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { loadBitNet } from "../model/load.ts";
import { dataPath, needs, withData } from "./helpers.ts";

const test = suite("exit");
const ROOT = fileURLToPath(new URL("../", import.meta.url));
const MOD = new URL("../mod.ts", import.meta.url).href;
const TSX = new URL("../node_modules/tsx/dist/esm/index.mjs", import.meta.url).href;
const CLI = fileURLToPath(new URL("../cli/bitnet-wasm.ts", import.meta.url));
const DEADLINE_MS = 60_000;
const FILES = ["models/bitllama-1M.bin", "models/tok512.bin"];

declare const Deno: { execPath(): string } | undefined;
const runtime = typeof Deno !== "undefined" ? "deno" : process.versions.bun ? "bun" : "node";
// What the library counts (navigator.hardwareConcurrency; Node 20 has no navigator).
const CORES = (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator?.hardwareConcurrency ?? availableParallelism();

/** The command that runs a .ts / .mts file in this runtime (Deno: as a user would, `permissions` and the project's import map). */
function runtimeCommand(permissions: string[]): string[] {
  if (runtime === "deno") return [Deno!.execPath(), "run", ...permissions, "--config", `${ROOT}deno.json`];
  if (runtime === "bun") return [process.execPath];
  return [process.execPath, "--import", TSX];
}

/** Runs `args` in a child process; a child still alive at the deadline is killed and reported. */
function run(args: string[], cwd: string) {
  const [cmd, ...pre] = args;
  const t0 = performance.now();
  const r = spawnSync(cmd, pre, { cwd, encoding: "utf8", timeout: DEADLINE_MS, killSignal: "SIGKILL", env: { ...process.env, NO_COLOR: "1" } });
  const seconds = (performance.now() - t0) / 1000;
  const hung = r.status === null ? `still running after ${seconds.toFixed(1)} s (killed: ${r.signal ?? r.error?.message}); ` : "";
  return { code: r.status, stdout: r.stdout ?? "", stderr: r.stderr ?? "", why: `${hung}stderr: ${r.stderr}` };
}

// A user's script: outside the project, importing the library by file URL, no dispose().
let script = "";
function userScript(): string {
  if (script) return script;
  const dir = mkdtempSync(`${tmpdir()}/bitnet-exit-`);
  script = `${dir}/generate.mts`;
  writeFileSync(
    script,
    `import process from "node:process";
import { loadBitNet } from ${JSON.stringify(MOD)};
const [model, threads] = process.argv.slice(-2);
const m = await loadBitNet(model, { threads: Number(threads) });
const tokens: number[] = [];
let text = "";
for await (const t of m.generate("Once upon a time", { maxTokens: 5, temperature: 0 })) {
  tokens.push(t.token);
  text += t.text;
}
console.log(JSON.stringify({ threads: m.threads, tokens, text }));
// no m.dispose(): the kernel worker threads must not keep the process alive
`,
  );
  return script;
}
function runScript(threads: number) {
  const file = userScript();
  return run([...runtimeCommand(["--allow-read", "--allow-env"]), file, dataPath("models/bitllama-1M.bin"), String(threads)], tmpdir());
}

async function greedy(): Promise<{ tokens: number[]; text: string }> {
  using m = await loadBitNet(dataPath("models/bitllama-1M.bin"));
  const out = { tokens: [] as number[], text: "" };
  for await (const t of m.generate("Once upon a time", { maxTokens: 5, temperature: 0 })) {
    out.tokens.push(t.token);
    out.text += t.text;
  }
  return out;
}

withData(test, `${runtime}: a script that generates on 2 threads and never calls dispose() exits by itself with its tokens`, FILES, async () => {
  const r = runScript(2);
  assert.is(r.code, 0, r.why);
  assert.equal(JSON.parse(r.stdout), { threads: 2, ...(await greedy()) });
  if (CORES >= 2) assert.not.match(r.stderr, /more than the \d+ cores/, "2 threads on enough cores: no warning");
});

withData(test, `${runtime}: the CLI, generate --threads 2 --max-tokens 5, exits by itself`, FILES, () => {
  const r = run([...runtimeCommand(["-A"]), CLI, "generate", "--model", dataPath("models/bitllama-1M.bin"), "--threads", "2", "--max-tokens", "5", "--temperature", "0"], ROOT);
  assert.is(r.code, 0, r.why);
  assert.match(r.stdout, /^Once upon a time/);
  assert.match(r.stderr, /\b5 tokens\b.*\b2 threads\b/, "it ran on 2 threads");
});

// The machine, not a missing tool: skipped even under CI on a machine of 64 cores or more.
const FEW_CORES = { tool: "fewer than 64 cores", available: CORES + 1 <= 64, reason: `${CORES} cores: one more thread than cores is more than the 64 allowed`, ci: false };
needs(test, `${runtime}: more threads than cores print a one-line warning on stderr at load, and still run`, { tools: [FEW_CORES], files: FILES }, () => {
  const threads = CORES + 1;
  const r = runScript(threads);
  assert.is(r.code, 0, r.why);
  assert.is(JSON.parse(r.stdout).threads, threads);
  const warnings = r.stderr.split("\n").filter((l) => /cores/.test(l));
  assert.is(warnings.length, 1, r.stderr);
  assert.match(warnings[0], new RegExp(`^bitnet-wasm: threads: ${threads} is more than the ${CORES} cores of this machine`));
});

test.run();
