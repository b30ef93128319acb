// Fault injection (issue 15): model URLs served from 127.0.0.1 by a server that misbehaves on
// purpose (stalls, resets, lies about lengths, ignores Range mid-file, fails a later request),
// kernel worker threads that are terminated, die holding a chunk or trap, and a sweep killed with
// SIGKILL and run again. Every fault settles within a deadline: a typed error naming the URL (or
// the model) and what was expected, or, for a worker lost between jobs, the right tokens; never a
// hang, a raw TypeError or a model loaded from bytes it did not get.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { BitNetError, FormatError, OptionError } from "../core/errors.ts";
import { loadBitNet } from "../model/load.ts";
import type { BitNetModel } from "../model/model.ts";
import { DEFAULT_STALL_TIMEOUT_MS, openFile, type RandomAccessFile } from "../runtime/files.ts";
import { nodeThreads } from "../runtime/node.ts";
import { useThreadStarter } from "../runtime/spawn-thread.ts";
import type { ThreadHandle } from "../runtime/threads.ts";
import { readSweepRecord, runSweep, type SweepResult } from "../eval/sweep.ts";
import { dataPath, needs, onlyUnder, rejects, withData } from "./helpers.ts";

const test = suite("faults");
const MODEL = "models/bitllama-1M.bin", TOK = "models/tok512.bin";
/** Generous: every fault here settles in well under a second, or in a stall limit of STALL ms (the pool's, about 2 s). */
const DEADLINE = 10_000;
const STALL = 300;
type ErrorClass = abstract new (...args: never[]) => Error;

/** `promise`, which must settle within `ms` (an assertion: a hang fails the test instead of holding the run). */
async function settles<T>(promise: Promise<T>, what: string, ms = DEADLINE): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) =>
    timer = setTimeout(() => reject(new assert.Assertion({ message: `${what} did not settle within ${ms} ms`, operator: "settles", expects: "settled", actual: "pending" })), ms)
  );
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** Asserts that `promise` rejects within the deadline with a BitNetError (or `type`) naming `url` and matching `pattern`. */
async function failsNaming(promise: Promise<unknown>, url: string, pattern: RegExp, what: string, type: ErrorClass = BitNetError): Promise<Error> {
  const e = await settles(rejects(promise, type, pattern), what);
  assert.ok(e.message.includes(url), `${what}: the error names ${url}: ${e.message}`);
  return e;
}

async function greedy(model: BitNetModel, onPiece?: (i: number) => void): Promise<string> {
  let text = "", i = 0;
  for await (const piece of model.generate("Once", { temperature: 0, maxTokens: 20 })) {
    text += piece.text;
    onPiece?.(i++);
  }
  return text;
}

/** Reads a file whole, in 64 KiB reads (Range requests, for a URL whose server honours them). */
async function readAll(file: RandomAccessFile): Promise<void> {
  for (let at = 0; at < file.size; at += 65536) await file.read(at, Math.min(65536, file.size - at));
}

type Range = { start: number; end: number }; // bytes [start, end], as in a Range header
/**
 * How a test server misbehaves. `whole`: it answers every request (the Range probe included)
 * itself, as a server that ignores Range would. Else it honours Range, but `mid` answers every
 * ranged request from a third of the file on, of more than 1000 bytes: the middle of a load.
 */
interface Fault {
  whole?: (res: ServerResponse, req: IncomingMessage) => void;
  mid?: (res: ServerResponse, range: Range) => void;
}

