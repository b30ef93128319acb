// Runs every *.test.ts file with uvu in one process, under Node (via tsx), Deno or Bun,
// and ends with the plain summary line "N passed, N failed, N skipped".
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
const only = process.argv.slice(2);
const dir = new URL("./", import.meta.url);
const files = readdirSync(dir).filter((f) => f.endsWith(".test.ts") && (only.length === 0 || only.some((o) => f.includes(o)))).sort();
for (const [i, file] of files.entries()) {
  globalThis.UVU_INDEX = i;
  globalThis.UVU_QUEUE.push([file]);
  await import(new URL(file, dir).href);
}

// Count outcomes as uvu runs each suite: [errors, ran, skipped, total].
let passed = 0, failed = 0, skipped = 0;
for (const group of globalThis.UVU_QUEUE) {
  for (let i = 1; i < group.length; i++) {
    const run = group[i] as () => Promise<[string, number, number, number]>;
    group[i] = async () => {
      const result = await run();
      const [, ran, skip, total] = result;
      passed += ran;
      skipped += skip;
      failed += total - ran - skip;
      return result;
    };
  }
}
const { exec } = await import("uvu");
await exec();
console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(failed > 0 || files.length === 0 ? 1 : 0);
