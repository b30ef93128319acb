// The fuzzer: seeded, structure-aware mutations of every reader's input (GGUF, safetensors,
// Hugging Face folders and their JSON, llama2.c and ak42 checkpoints, tokenizer.bin,
// tokenizer.json with its chat template) and of a caller's arguments, each case run in a
// child process with a deadline and a memory ceiling and classified ok / typed / untyped /
// silent / crash / hang / memory. Every case that is not ok or typed is kept as a reproducer
// folder (its files and case.json); `--replay DIR` runs one again in this process.
// Run: node --import tsx eval/fuzz.ts [--cases N] [--seed S] [--jobs J] [--out DIR]
//      [--timeout MS] [--memory MIB] [--readers gguf,safetensors,...] [--replay DIR]
//      (or deno run -A eval/fuzz.ts ..., bun eval/fuzz.ts ...: the cases run in the same runtime)
// Exits 1 when any case broke a promise (untyped, silent, crash, hang or memory).
import process from "node:process";
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";
import { exercise, type Outcome, writeCase } from "./fuzz/exercise.ts";
import { makeCase } from "./fuzz/mutate.ts";
import { buildSeeds, DATA, type FuzzCase, SEED_FILES } from "./fuzz/seeds.ts";

const { values } = parseArgs({
  options: {
    cases: { type: "string" },
    seed: { type: "string" },
    jobs: { type: "string" },
    out: { type: "string" },
    timeout: { type: "string" },
    memory: { type: "string" },
    readers: { type: "string" },
    replay: { type: "string" },
    child: { type: "boolean" },
  },
});
const CASES = Number(values.cases ?? 2000), SEED = Number(values.seed ?? 1), JOBS = Number(values.jobs ?? 2);
const OUT = resolve(values.out ?? "fuzz-out"), TIMEOUT = Number(values.timeout ?? 20000), MEMORY = Number(values.memory ?? 1024) * 2 ** 20;
const READERS = values.readers?.split(",");
type Kind = Outcome | "invalid" | "crash" | "hang" | "memory";
const KINDS: Kind[] = ["ok", "typed", "untyped", "silent", "crash", "hang", "memory", "invalid"];
const BROKEN = new Set<Kind>(["untyped", "silent", "crash", "hang", "memory"]);
const caseDir = (id: number) => join(OUT, "work", String(id));

/** Child: builds the seeds, then runs the case numbers it is sent, one JSON line back per case. */
async function child(): Promise<void> {
  const seeds = await buildSeeds();
  const only = READERS ? new Map([...seeds].filter(([, c]) => READERS.includes(c.reader))) : seeds;
  process.stdout.write(JSON.stringify({ ready: true }) + "\n");
  for await (const line of createInterface({ input: process.stdin })) {
    const { id } = JSON.parse(line) as { id: number };
    const c = makeCase(only, SEED, id), dir = caseDir(id);
    let result;
    try {
      writeCase(c, dir);
      writeFileSync(join(dir, "case.json"), JSON.stringify({ seed: SEED, id, from: c.seed, reader: c.reader, entry: c.entry, mutations: c.mutations, call: c.call }, null, 1));
      result = await exercise(c, dir);
    } catch (e) {
      // A layout the file system refuses (two mutations that contradict each other): not a test of the library.
      result = { outcome: "invalid" as const, detail: String(e), wasmBytes: 0 };
    }
    if (!BROKEN.has(result.outcome as Kind) && result.wasmBytes <= MEMORY) rmSync(dir, { recursive: true, force: true });
    process.stdout.write(JSON.stringify({ id, reader: c.reader, mutations: c.mutations, ...result }) + "\n");
  }
}

const FUZZ = fileURLToPath(import.meta.url);
declare const Deno: unknown;

/** How this runtime runs a TypeScript file, with the JS heap capped at the memory ceiling (Bun has no such flag: RSS polling stands in). */
function runtimeArgs(): string[] {
  const heap = `--max-old-space-size=${Math.round(MEMORY / 2 ** 20)}`;
  if (typeof Deno !== "undefined") return ["run", "-A", `--v8-flags=${heap}`];
  if (process.versions.bun) return [];
  return [heap, "--import", "tsx"];
}

