// Correctness across engines on a real model: stories260K converted by our converter to a
// llama-architecture F32 GGUF with its SentencePiece vocabulary gives the same prompt tokens
// and the same 64 greedy tokens in llama.cpp (native, node-llama-cpp's prebuilt binary) as
// in ours. node-llama-cpp is not a project dependency (its optional CUDA builds weigh
// 0.5 GB): .ci/run installs it with its CPU binary only into .tools/llama. Node pass only.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { checkpointToGguf } from "../tools/convert.ts";
import { loadBitNet } from "../model/load.ts";
import { Llama2cTokenizer } from "../text/tokenizer/llama2c.ts";
import { loadKernels } from "../runtime/kernels.ts";
import { checkpointOf, needs, onlyUnder } from "./helpers.ts";

const test = suite("llamacpp");
const ENTRY = join(fileURLToPath(new URL("../", import.meta.url)), ".tools/llama/node_modules/node-llama-cpp/dist/index.js");
const LLAMA = { tool: "node-llama-cpp", available: existsSync(ENTRY), reason: `${ENTRY} is missing (.ci/run installs node-llama-cpp into .tools/llama)` };

needs(
  test,
  "stories260K as llama F32 GGUF: llama.cpp and bitnet-wasm give the same greedy tokens",
  { tools: [onlyUnder("node"), LLAMA], files: ["models/stories260K.bin", "models/tok512.bin"] },
  async (stories, tok512) => {
    const dir = mkdtempSync(join(tmpdir(), "llamacpp-"));
    try {
      const file = join(dir, "stories260K.gguf");
      const ckpt = await checkpointOf(stories, "stories260K.bin");
      const vocab = Llama2cTokenizer.fromBin(tok512, 512, "tok512.bin");
      writeFileSync(file, await checkpointToGguf(await loadKernels({ simd: "strict" }), ckpt, vocab, "gguf-f32"));

      const ours = await loadBitNet(file), prompt = "Once upon a time";
      const want: number[] = [];
      let promptTokens: number[];
      try {
        promptTokens = ours.tokenizer!.encode(prompt, { bos: true });
        for await (const { token } of ours.generate(prompt, { maxTokens: 64, temperature: 0 })) if (token >= 0) want.push(token);
      } finally {
        ours.dispose();
      }

      const { getLlama } = await import(pathToFileURL(ENTRY).href);
      const llama = await getLlama({ gpu: false, build: "never", logLevel: "error" });
      const model = await llama.loadModel({ modelPath: file });
      const context = await model.createContext({ contextSize: 512, threads: 1 });
      try {
        assert.equal([1, ...model.tokenize(prompt, false)], promptTokens, "the same prompt tokens (SentencePiece vocabulary carried into the GGUF)");
        const got: number[] = [];
        for await (const token of context.getSequence().evaluate(promptTokens, { temperature: 0 })) {
          if (token === 2 || got.push(token) >= want.length) break;
        }
        assert.equal(got, want);
        assert.is(got.length, 64);
      } finally {
        await context.dispose();
        await model.dispose();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);

test.run();
