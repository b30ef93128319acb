// A Cloudflare Worker that streams a generation as its response:
//   GET /?prompt=Once%20upon%20a%20time&maxTokens=64&temperature=0
// Workers cannot compile WebAssembly from bytes, so the kernels come in as a compiled module
// (`import ... from "./kernels.wasm"`); the model and its tokenizer come in as bundled data
// modules here (a fetch() of a URL works as well: `loadBitNet("https://...")`). Workers have
// no threads and 128 MB of memory: see README.md beside this file for the model sizes that fit.
import { loadBitNet } from "bitnet-wasm";
import kernels from "./kernels.wasm";
import modelBytes from "./model.bin";
import tokenizerBytes from "./tokenizer.bin";

let model; // loaded once per isolate, reused by later requests

export default {
  async fetch(request) {
    const params = new URL(request.url).searchParams;
    model ??= await loadBitNet(new Uint8Array(modelBytes), { tokenizer: new Uint8Array(tokenizerBytes), wasmModule: kernels, simd: "strict" });
    const prompt = params.get("prompt") ?? "Once upon a time";
    const options = { maxTokens: Number(params.get("maxTokens") ?? 64), temperature: Number(params.get("temperature") ?? 0) };
    const encoder = new TextEncoder(), pieces = model.generate(prompt, options)[Symbol.asyncIterator]();
    // One token per pull: the response streams as the client reads it.
    const body = new ReadableStream({
      start(controller) {
        controller.enqueue(encoder.encode(prompt));
      },
      async pull(controller) {
        const { done, value } = await pieces.next();
        if (done) controller.close();
        else controller.enqueue(encoder.encode(value.text));
      },
    }, { highWaterMark: 0 });
    return new Response(body, { headers: { "content-type": "text/plain; charset=utf-8" } });
  },
};
