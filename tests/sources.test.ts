// Model sources: a path, bytes in memory, and URLs served from 127.0.0.1 (no other network).
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { BitNetError, FormatError } from "../core/errors.ts";
import { loadBitNet } from "../model/load.ts";
import { PROGRESS_INTERVAL_MS } from "../runtime/progress.ts";
import type { BitNetModel } from "../model/model.ts";
import { dataPath, rejects, withData } from "./helpers.ts";

const test = suite("sources");

async function greedy(model: BitNetModel): Promise<string> {
  let text = "";
  for await (const piece of model.generate("Once", { temperature: 0, maxTokens: 20 })) text += piece.text;
  return text;
}

withData(test, "a path, a Uint8Array, an ArrayBuffer and an http URL on 127.0.0.1 load the same model", ["models/bitllama-1M.bin", "models/tok512.bin"], async (model, tok) => {
  const want = await greedy(await loadBitNet(dataPath("models/bitllama-1M.bin"), { tokenizer: dataPath("models/tok512.bin") }));
  assert.is(await greedy(await loadBitNet(model, { tokenizer: tok })), want);
  assert.is(await greedy(await loadBitNet(model.slice().buffer, { tokenizer: tok.slice().buffer })), want);
  const requests: string[] = [];
  const server = createServer((req, res) => {
    requests.push(req.url!);
    const body = req.url === "/model.bin" || req.url === "/bare/model.bin" ? model : req.url === "/tok512.bin" ? tok : null;
    res.writeHead(body ? 200 : 404).end(body ?? "not found");
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  try {
    assert.is(await greedy(await loadBitNet(`${base}/model.bin`, { tokenizer: new URL(`${base}/tok512.bin`) })), want);
    // Without the option, the tokenizer is looked for beside the model's URL: tokenizer.json (404), then tok512.bin.
    requests.length = 0;
    assert.is(await greedy(await loadBitNet(`${base}/model.bin`)), want);
    assert.equal(requests.filter((r) => r !== "/model.bin"), ["/tokenizer.json", "/tok512.bin"]);
    const bare = await loadBitNet(`${base}/bare/model.bin`).then(() => null, (e) => e);
    assert.ok(bare instanceof FormatError, String(bare));
    for (const name of ["tokenizer.json", "tok512.bin", "tokenizer.bin"]) assert.ok(bare.message.includes(`${base}/bare/${name} (HTTP 404)`), bare.message);
    await rejects(loadBitNet(`${base}/missing.bin`), BitNetError, /cannot fetch http:\/\/127\.0\.0\.1:\d+\/missing\.bin: HTTP 404/);
  } finally {
    server.close();
  }
});

withData(
  test,
  "a server that honours Range requests is read tensor by tensor, each byte about once, never whole",
  ["models/bitllama-3M.bin", "models/tok512.bin"],
  async (model, tok) => {
    const want = await greedy(await loadBitNet(model, { tokenizer: tok }));
    const ranges: [number, number][] = [];
    let cut = false;
    const server = createServer((req, res) => {
      const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? "");
      if (!m) return res.writeHead(200, { "content-length": String(model.length) }).end(model);
      const [start, end] = [Number(m[1]), Math.min(Number(m[2]), model.length - 1)];
      ranges.push([start, end + 1]);
      res.writeHead(206, { "content-range": `bytes ${start}-${end}/${model.length}`, "content-length": String(end + 1 - start) });
      if (cut && end - start > 4096) {
        res.write(model.subarray(start, start + 100));
        return res.destroy();
      }
      res.end(model.subarray(start, end + 1));
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/bitllama-3M.bin`;
    try {
      const events: number[] = [];
      const loaded = await loadBitNet(url, { tokenizer: tok, onProgress: (p) => p.phase === "read" && events.push(p.loaded) });
      assert.is(await greedy(loaded), want);
      const fetched = ranges.reduce((n, [a, b]) => n + (b - a), 0), largest = Math.max(...ranges.map(([a, b]) => b - a));
      assert.ok(largest < model.length / 2, `largest range ${largest} of ${model.length}`);
      assert.ok(fetched >= model.length - 1000 && fetched < model.length * 1.01, `fetched ${fetched} of ${model.length}`);
      assert.ok(events.at(-1)! >= model.length - 1000, "progress reaches the file's size");
      cut = true;
      const e = await loadBitNet(url, { tokenizer: tok }).then(() => null, (e) => e);
      assert.ok(e instanceof BitNetError && /transfer failed|truncated transfer|cannot fetch/.test(e.message) && e.message.includes(url), String(e));
    } finally {
      server.close();
    }
  },
);

withData(
  test,
  "a ReadableStream loads too; progress reports the read and every layer; abort and truncated transfers fail",
  ["models/bitllama-1M.bin", "models/tok512.bin"],
  async (model, tok) => {
    const want = await greedy(await loadBitNet(model, { tokenizer: tok }));
    const chunks = (bytes: Uint8Array, size: number) =>
      new ReadableStream<Uint8Array>({
        start(c) {
          for (let i = 0; i < bytes.length; i += size) c.enqueue(bytes.slice(i, i + size));
          c.close();
        },
      });
    const events: { phase: string; loaded: number; total?: number; at: number }[] = [];
    const streamed = await loadBitNet(chunks(model, 65536), { tokenizer: tok, onProgress: (p) => events.push({ ...p, at: performance.now() }) });
    assert.is(await greedy(streamed), want);
    // Per phase: the first event, then at most one per PROGRESS_INTERVAL_MS, growing, and the last at the total.
    for (const [phase, total] of [["read", model.length], ["weights", 8]] as const) {
      const seen = events.filter((e) => e.phase === phase);
      assert.ok(seen.length >= 1 && seen.length <= 1 + Math.ceil((seen.at(-1)!.at - seen[0].at) / PROGRESS_INTERVAL_MS), `${phase}: ${seen.length} events`);
      assert.ok(
        seen.every((e, i) => i === 0 || (e.loaded >= seen[i - 1].loaded && (e.at - seen[i - 1].at >= PROGRESS_INTERVAL_MS - 1 || e.loaded === total))),
        `${phase} events: ${JSON.stringify(seen)}`,
      );
      assert.is(seen.at(-1)!.loaded, total);
    }

    const server = createServer((req, res) => {
      if (req.url === "/short") {
        res.writeHead(200, { "content-length": String(model.length) });
        res.write(model.subarray(0, 1000));
        res.destroy(); // the connection drops before the announced length
        return;
      }
      res.writeHead(200, { "content-length": String(model.length) });
      res.end(model);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const urlEvents: number[] = [];
      await loadBitNet(`${base}/model.bin`, { tokenizer: tok, onProgress: (p) => p.phase === "read" && urlEvents.push(p.total ?? -1) });
      assert.ok(urlEvents.length > 0 && urlEvents.every((t) => t === model.length), "the URL's length is known from content-length");
      // A truncated transfer fails, naming the URL.
      await rejects(loadBitNet(`${base}/short`, { tokenizer: tok }), BitNetError, /127\.0\.0\.1:\d+\/short/);
      const controller = new AbortController();
      controller.abort(new Error("stop loading"));
      // An aborted load rejects with the signal's reason itself.
      const aborted = await rejects(loadBitNet(`${base}/model.bin`, { tokenizer: tok, signal: controller.signal }), Error, /^stop loading$/);
      assert.is(aborted, controller.signal.reason);
    } finally {
      server.close();
    }
  },
);

test.run();
