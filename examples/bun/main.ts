// Generate with bitnet-wasm on Bun, as a user of the npm package would (`bun add bitnet-wasm`).
// bun examples/bun/main.ts [model] [prompt] [threads]
// The model defaults to the shared bitllama-3M; its tokenizer (tok512.bin) is found beside it.
import { loadBitNet } from "bitnet-wasm";

const [model = "../shared/data/models/bitllama-3M.bin", prompt = "Once upon a time", threads = "1"] = Bun.argv.slice(2);
const m = await loadBitNet(model, { threads: Number(threads) });
const out = Bun.stdout.writer();
out.write(prompt);
let tokens = 0, first = 0;
for await (const { text } of m.generate(prompt, { maxTokens: 64, temperature: 0 })) {
  if (tokens++ === 0) first = performance.now();
  out.write(text);
}
const tokensPerSecond = ((tokens - 1) * 1000) / (performance.now() - first);
out.write(`\n-- ${tokens} tokens, ${tokensPerSecond.toFixed(1)} tok/s (bun ${Bun.version}, ${m.simd} SIMD, ${m.threads} thread(s))\n`);
await out.flush();
m.dispose();
