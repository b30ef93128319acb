// The browser example: load a model from a picked file (a File, read piece by piece: never
// whole in memory) or a URL (by HTTP ranges), with a progress bar,
// stream the generated text into the page and show tok/s. Query parameters fill the form
// (?model=URL&tokenizer=URL&prompt=...&maxTokens=N&threads=N&autorun=1), which is how the
// test drives it; #output then carries data-done="true" and the status line the speed.
import { loadBitNet } from "bitnet-wasm";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const fields = { model: "model-url", tokenizer: "tokenizer-url", prompt: "prompt", maxTokens: "max-tokens", threads: "threads", temperature: "temperature" };
for (const [param, id] of Object.entries(fields)) if (params.has(param)) $(id).value = params.get(param);

const source = (fileId, urlId) => $(fileId).files[0] ?? ($(urlId).value ? new URL($(urlId).value, location.href).href : undefined);

async function run() {
  const model = source("model-file", "model-url");
  if (!model) return void ($("status").textContent = "Pick a model file or give its URL.");
  const tokenizer = source("tokenizer-file", "tokenizer-url");
  const output = $("output"), status = $("status"), progress = $("progress");
  output.textContent = "";
  output.dataset.done = "false";
  status.textContent = "Loading...";
  try {
    const m = await loadBitNet(model, {
      tokenizer,
      threads: Number($("threads").value),
      onProgress: ({ phase, loaded, total }) => {
        progress.value = total ? loaded / total : 0;
        status.textContent = `${phase === "read" ? "Reading" : "Loading layers"}: ${loaded} / ${total ?? "?"}`;
      },
    });
    const prompt = $("prompt").value;
    output.textContent = prompt;
    let tokens = 0, first = 0, painted = performance.now();
    for await (const { text } of m.generate(prompt, { maxTokens: Number($("max-tokens").value), temperature: Number($("temperature").value) })) {
      if (tokens++ === 0) first = performance.now();
      output.textContent += text;
      // Generation runs on this thread: let the page paint the text now and then.
      if (performance.now() - painted > 50) {
        await new Promise((resolve) => setTimeout(resolve));
        painted = performance.now();
      }
    }
    const speed = ((tokens - 1) * 1000) / (performance.now() - first);
    status.textContent = `${tokens} tokens, ${speed.toFixed(1)} tok/s (${m.simd} SIMD, ${m.threads} thread(s), cross-origin isolated: ${crossOriginIsolated})`;
    m.dispose();
  } catch (e) {
    status.textContent = `Error: ${e.message}`;
  }
  output.dataset.done = "true";
}

$("form").addEventListener("submit", (e) => {
  e.preventDefault();
  void run();
});
if (params.get("autorun") === "1") void run();
