// Generate with bitnet-wasm on Deno, imported from JSR as deno.json here maps it
// ("@bitnet/wasm": "jsr:@bitnet/wasm@^0.1.0"; inside this repository the workspace resolves
// that to the local package).
// deno run --allow-read --allow-env examples/deno/main.ts [model] [prompt] [threads]
// The model defaults to the shared bitllama-3M; its tokenizer (tok512.bin) is found beside it.
import { loadBitNet } from "@bitnet/wasm";

const [model = "../shared/data/models/bitllama-3M.bin", prompt = "Once upon a time", threads = "1"] = Deno.args;
const m = await loadBitNet(model, { threads: Number(threads) });
const encoder = new TextEncoder(), write = (text: string) => Deno.stdout.writeSync(encoder.encode(text));
write(prompt);
let tokens = 0, first = 0;
for await (const { text } of m.generate(prompt, { maxTokens: 64, temperature: 0 })) {
  if (tokens++ === 0) first = performance.now();
  write(text);
}
const tokensPerSecond = ((tokens - 1) * 1000) / (performance.now() - first);
write(`\n-- ${tokens} tokens, ${tokensPerSecond.toFixed(1)} tok/s (deno ${Deno.version.deno}, ${m.simd} SIMD, ${m.threads} thread(s))\n`);
m.dispose();