/** Resident memory of a process in bytes (Linux /proc; 0 where it cannot be read). */
function rss(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

interface Result {
  id: number;
  reader: string;
  kind: Kind;
  detail: string;
  mutations?: string[];
}

/** One child process: sends it case numbers and settles each with its outcome, or with crash / hang / memory. */
class Runner {
  #proc!: ChildProcess;
  #pending: { id: number; settle: (r: Result) => void; timer: ReturnType<typeof setTimeout>; poll: ReturnType<typeof setInterval> } | null = null;
  #ready!: Promise<void>;
  #stderr = "";

  constructor() {
    this.#start();
  }

  #start(): void {
    const args = [...runtimeArgs(), FUZZ, "--child", "--seed", String(SEED), "--out", OUT, "--memory", String(MEMORY / 2 ** 20)];
    if (values.readers) args.push("--readers", values.readers);
    const proc = spawn(process.execPath, args, { stdio: ["pipe", "pipe", "pipe"] });
    this.#proc = proc;
    this.#stderr = "";
    proc.stderr!.on("data", (d) => (this.#stderr = (this.#stderr + d).slice(-4000)));
    let ready: () => void, started = false;
    this.#ready = new Promise((r) => (ready = r));
    createInterface({ input: proc.stdout! }).on("line", (line) => {
      let msg;
      try {
        msg = JSON.parse(line);
      } catch {
        return; // a stray line from the library's own logging
      }
      if (msg.ready) return (started = true, ready());
      const p = this.#pending;
      if (!p || p.id !== msg.id) return;
      const kind: Kind = msg.wasmBytes > MEMORY ? "memory" : msg.outcome;
      this.#finish({
        id: msg.id,
        reader: msg.reader,
        kind,
        detail: kind === "memory" ? `WebAssembly memory grew to ${msg.wasmBytes} bytes; ${msg.detail}` : msg.detail,
        mutations: msg.mutations,
      });
    });
    proc.on("exit", (code, signal) => {
      if (this.#proc !== proc) return;
      if (!started) throw new Error(`a fuzz child exited (${code ?? signal}) before it was ready: ${this.#stderr.slice(-2000)}`);
      const p = this.#pending;
      const oom = /heap out of memory|Allocation failed/.test(this.#stderr);
      if (p) this.#finish({ id: p.id, reader: "?", kind: oom ? "memory" : "crash", detail: `exit ${code ?? signal}: ${this.#stderr.slice(-600)}` }, true);
      else this.#start();
    });
  }

  #finish(r: Result, restart = false): void {
    const p = this.#pending!;
    clearTimeout(p.timer), clearInterval(p.poll);
    this.#pending = null;
    if (restart) this.#start();
    p.settle(r);
  }

  async run(id: number): Promise<Result> {
    await this.#ready;
    return new Promise((settle) => {
      const kill = (kind: Kind, detail: string) => {
        const p = this.#pending!, proc = this.#proc;
        this.#finish({ id: p.id, reader: "?", kind, detail }, true);
        proc.kill("SIGKILL");
      };
      const timer = setTimeout(() => kill("hang", `no answer in ${TIMEOUT} ms`), TIMEOUT);
      const poll = setInterval(() => {
        const used = rss(this.#proc.pid!);
        if (used > MEMORY * 1.5) kill("memory", `resident memory ${used} bytes`);
      }, 50);
      this.#pending = { id, settle, timer, poll };
      this.#proc.stdin!.write(JSON.stringify({ id }) + "\n");
    });
  }

  stop(): void {
    const proc = this.#proc;
    this.#proc = null as unknown as ChildProcess;
    proc.kill();
  }
}

/** An error message without its numbers and paths: failures of one kind share it. */
const signature = (detail: string) => detail.split("\n")[0].replace(/\/[^\s:]+/g, "PATH").replace(/-?\d+(\.\d+)?(e[+-]?\d+)?/g, "N").slice(0, 110);

async function main(): Promise<void> {
  const missing = SEED_FILES.filter((f) => !existsSync(new URL(f, DATA)));
  if (missing.length) throw new Error(`the fuzzer's seeds need ../shared/data: missing ${missing.join(", ")}`);
  rmSync(join(OUT, "work"), { recursive: true, force: true });
  mkdirSync(join(OUT, "failures"), { recursive: true });
  const runners = Array.from({ length: JOBS }, () => new Runner());
  const results: Result[] = [];
  let next = 0;
  const started = performance.now();
  await Promise.all(runners.map(async (runner) => {
    while (next < CASES) {
      const r = await runner.run(next++);
      results.push(r);
      if (BROKEN.has(r.kind)) keep(r);
      if (results.length % 500 === 0) console.error(`${results.length} cases, ${((performance.now() - started) / 1000).toFixed(0)} s`);
    }
  }));
  runners.forEach((r) => r.stop());
  rmSync(join(OUT, "work"), { recursive: true, force: true });
  report(results, (performance.now() - started) / 1000);
  process.exitCode = results.some((r) => BROKEN.has(r.kind)) ? 1 : 0;
}

/** Moves a broken case's folder to failures/, with what happened. */
function keep(r: Result): void {
  const from = caseDir(r.id);
  if (!existsSync(join(from, "case.json"))) return;
  const caseJson = JSON.parse(readFileSync(join(from, "case.json"), "utf8"));
  const to = join(OUT, "failures", `${r.kind}-${caseJson.reader}-${r.id}`);
  rmSync(to, { recursive: true, force: true });
  renameSync(from, to);
  writeFileSync(join(to, "case.json"), JSON.stringify({ ...caseJson, kind: r.kind, detail: r.detail }, null, 1));
  r.reader = caseJson.reader;
}

function report(results: Result[], seconds: number): void {
  const readers = [...new Set(results.map((r) => r.reader))].sort();
  console.log(`${results.length} cases, seed ${SEED}, ${seconds.toFixed(0)} s, ${JOBS} jobs, deadline ${TIMEOUT} ms, memory ceiling ${MEMORY / 2 ** 20} MiB\n`);
  console.log(`| reader | ${KINDS.join(" | ")} |\n|---|${KINDS.map(() => "---:").join("|")}|`);
  for (const reader of [...readers, "all"]) {
    const rows = results.filter((r) => reader === "all" || r.reader === reader);
    console.log(`| ${reader} | ${KINDS.map((k) => rows.filter((r) => r.kind === k).length).join(" | ")} |`);
  }
  const broken = new Map<string, number>();
  for (const r of results.filter((r) => BROKEN.has(r.kind))) {
    const key = `${r.kind} ${r.reader}: ${signature(r.detail)}`;
    broken.set(key, (broken.get(key) ?? 0) + 1);
  }
  if (broken.size) {
    console.log(`\nbroken promises by kind (reproducers in ${join(OUT, "failures")}):`);
    for (const [key, n] of [...broken].sort((a, b) => b[1] - a[1])) console.log(`${String(n).padStart(5)}  ${key}`);
  }
  const typed = new Map<string, number>();
  for (const r of results.filter((r) => r.kind === "typed")) {
    typed.set(signature(r.detail).replace(/^(\w+): .*?: /, "$1: "), (typed.get(signature(r.detail).replace(/^(\w+): .*?: /, "$1: ")) ?? 0) + 1);
  }
  console.log(`\n${typed.size} distinct typed errors; the commonest:`);
  for (const [key, n] of [...typed].sort((a, b) => b[1] - a[1]).slice(0, 12)) console.log(`${String(n).padStart(5)}  ${key}`);
}

/** Runs one kept case again here, printing what happened. */
async function replay(dir: string): Promise<void> {
  const c = JSON.parse(readFileSync(join(dir, "case.json"), "utf8")) as FuzzCase;
  const result = await exercise(c, dir);
  console.log(JSON.stringify({ mutations: c.mutations, ...result }, null, 1));
}

if (values.child) await child();
else if (values.replay) await replay(values.replay);
else await main();
