// Generate with bitnet-wasm on Node, as an npm user would (`npm install bitnet-wasm`).
// node examples/node/main.mjs [model] [prompt] [threads]
// The model defaults to the shared bitllama-3M; its tokenizer (tok512.bin) is found beside it.
import { loadBitNet } from "bitnet-wasm";

const [model = "../shared/data/models/bitllama-3M.bin", prompt = "Once upon a time", threads = "1"] = process.argv.slice(2);
const m = await loadBitNet(model, { threads: Number(threads) });
process.stdout.write(prompt);
let tokens = 0, first = 0;
for await (const { text } of m.generate(prompt, { maxTokens: 64, temperature: 0 })) {
  if (tokens++ === 0) first = performance.now();
  process.stdout.write(text);
}
const tokensPerSecond = ((tokens - 1) * 1000) / (performance.now() - first);
console.log(`\n-- ${tokens} tokens, ${tokensPerSecond.toFixed(1)} tok/s (node ${process.version}, ${m.simd} SIMD, ${m.threads} thread(s))`);
m.dispose();
