// Model sources: a path, bytes in memory, and URLs served from 127.0.0.1 (no other network).
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { BitNetError } from "../model/errors.ts";
import { loadBitNet } from "../model/load.ts";
import type { BitNetModel } from "../model/model.ts";
import { dataPath, withData } from "./helpers.ts";

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
  const server = createServer((req, res) => {
    const body = req.url === "/model.bin" ? model : req.url === "/tok512.bin" ? tok : null;
    res.writeHead(body ? 200 : 404).end(body ?? "not found");
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  try {
    assert.is(await greedy(await loadBitNet(`${base}/model.bin`, { tokenizer: new URL(`${base}/tok512.bin`) })), want);
    try {
      await loadBitNet(`${base}/missing.bin`);
      assert.unreachable("a 404 must fail");
    } catch (e) {
      assert.instance(e, BitNetError);
      assert.match((e as Error).message, /cannot fetch http:\/\/127\.0\.0\.1:\d+\/missing\.bin: HTTP 404/);
    }
  } finally {
    server.close();
  }
});

test.run();
