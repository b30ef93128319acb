// Runs every *.test.ts file with uvu in one process, under Node (via tsx), Deno or Bun,
// and ends with the plain summary line "N passed, N failed, N skipped".
//   tests/run.ts [--quick] [NAME...]   NAME: part of a test file name (default: every file)
// --quick leaves out the slow files listed in SLOW (npm run test:quick) and says which.
// A file that fails to load counts as one failed test; a skipped test (test.skip, as the
// helpers register a test whose data or tool is missing) counts as skipped, not passed.
import process from "node:process";
import { readdirSync } from "node:fs";

declare global {
  // uvu's hooks for running several files in one process (what its CLI sets).
  var UVU_DEFER: number;
  var UVU_INDEX: number;
  var UVU_QUEUE: [string | null, ...Array<() => Promise<[string, number, number, number]>>][];
}

globalThis.UVU_DEFER = 1;
globalThis.UVU_QUEUE = [];
/**
 * The files --quick leaves out (npm run test:quick: the rest runs in about 40 s under Node
 * on a 2-core machine): child processes (cli, examples, exit, faults, fuzz, package), external tools
 * (browser, worker, llamacpp), thread pools (threads), every shared model end to end
 * (digest), and files of 15 s or more each (tokenizer ~55 s, variants ~35 s, chat, bpe and
 * bindings ~15 s). The "slowest files" line at the end of every run shows where the time goes.
 */
const SLOW = ["bindings", "bpe", "browser", "chat", "cli", "digest", "examples", "exit", "faults", "fuzz", "llamacpp", "package", "threads", "tokenizer", "variants", "worker"];
const args = process.argv.slice(2);
const quick = args.includes("--quick");
const only = args.filter((a) => a !== "--quick");
const dir = new URL("./", import.meta.url);
const all = readdirSync(dir).filter((f) => f.endsWith(".test.ts") && (only.length === 0 || only.some((o) => f.includes(o)))).sort();
const left = quick ? all.filter((f) => SLOW.includes(f.slice(0, -".test.ts".length))) : [];
const files = all.filter((f) => !left.includes(f));

let passed = 0, failed = 0, skipped = 0;
const seconds = new Map<string, number>();
for (const [i, file] of files.entries()) {
  globalThis.UVU_INDEX = i;
  globalThis.UVU_QUEUE.push([file]);
  const start = performance.now();
  try {
    await import(new URL(file, dir).href);
  } catch (e) {
    // Counted, not fatal: the other files still run and the summary line still comes.
    console.log(`FAIL ${file} did not load: ${(e as Error)?.stack ?? e}`);
    failed++;
  }
  seconds.set(file, (performance.now() - start) / 1000);
}

// Count outcomes as uvu runs each suite. uvu's runner resolves to [errors, ran, skipped,
// total]: `total` is the tests registered to run (test.skip registers none, it only counts
// itself in `skipped`; under test.only, the others count as skipped), so the failures are
// total - ran. A `before` hook that throws fails the suite's tests (uvu drops its message);
// an `after` hook that throws rejects the run: one failure more.
for (const [i, group] of globalThis.UVU_QUEUE.entries()) {
  const file = files[i];
  for (let j = 1; j < group.length; j++) {
    const run = group[j] as () => Promise<[string | true, number, number, number]>;
    group[j] = async () => {
      const start = performance.now();
      try {
        const result = await run();
        const [, ran, skip, total] = result;
        passed += ran;
        skipped += skip;
        failed += total - ran;
        return result as [string, number, number, number];
      } catch (e) {
        failed++;
        return [`  FAIL a hook of a suite in ${file}: ${(e as Error)?.stack ?? e}\n`, 0, 0, 1];
      } finally {
        seconds.set(file, (seconds.get(file) ?? 0) + (performance.now() - start) / 1000);
      }
    };
  }
}
const { exec } = await import("uvu");
await exec();
const slowest = [...seconds].sort((a, b) => b[1] - a[1]).slice(0, 5).map(([f, s]) => `${f.slice(0, -".test.ts".length)} ${s.toFixed(1)} s`);
console.log(`slowest files: ${slowest.join(", ")}`);
if (left.length > 0) console.log(`--quick left out ${left.length} slow file(s): ${left.join(", ")}`);
console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(failed > 0 || files.length === 0 ? 1 : 0);