/** Serves `model` on 127.0.0.1 with `fault`; runs `body` with the model's URL, then drops every connection (stalled ones too) and stops. */
async function serving(model: Uint8Array, fault: Fault, body: (url: string) => Promise<void>): Promise<void> {
  const open = new Set<ServerResponse>();
  const server = createServer((req, res) => {
    open.add(res);
    res.on("close", () => open.delete(res));
    if (fault.whole) return fault.whole(res, req);
    const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? "");
    if (!m) return res.writeHead(200, { "content-length": String(model.length) }).end(model);
    const range = { start: Number(m[1]), end: Math.min(Number(m[2]), model.length - 1) };
    if (fault.mid && range.start >= model.length / 3 && range.end - range.start > 1000) return fault.mid(res, range);
    res.writeHead(206, { "content-range": `bytes ${range.start}-${range.end}/${model.length}`, "content-length": String(range.end + 1 - range.start) });
    res.end(model.subarray(range.start, range.end + 1));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  try {
    await body(`http://127.0.0.1:${(server.address() as AddressInfo).port}/bitllama-1M.bin`);
  } finally {
    for (const res of open) res.destroy();
    server.close();
  }
}

/** Both ways a URL is read: loadBitNet (the tokenizer a path), and openFile then every byte. */
async function bothFail(url: string, pattern: RegExp, type: ErrorClass = BitNetError): Promise<void> {
  await failsNaming(loadBitNet(url, { tokenizer: dataPath(TOK), simd: "strict" }), url, pattern, "loadBitNet", type);
  await failsNaming(openFile(url).then(readAll), url, pattern, "openFile", type);
}

/** A 206 head for `range` of a `size`-byte file (the honest one unless told otherwise). */
function head206(res: ServerResponse, size: number, range: Range, headers: Record<string, string> = {}): ServerResponse {
  return res.writeHead(206, { "content-range": `bytes ${range.start}-${range.end}/${size}`, "content-length": String(range.end + 1 - range.start), ...headers });
}

// (a) Stalls: headers and some bytes, then nothing (or no answer at all). Only a read timeout ends those.
withData(test, "a server that stalls (mid-body, mid-file after honouring Range, or before answering) fails within stallTimeoutMs, naming the URL", [MODEL], async (model) => {
  assert.is(DEFAULT_STALL_TIMEOUT_MS, 30_000, "a finite default stall limit");
  const stalls: [string, Fault, RegExp][] = [
    ["mid-body", {
      whole: (res) => {
        res.writeHead(200, { "content-length": String(model.length) });
        res.write(model.subarray(0, 200_000));
      },
    }, new RegExp(`no bytes after 200000 of ${model.length} bytes within ${STALL} ms \\(stalled transfer`)],
    ["mid-file", {
      mid: (res, range) => {
        head206(res, model.length, range);
        res.write(model.subarray(range.start, range.start + 10));
      },
    }, new RegExp(`no bytes after 10 of the \\d+ bytes of a Range request for bytes \\d+\\.\\.\\d+ within ${STALL} ms`)],
    ["before answering", { whole: () => {} }, new RegExp(`no response within ${STALL} ms`)],
  ];
  for (const [what, fault, pattern] of stalls) {
    await serving(model, fault, async (url) => {
      const start = performance.now();
      await failsNaming(openFile(url, { stallTimeoutMs: STALL }).then(readAll), url, pattern, `a stall ${what}`);
      assert.ok(performance.now() - start < STALL * 10, `a stall ${what} ends at its limit`);
    });
  }
  // The caller's signal still ends a stalled read at once, with its own reason; a bad limit is an OptionError.
  await serving(model, stalls[0][1], async (url) => {
    const controller = new AbortController(), reason = new Error("stop reading");
    setTimeout(() => controller.abort(reason), 50);
    assert.is(await settles(rejects(openFile(url, { signal: controller.signal }), Error, /^stop reading$/), "an abort"), reason);
  });
  for (const bad of [0, -1, Number.NaN, 2 ** 31, "5"]) {
    await rejects(
      openFile(new Uint8Array(4), { stallTimeoutMs: bad as number }),
      OptionError,
      /option stallTimeoutMs: expected a number of milliseconds from 1 to 2147483647, or Infinity/,
    );
  }
});

withData(test, "loadBitNet of a stalled URL fails within its stallTimeoutMs, naming the URL, and returns no model", [MODEL], async (model) => {
  await serving(model, { mid: (res, range) => head206(res, model.length, range) }, async (url) => {
    await failsNaming(
      loadBitNet(url, { tokenizer: dataPath(TOK), simd: "strict", stallTimeoutMs: STALL }),
      url,
      /stalled transfer/,
      "loadBitNet",
    );
  });
});

// (b) Connection resets.
withData(test, "a server that resets the connection mid-body or mid-file fails at once, naming the URL", [MODEL], async (model) => {
  const reset = (res: ServerResponse, bytes: Uint8Array) => {
    res.write(bytes);
    setTimeout(() => res.destroy(), 20);
  };
  await serving(model, {
    whole: (res) => {
      res.writeHead(200, { "content-length": String(model.length) });
      reset(res, model.subarray(0, 200_000));
    },
  }, (url) => bothFail(url, new RegExp(`transfer failed after 200000 of ${model.length} bytes`)));
  await serving(model, {
    mid: (res, range) => {
      head206(res, model.length, range);
      reset(res, model.subarray(range.start, range.start + 10));
    },
  }, (url) => bothFail(url, /transfer failed after 10 of \d+ bytes/));
});

// (c) Content-Length lies.
withData(test, "a server that announces more bytes than it sends, or fewer, fails naming the URL (a stall once all it sent is in)", [MODEL], async (model) => {
  const N = model.length;
  // More, the connection kept open: every byte it has arrives, then silence.
  await serving(model, { whole: (res) => res.writeHead(200, { "content-length": String(N + 1000) }).end(model) }, async (url) => {
    await failsNaming(openFile(url, { stallTimeoutMs: STALL }).then(readAll), url, new RegExp(`no bytes after ${N} of ${N + 1000} bytes`), "more, kept open");
  });
  // More, then the connection closes.
  await serving(model, {
    whole: (res) => {
      res.writeHead(200, { "content-length": String(N + 1000) });
      res.write(model);
      setTimeout(() => res.destroy(), 20);
    },
  }, (url) => bothFail(url, new RegExp(`transfer failed after ${N} of ${N + 1000} bytes|${N} bytes arrived, ${N + 1000} were announced`)));
  // Fewer: the client takes the announced length (all a file can know), and the model is short of what its header says.
  await serving(model, { whole: (res) => res.writeHead(200, { "content-length": String(N - 1000) }).end(model) }, async (url) => {
    const e = `size ${N - 1000} does not match the header .*expected ${N} bytes`;
    await failsNaming(loadBitNet(url, { tokenizer: dataPath(TOK), simd: "strict" }), url, new RegExp(e), "loadBitNet", FormatError);
    assert.is((await settles(openFile(url), "openFile")).size, N - 1000);
  });
  // A ranged answer announcing more or fewer bytes than the range asked for.
  for (const delta of [100, -100]) {
    await serving(model, {
      mid: (res, range) => head206(res, N, range, { "content-length": String(range.end + 1 - range.start + delta) }).end(model.subarray(range.start, range.end + 1)),
    }, (url) => bothFail(url, /the answer to a Range request for bytes \d+\.\.\d+ announces \d+ bytes \(content-length\), not \d+/));
  }
});

// (d) Range honoured for the probe, then ignored or answered wrongly mid-file.
withData(
  test,
  "a server that honours Range for the probe, then answers 200, the wrong Content-Range or the wrong length mid-file, fails naming the URL",
  [MODEL],
  async (model) => {
    const N = model.length;
    // The whole file instead of the range.
    await serving(
      model,
      { mid: (res) => res.writeHead(200, { "content-length": String(N) }).end(model) },
      (url) => bothFail(url, /HTTP 200 to a Range request for bytes \d+\.\.\d+/),
    );
    // Other bytes than those asked for, said so in Content-Range: 16 bytes on, inside the same
    // ternary matrix, so every 2-bit code is valid and only the header tells (this loaded a model with shifted weights).
    await serving(model, {
      mid: (res, { start, end }) => head206(res, N, { start: start + 16, end: end + 16 }).end(model.subarray(start + 16, end + 17)),
    }, (url) => bothFail(url, /has Content-Range "bytes \d+-\d+\/\d+", expected "bytes \d+-\d+\/558048"/));
    // The right Content-Range but fewer bytes (no content-length: chunked), or a shorter range said so.
    await serving(model, {
      mid: (res, range) => res.writeHead(206, { "content-range": `bytes ${range.start}-${range.end}/${N}` }).end(model.subarray(range.start, range.end - 99)),
    }, (url) => bothFail(url, /\d+ bytes arrived for a range of \d+ \(truncated transfer\)/));
    await serving(model, {
      mid: (res, range) => head206(res, N, { start: range.start, end: range.end - 100 }).end(model.subarray(range.start, range.end - 99)),
    }, (url) => bothFail(url, /has Content-Range "bytes \d+-\d+\/558048", expected/));
  },
);

// (e) A later Range request fails.
withData(test, "a server that answers 500 to a later Range request fails naming the URL and the status", [MODEL], async (model) => {
  await serving(model, { mid: (res) => res.writeHead(500).end("internal error") }, (url) => bothFail(url, /HTTP 500 to a Range request for bytes \d+\.\.\d+/));
});

/** Runs `body` with worker threads started by `spawn` (given the real starter), then puts the real starter back. */
async function withStarter(spawn: (url: URL, init: unknown) => Promise<ThreadHandle>, body: () => Promise<void>): Promise<void> {
  useThreadStarter({ spawn, coreCount: () => 2 });
  try {
    await body();
  } finally {
    useThreadStarter(nodeThreads);
  }
}

const loadThreaded = () => loadBitNet(dataPath(MODEL), { tokenizer: dataPath(TOK), threads: 2, simd: "strict" });

withData(
  test,
  "a kernel worker terminated from outside (between calls, or while tokens come) leaves generate giving the one-thread tokens, or failing typed",
  [MODEL, TOK],
  async () => {
    const want = await greedy(await loadBitNet(dataPath(MODEL), { tokenizer: dataPath(TOK), simd: "strict" }));
    const handles: ThreadHandle[] = [];
    await withStarter(async (url, init) => {
      const handle = await nodeThreads.spawn(url, init);
      handles.push(handle);
      return handle;
    }, async () => {
      for (const when of ["between calls", "while generating"]) {
        handles.length = 0;
        const model = await loadThreaded();
        try {
          assert.is(model.threads, 2);
          assert.is(await settles(greedy(model), "generate on 2 threads"), want);
          if (when === "between calls") handles[0].terminate();
          for (let call = 0; call < 3; call++) {
            const run = greedy(model, (i) => call === 0 && i === 3 && when === "while generating" && handles[0].terminate());
            const got = await settles(run.catch((e) => e), `generate ${call + 1} after the worker was terminated ${when}`);
            if (got instanceof Error) assert.ok(got instanceof BitNetError && /kernel worker thread stopped/.test(got.message), `a typed error: ${got}`);
            else assert.is(got, want, `generate ${call + 1}, the worker terminated ${when}`);
          }
        } finally {
          model.dispose();
        }
      }
    });
  },
);

const FAULT_WORKER = new URL("./fault-worker.js", import.meta.url);

/**
 * Generates until the fault worker strikes (it must win a chunk from the calling thread, which
 * often takes them all: up to 100 calls); returns the error. Calls before it give the right tokens.
 */
async function untilFault(model: BitNetModel, want: string): Promise<Error> {
  for (let call = 0; call < 100; call++) {
    const got = await settles(greedy(model).catch((e: Error) => e), `generate ${call + 1} with a failing worker`);
    if (got instanceof Error) return got;
    assert.is(got, want, "a call the failing worker took no part in");
  }
  throw new assert.Assertion({ message: "the failing worker never claimed a chunk in 100 calls", operator: "fault", expects: "a failed call", actual: "100 good ones" });
}

withData(test, "a kernel worker that dies holding a chunk: that call fails typed within the deadline, and every later call fails the same way, at once", [MODEL, TOK], async () => {
  const want = await greedy(await loadBitNet(dataPath(MODEL), { tokenizer: dataPath(TOK), simd: "strict" }));
  await withStarter((_, init) => nodeThreads.spawn(FAULT_WORKER, { ...(init as object), fault: "exit" }), async () => {
    const model = await loadThreaded();
    try {
      const e = await untilFault(model, want);
      assert.ok(e instanceof BitNetError, `a BitNetError, got ${e}`);
      assert.match(e.message, /a kernel worker thread stopped in the middle of a job \(1 of its \d+ chunks of \w+ unfinished after \d+ ms/);
      assert.match(e.message, /dispose\(\) it and load it again/);
      for (let call = 0; call < 2; call++) {
        const start = performance.now();
        await settles(rejects(greedy(model), BitNetError, /kernel worker thread stopped in the middle of a job/), "a later call");
        assert.ok(performance.now() - start < 1000, "a later call fails at once");
      }
    } finally {
      model.dispose();
    }
  });
});

withData(test, "a kernel worker whose chunk traps: that call fails typed, and later calls give the right tokens", [MODEL, TOK], async () => {
  const want = await greedy(await loadBitNet(dataPath(MODEL), { tokenizer: dataPath(TOK), simd: "strict" }));
  await withStarter((_, init) => nodeThreads.spawn(FAULT_WORKER, { ...(init as object), fault: "trap" }), async () => {
    const model = await loadThreaded();
    try {
      const e = await untilFault(model, want);
      assert.ok(e instanceof BitNetError && /kernel \w+ trapped/.test(e.message), `a typed trap, got ${e}`);
      assert.is(await settles(greedy(model), "a call after the trap"), want);
    } finally {
      model.dispose();
    }
  });
});

// (3) Sweeps: the record, and the command killed with SIGKILL.
const VARIANTS = ["b1.58", "q-sparse:0.5", "a4.8"];

withData(test, "a sweep measures a variant named twice once; its record's last line cut short by a kill is dropped, a whole one kept", [
  MODEL,
  TOK,
  "text/tinystories-valid-32k.txt",
], async (_, __, text) => {
  const base = { model: dataPath(MODEL), text: new TextDecoder().decode(text).slice(0, 1500), textName: "t", ctx: 64, decodeTokens: 2, simd: "strict" as const };
  const recorded: SweepResult[] = [];
  const results = await runSweep({ ...base, variants: ["b1.58", "a4.8", "b1.58"], onResult: (r) => void recorded.push(r) });
  assert.equal(results.map((r) => r.variant), ["b1.58", "a4.8"]);
  assert.equal(recorded, results, "each variant recorded once");

  const dir = mkdtempSync(`${tmpdir()}/bitnet-faults-`), path = `${dir}/s.jsonl`;
  try {
    assert.equal(await readSweepRecord(path), [], "no record yet");
    const [one, two] = results.map((r) => JSON.stringify(r));
    writeFileSync(path, `${one}\n${two.slice(0, 50)}`); // killed while appending the second
    assert.equal(await readSweepRecord(path), [results[0]]);
    assert.is(readFileSync(path, "utf8"), `${one}\n`, "the cut line is gone, so the next append starts a line");
    writeFileSync(path, `${one}\n${two}`); // whole, without its newline
    assert.equal(await readSweepRecord(path), results);
    assert.is(readFileSync(path, "utf8"), `${one}\n${two}\n`);
    writeFileSync(path, `${one}\n${two}\n${one}\n`); // recorded twice: counts once
    assert.equal(await readSweepRecord(path), results);
    writeFileSync(path, `${one}\n{"model":\n${two}\n`); // anything else is not thrown away
    await rejects(readSweepRecord(path), BitNetError, /s\.jsonl: line 2 is not a sweep result/);
    writeFileSync(path, `${one}\n[1, 2]\n`);
    await rejects(readSweepRecord(path), BitNetError, /s\.jsonl: line 2 is not a sweep result/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

const CLI = fileURLToPath(new URL("../cli/bitnet-wasm.ts", import.meta.url));
const TSX = new URL("../node_modules/tsx/dist/esm/index.mjs", import.meta.url).href;

/** Runs the sweep command; `kill(stderr, rows)` is asked every few ms whether to SIGKILL it now. */
function sweepRun(args: string[], jsonl: string, kill?: (stderr: string, rows: number) => boolean): Promise<{ code: number | null; signal: string | null; stderr: string }> {
  return settles(
    new Promise((resolve) => {
      const child = spawn(process.execPath, ["--import", TSX, CLI, "sweep", ...args], { stdio: ["ignore", "ignore", "pipe"] });
      let stderr = "";
      child.stderr.on("data", (d) => stderr += d);
      const poll = kill && setInterval(() => kill(stderr, recordRows(jsonl).length) && child.kill("SIGKILL"), 2);
      child.on("exit", (code, signal) => {
        clearInterval(poll);
        resolve({ code, signal, stderr });
      });
    }),
    "a sweep run",
    60_000,
  );
}

const recordRows = (jsonl: string): string[] => existsSync(jsonl) ? readFileSync(jsonl, "utf8").split("\n").filter((l) => l.trim()) : [];
/** The variants on record, in order (a line that is not JSON fails naming the file's text). */
function recordVariants(jsonl: string): string[] {
  const rows = recordRows(jsonl);
  try {
    return rows.map((l) => JSON.parse(l).variant);
  } catch (e) {
    throw new assert.Assertion({ message: `${jsonl} holds a line that is not JSON (${e}): ${JSON.stringify(rows)}`, operator: "json", expects: "JSON lines", actual: rows });
  }
}

needs(test, "the sweep command killed with SIGKILL (between variants, early in one, after one's evaluation) resumes on a rerun: every variant once, in order", {
  tools: [onlyUnder("node")],
  files: [MODEL, TOK, "text/tinystories-valid-32k.txt"],
}, async (_, __, text) => {
  const dir = mkdtempSync(`${tmpdir()}/bitnet-faults-`);
  try {
    writeFileSync(`${dir}/text.txt`, new TextDecoder().decode(text).slice(0, 1500));
    /** The sweep command line of run `i` (its own record `s<i>.jsonl`). */
    const sweepArgs = (
      i: number,
    ) => [
      "--model",
      dataPath(MODEL),
      "--text",
      `${dir}/text.txt`,
      "--ctx",
      "64",
      "--variants",
      VARIANTS.join(","),
      "--out",
      `${dir}/s${i}`,
      "--decode-tokens",
      "2",
      "--simd",
      "strict",
    ];
    const kills: [string, (stderr: string, rows: number) => boolean][] = [
      ["as the first row is written (between variants)", (_, rows) => rows >= 1],
      ["early in the first variant", (stderr) => stderr.includes("[1/3]")],
      ["after the second variant's evaluation, before its row", (stderr) => stderr.includes("[2/3]")],
    ];
    for (const [i, [when, kill]] of kills.entries()) {
      const jsonl = `${dir}/s${i}.jsonl`;
      const args = sweepArgs(i);
      const killed = await sweepRun(args, jsonl, kill);
      assert.is(killed.signal, "SIGKILL", `killed ${when}: ${killed.stderr}`);
      const kept = recordVariants(jsonl);
      assert.equal(kept, VARIANTS.slice(0, kept.length), `killed ${when}: the rows on record are whole and in order (stderr: ${killed.stderr})`);
      const rerun = await sweepRun(args, jsonl);
      assert.is(rerun.code, 0, rerun.stderr);
      assert.equal(recordVariants(jsonl), VARIANTS, `killed ${when}: after the rerun, every variant once (${kept.length} kept; stderr: ${rerun.stderr})`);
      for (const v of kept) assert.not.match(rerun.stderr, `${v}: `, `killed ${when}: the rerun did not measure ${v} again`);
      assert.is((await sweepRun(args, jsonl)).code, 0);
      assert.is(recordRows(jsonl).length, VARIANTS.length, `killed ${when}: a third run adds nothing`);
    }
    // Killed while appending a row (the file ends in part of a line): the rerun drops it and measures that variant again.
    const jsonl = `${dir}/s0.jsonl`, rows = recordRows(jsonl);
    writeFileSync(jsonl, rows.slice(0, 2).map((l) => l + "\n").join("") + rows[2].slice(0, 60));
    const rerun = await sweepRun(sweepArgs(0), jsonl);
    assert.is(rerun.code, 0, rerun.stderr);
    assert.equal(recordVariants(jsonl), VARIANTS, rerun.stderr);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
