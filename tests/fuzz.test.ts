// The fuzzer's smoke run (issue 15): 2,000 seeded cases over every reader and the caller's
// arguments, each in a child process of this runtime with a deadline and a memory ceiling;
// every case must end ok or with a typed error. A broken promise fails the test and leaves
// its reproducer folder (see eval/fuzz.ts --replay) in the run's output folder, named here.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { spawnSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { SEED_FILES } from "../eval/fuzz/seeds.ts";
import { withData } from "./helpers.ts";

const test = suite("fuzz");
const FUZZ = fileURLToPath(new URL("../eval/fuzz.ts", import.meta.url));
declare const Deno: unknown;
const runtime = typeof Deno !== "undefined" ? ["run", "-A"] : process.versions.bun ? [] : ["--import", "tsx"];

withData(test, "2,000 seeded fuzz cases over every reader: none untyped, silent, crashed, hung or over the memory ceiling", SEED_FILES, () => {
  const out = mkdtempSync(join(tmpdir(), "bitnet-fuzz-"));
  const r = spawnSync(process.execPath, [...runtime, FUZZ, "--cases", "2000", "--seed", "1", "--out", out], { encoding: "utf8", env: { ...process.env, NO_COLOR: "1" } });
  const all = /^\| all \| (\d+) \| (\d+) \| (\d+) \| (\d+) \| (\d+) \| (\d+) \| (\d+) \| (\d+) \|$/m.exec(r.stdout);
  assert.ok(all, `no table from the fuzzer (exit ${r.status}): ${r.stdout.slice(-500)} ${r.stderr.slice(-1500)}`);
  const [ok, typed, untyped, silent, crash, hang, memory] = all.slice(1).map(Number);
  assert.is(ok + typed + untyped + silent + crash + hang + memory + Number(all[8]), 2000, "every case counted");
  assert.equal(
    { untyped, silent, crash, hang, memory },
    { untyped: 0, silent: 0, crash: 0, hang: 0, memory: 0 },
    `broken promises (reproducers in ${out}/failures):\n${r.stdout.slice(r.stdout.indexOf("broken"))}`,
  );
  assert.ok(ok > 100 && typed > 1000, `both outcomes occur: ${ok} ok, ${typed} typed`);
  assert.is(r.status, 0);
});

test.run();
