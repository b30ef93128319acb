// The browser example, a chat page. The model (a hub id, read through the OPFS cache; a URL,
// read by HTTP ranges; or a picked file, read by slices) loads and runs in a Web Worker
// (loadBitNetInWorker), so this thread only paints: per-file progress in MB and %, the reply
// as it streams, Stop (an AbortSignal), New chat (the session reset), the cached models with their sizes and a delete button.
// Models with a chat template chat; others continue the text they are given.
// Query parameters fill the form and drive the page in tests:
//   ?model=hf:ORG/REPO|URL&tokenizer=URL&hubEndpoint=URL&threads=N&maxTokens=N&temperature=T&prompt=TEXT&autorun=1
// autorun loads the model, then sends the prompt. Each reply carries data-tokens (so far) and
// data-done="true" with data-finish (its finish reason) at the end.
import { deleteCachedModel, listCachedModels, loadBitNetInWorker } from "bitnet-wasm";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const FIELDS = {
  model: "model-text",
  tokenizer: "tokenizer-text",
  hubEndpoint: "hub-endpoint",
  threads: "threads",
  maxTokens: "max-tokens",
  temperature: "temperature",
  prompt: "message",
};
for (const [param, id] of Object.entries(FIELDS)) if (params.has(param)) $(id).value = params.get(param);

let model = null, session = null, stopping = null;

const mb = (bytes) => (bytes < 1e5 ? `${(bytes / 1e3).toFixed(1)} kB` : `${(bytes / 1e6).toFixed(1)} MB`);

function say(text, error = false) {
  $("status").textContent = text;
  $("status").dataset.error = String(error);
}

/** An error as a sentence a user can act on. */
function explain(e) {
  if (e.name === "HubError" && (e.status === 401 || e.status === 403)) {
    return e.status === 401 || !$("access-token").value
      ? `${e.id} is gated or private: give an access token (settings) of a Hugging Face account that has accepted its terms.`
      : `The access token may not read ${e.id}: check that its account has accepted the repo's terms on the hub.`;
  }
  if (e.name === "HubError" && e.status === 404) return `The hub has no such model or file: ${e.message}. Check the id (hf:ORG/REPO, hf:ORG/REPO/FILE.gguf).`;
  if (/cannot fetch|Failed to fetch|NetworkError/.test(e.message)) {
    return `Could not reach the server: ${e.message}. Check the address, and that the server allows this page (CORS).`;
  }
  if (e.name === "AbortError") return "Stopped.";
  return `${e.message}.`.replace(/\.\.$/, ".");
}

/** A hub id ("hf:ORG/REPO", also given as plain "ORG/REPO"), a URL (relative to this page), or a picked file. */
function sourceOf(fileId, textId) {
  const file = $(fileId).files[0];
  if (file) return file;
  const text = $(textId).value.trim();
  if (!text) return undefined;
  if (text.startsWith("hf:")) return text;
  if (/^[\w.-]+\/[\w.-]+$/.test(text) && !/\.(bin|gguf|json|safetensors)$/.test(text)) return `hf:${text}`;
  return new URL(text, location.href).href;
}

const PHASES = { download: "downloading", read: "reading", weights: "preparing weights" };

/** One row per file and phase: a bar, MB and %. */
function showProgress({ phase, file, loaded, total }) {
  const key = `${phase}:${file ?? ""}`;
  let row = [...$("files").children].find((r) => r.dataset.key === key);
  if (!row) {
    row = document.createElement("div");
    row.className = "file";
    row.dataset.key = key;
    row.innerHTML = "<span></span><progress max='1' value='0'></progress><span></span>";
    row.children[0].textContent = `${PHASES[phase] ?? phase} ${file ?? ""}`;
    $("files").append(row);
  }
  row.children[1].value = total ? loaded / total : 0;
  const amount = (n) => (phase === "weights" ? String(n) : mb(n));
  row.children[2].textContent = total ? `${amount(loaded)} / ${amount(total)}${phase === "weights" ? " tensors" : ` (${Math.round((100 * loaded) / total)}%)`}` : amount(loaded);
}

function settings() {
  const hubEndpoint = $("hub-endpoint").value.trim(), accessToken = $("access-token").value.trim();
  return { threads: Number($("threads").value), ...(hubEndpoint ? { hubEndpoint } : {}), ...(accessToken ? { accessToken } : {}) };
}

