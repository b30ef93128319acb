// An OpenAI-compatible Cloudflare Worker: POST /v1/chat/completions and /v1/completions
// (streamed with `stream: true`), GET /v1/models and /health, by bitnet-wasm's createHandler.
// Workers cannot compile WebAssembly from bytes, so the kernels come in as a compiled module
// (`import ... from "./kernels.wasm"`); the model and its tokenizer come in as bundled data
// modules (a fetch() of a URL works as well: `loadBitNet("https://...")`), and the chat
// template as a text module (llama2.c tokenizers carry none). Workers have no threads and
// 128 MB of memory: see README.md beside this file for the model sizes that fit.
import { createHandler, loadBitNet } from "bitnet-wasm";
import kernels from "./kernels.wasm";
import modelBytes from "./model.bin";
import tokenizerBytes from "./tokenizer.bin";
import chatTemplate from "./chat-template.jinja";

const MODEL_NAME = "bitllama-1M";

let handler; // a promise of the handler: the model is loaded once per isolate, reused by later requests

/** The handler, loading the model on the first call; a failed load is forgotten, so the next request retries. */
function load(env) {
  handler ??= loadBitNet(new Uint8Array(modelBytes), { tokenizer: new Uint8Array(tokenizerBytes), wasmModule: kernels, simd: "strict", chatTemplate })
    // One generation at a time (an isolate has one thread), a few waiting; past that, 503.
    .then((model) => createHandler({ [MODEL_NAME]: model }, { apiKey: env.API_KEY, parallel: 1, queue: 4 }))
    .catch((e) => {
      handler = undefined;
      throw e;
    });
  return handler;
}

export default {
  async fetch(request, env) {
    return (await load(env))(request);
  },
};