async function load() {
  const source = sourceOf("model-file", "model-text");
  if (!source) return say("Give a model: a hub id (hf:ORG/REPO), a URL, or pick a model file.", true);
  model?.dispose();
  model = session = null;
  $("send").disabled = $("new-chat").disabled = $("load").disabled = true;
  $("files").textContent = "";
  $("messages").textContent = "";
  say("Loading...");
  try {
    const tokenizer = sourceOf("tokenizer-file", "tokenizer-text");
    model = await loadBitNetInWorker(source, { ...settings(), ...(tokenizer ? { tokenizer } : {}), onProgress: showProgress });
    session = model.createSession();
    const { dim, nLayers, vocabSize } = model.config;
    const mode = model.chatTemplate ? "it chats" : "it has no chat template, so it continues the text you send";
    say(`Loaded ${model.source}: ${nLayers} layers of width ${dim}, ${vocabSize} tokens, ${model.simd} SIMD on ${model.threads} thread(s); ${mode}.`);
    $("send").disabled = $("new-chat").disabled = false;
  } catch (e) {
    model = null;
    say(explain(e), true);
  } finally {
    $("load").disabled = false;
    void showCache();
  }
}

function bubble(kind, text) {
  const div = document.createElement("div");
  div.className = `message ${kind}`;
  div.textContent = text;
  $("messages").append(div);
  return div;
}

async function send() {
  const text = $("message").value;
  if (!session || stopping) return;
  bubble("user", text);
  const reply = bubble("model", "");
  reply.dataset.tokens = "0";
  const controller = new AbortController();
  stopping = controller;
  $("send").disabled = true;
  $("stop").disabled = false;
  const options = { maxTokens: Number($("max-tokens").value), temperature: Number($("temperature").value), signal: controller.signal };
  const stream = model.chatTemplate ? session.chatStream(text, options) : session.generate(text, options);
  let tokens = 0, first = 0;
  try {
    for (;;) {
      const step = await stream.next();
      if (step.done) {
        reply.dataset.finish = step.value.finishReason;
        break;
      }
      if (tokens++ === 0) first = performance.now();
      reply.textContent += step.value.text;
      reply.dataset.tokens = String(tokens);
    }
    const speed = tokens > 1 ? ` at ${(((tokens - 1) * 1000) / (performance.now() - first)).toFixed(1)} tok/s` : "";
    say(
      `${
        reply.dataset.finish === "abort" ? "Stopped after " : ""
      }${tokens} tokens${speed} (${model.simd} SIMD, ${model.threads} thread(s), cross-origin isolated: ${crossOriginIsolated}).`,
    );
  } catch (e) {
    reply.dataset.finish = "error";
    say(explain(e), true);
  } finally {
    reply.dataset.done = "true";
    stopping = null;
    $("send").disabled = !session;
    $("stop").disabled = true;
  }
}

async function showCache() {
  const list = $("cached");
  try {
    const models = await listCachedModels();
    list.textContent = "";
    if (models.length === 0) list.textContent = "None yet: models loaded by hub id are kept here.";
    for (const m of models) {
      const li = document.createElement("li");
      const partly = m.partialBytes ? `, ${mb(m.partialBytes)} of it an unfinished download` : "";
      li.textContent = `${m.id}${m.refs.length ? ` (${m.refs.join(", ")})` : ""}: ${m.files.length} file(s), ${mb(m.size)}${partly}`;
      li.dataset.id = m.id;
      const remove = document.createElement("button");
      remove.textContent = "Delete";
      remove.addEventListener("click", async () => {
        try {
          const freed = await deleteCachedModel(`hf:${m.repo}@${m.commit}`);
          say(`Deleted ${m.id}: ${mb(freed)} freed.`);
        } catch (e) {
          say(explain(e), true);
        }
        void showCache();
      });
      li.append(remove);
      list.append(li);
    }
  } catch (e) {
    list.textContent = `The cache cannot be read here: ${explain(e)}`;
  }
}

$("load-form").addEventListener("submit", (e) => {
  e.preventDefault();
  void load();
});
$("compose").addEventListener("submit", (e) => {
  e.preventDefault();
  void send();
});
$("stop").addEventListener("click", () => {
  stopping?.abort();
  $("stop").dataset.tokensAtClick = $("messages").lastElementChild?.dataset.tokens ?? "";
});
$("new-chat").addEventListener("click", async () => {
  stopping?.abort();
  await session?.reset();
  $("messages").textContent = "";
});
void showCache();
if (params.get("autorun") === "1") void load().then(() => (session ? send() : undefined));
