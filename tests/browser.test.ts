// The chat page (examples/browser) in headless Chromium (Debian's chromium, driven by
// playwright-core), served with COOP / COEP: the model runs in the page's worker
// (loadBitNetInWorker) on 2 threads. By URL it streams the greedy text Node generates; by hub
// id from the mock hub (tests/hub-mock.ts, another origin, CORS) it shows per-file progress,
// replies as Node does, never blocks the page's thread for more than 100 ms (long tasks seen
// by a PerformanceObserver from the first script on), stops within one token, loads again from
// OPFS without asking for the model's files, lists the cached model and deletes it, and says
// what to do when the repo is gated. Screenshots at load, mid-generation and of the error are
// kept in test-artifacts/browser/. Runs in the Node pass only (Playwright drives it from Node).
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { existsSync, mkdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { Page } from "playwright-core";
import { CHROMIUM, launchChromium } from "../eval/chromium.ts";
import { loadBitNet } from "../model/load.ts";
import { dataPath, needs, onlyUnder } from "./helpers.ts";
import { MockHub } from "./hub-mock.ts";

const test = suite("browser");
const CHROMIUM_TOOL = { tool: CHROMIUM, available: existsSync(CHROMIUM), reason: "apt-get install chromium (.ci/run installs it), or set CHROMIUM=/path/to/chromium" };
const TOOLS = [onlyUnder("node"), CHROMIUM_TOOL];
const ARTIFACTS = fileURLToPath(new URL("../test-artifacts/browser/", import.meta.url));
const COMMIT = "89abcdef0123456789abcdef0123456789abcdef";
const PROMPT = "Once upon a time";

/** What Node's session generates for `prompt` (the page sends it to a fresh session). */
async function nodeReply(model: string, prompt: string, maxTokens: number): Promise<string> {
  const m = await loadBitNet(dataPath(model), { tokenizer: dataPath("models/tok512.bin") });
  try {
    return (await m.createSession().prompt(prompt, { maxTokens, temperature: 0 }));
  } finally {
    m.dispose();
  }
}

/** The page at examples/browser/ with these query parameters, its errors collected, long tasks observed from the start. */
async function openPage(page: Page, base: string, query: Record<string, string>): Promise<string[]> {
  const errors: string[] = [];
  page.on("pageerror", (e) => errors.push(e.message));
  await page.addInitScript(() => {
    const w = window as unknown as { longTasks: number[] };
    w.longTasks = [];
    new PerformanceObserver((list) => list.getEntries().forEach((e) => w.longTasks.push(e.duration))).observe({ type: "longtask", buffered: true });
  });
  await page.goto(`${base}/examples/browser/?${new URLSearchParams(query)}`);
  return errors;
}

const lastReply = (page: Page) => page.locator("#messages .model").last();
const replyDone = (page: Page, n: number) => page.waitForSelector(`#messages .model:nth-of-type(${2 * n})[data-done="true"]`, { timeout: 90_000 });

async function withPage(fn: (page: Page, base: string) => Promise<void>) {
  // @ts-ignore: a plain JavaScript module without types
  const { serve } = await import("../examples/browser/serve.mjs");
  const server = await serve();
  const browser = await launchChromium();
  try {
    await fn(await browser.newPage(), server.url);
  } finally {
    await browser.close();
    server.close();
  }
}

needs(test, "by URL, then as picked files: the chat page streams Node's greedy text of bitllama-1M from its worker on 2 threads, cross-origin isolated", {
  tools: TOOLS,
  files: ["models/bitllama-1M.bin", "models/tok512.bin"],
}, async () => {
  const want = await nodeReply("models/bitllama-1M.bin", PROMPT, 64);
  await withPage(async (page, base) => {
    const errors = await openPage(page, base, {
      model: "/data/models/bitllama-1M.bin", // relative: the field is text, not type="url"
      tokenizer: "/data/models/tok512.bin",
      prompt: PROMPT,
      maxTokens: "64",
      threads: "2",
      autorun: "1",
    });
    await replyDone(page, 1);
    const status = await page.textContent("#status");
    assert.match(status ?? "", /^64 tokens at [0-9.]+ tok\/s \((relaxed|strict) SIMD, 2 thread\(s\), cross-origin isolated: true\)\.$/, `status: ${status}; errors: ${errors}`);
    assert.is(await lastReply(page).textContent(), want);
    assert.is(await lastReply(page).getAttribute("data-finish"), "length");

    // The same model and tokenizer picked as files (Files cross to the worker and are read by slices).
    await page.fill("#model-text", "");
    await page.fill("#tokenizer-text", "");
    await page.setInputFiles("#model-file", dataPath("models/bitllama-1M.bin"));
    await page.setInputFiles("#tokenizer-file", dataPath("models/tok512.bin"));
    await page.click("#load");
    await page.waitForFunction(() => /^Loaded bitllama-1M\.bin: /.test(document.querySelector("#status")?.textContent ?? ""));
    await page.click("#send");
    await replyDone(page, 1);
    assert.is(await lastReply(page).textContent(), want);
    assert.equal(errors, []);
  });
});

needs(
  test,
  "by hub id: progress per file, Node's reply, no main-thread task over 100 ms, Stop within one token, the reload from OPFS, the cache listed and deleted, the gated repo's error",
  {
    tools: TOOLS,
    files: ["models/bitllama-3M.bin", "models/tok512.bin"],
  },
  async (model3M, tok) => {
    const want = await nodeReply("models/bitllama-3M.bin", PROMPT, 48);
    mkdirSync(ARTIFACTS, { recursive: true });
    const hub = await MockHub.start([
      { repo: "bitnet/bitllama-3M", commit: COMMIT, files: { "bitllama-3M.bin": model3M, "tok512.bin": tok } },
      { repo: "bitnet/gated", commit: COMMIT, files: { "bitllama-3M.bin": model3M }, token: "hf_secret" },
    ]);
    const MODEL_FILE = "bitnet/bitllama-3M/bitllama-3M.bin";
    try {
      await withPage(async (page, base) => {
        const query = { model: "hf:bitnet/bitllama-3M", hubEndpoint: hub.endpoint, prompt: PROMPT, maxTokens: "48", threads: "2", autorun: "1" };
        hub.hold(MODEL_FILE); // the download waits after its first bytes: the screenshot shows it under way
        const errors = await openPage(page, base, query);
        const row = page.locator('#files .file[data-key="download:bitllama-3M.bin"]');
        await row.waitFor({ timeout: 30_000 });
        await page.waitForFunction(() => /MB \(\d+%\)/.test(document.querySelector('#files .file[data-key="download:bitllama-3M.bin"]')?.textContent ?? ""));
        await page.screenshot({ path: `${ARTIFACTS}load.png` });
        hub.release(MODEL_FILE);
        await replyDone(page, 1);
        assert.is(await lastReply(page).textContent(), want, `errors: ${errors}; status: ${await page.textContent("#status")}`);
        assert.match((await row.textContent()) ?? "", /downloading bitllama-3M\.bin.*1\.3 MB \/ 1\.3 MB \(100%\)/);
        assert.match((await page.textContent("#status")) ?? "", /^48 tokens at [0-9.]+ tok\/s/);

        // A long reply (it runs to its 400 tokens unstopped), seen mid-way; then, in a new chat, a
        // reply (one of 180 tokens unstopped) stopped by a click once 8 tokens are in (a
        // MutationObserver clicks at once): at most one more arrives.
        await page.click("summary"); // the settings
        await page.fill("#max-tokens", "400");
        await page.fill("#message", "1 2 3 4");
        await page.click("#send");
        await page.waitForFunction(() => Number(document.querySelector("#messages .model:last-child")?.getAttribute("data-tokens")) >= 8);
        await page.screenshot({ path: `${ARTIFACTS}generating.png` });
        await replyDone(page, 2);
        await page.click("#new-chat");
        await page.fill("#message", PROMPT);
        await page.evaluate(() => {
          const messages = document.querySelector("#messages")!, stop = document.querySelector("#stop") as HTMLButtonElement;
          new MutationObserver((_, observer) => {
            if (Number(messages.lastElementChild?.getAttribute("data-tokens")) < 8) return;
            stop.click();
            observer.disconnect();
          }).observe(messages, { subtree: true, attributes: true, attributeFilter: ["data-tokens"] });
        });
        await page.click("#send");
        await replyDone(page, 1);
        const [atClick, tokens] = [Number(await page.getAttribute("#stop", "data-tokens-at-click")), Number(await lastReply(page).getAttribute("data-tokens"))];
        assert.is(await lastReply(page).getAttribute("data-finish"), "abort", `stop clicked at ${atClick}, the reply ended at ${tokens} tokens`);
        assert.ok(atClick >= 8 && tokens <= atClick + 1, `stopped at ${atClick} tokens, the stream ended at ${tokens}`);
        assert.match((await page.textContent("#status")) ?? "", /^Stopped after \d+ tokens/);

        const long = await page.evaluate(() => (window as unknown as { longTasks: number[] }).longTasks);
        assert.ok(long.every((ms) => ms <= 100), `main-thread tasks over 100 ms: ${long.map((ms) => ms.toFixed(0)).join(", ")}`);

        // The reload: the listing only (the branch may have moved), the files from OPFS.
        hub.log.length = 0;
        await page.reload();
        await replyDone(page, 1);
        assert.is(await lastReply(page).textContent(), want);
        assert.equal(hub.fileRequests(), [], "the reload asked for the model's files");
        const cached = page.locator(`#cached li[data-id="hf:bitnet/bitllama-3M@${COMMIT}"]`);
        assert.match((await cached.textContent()) ?? "", /\(main\): 2 file\(s\), 1\.3 MB/);
        await cached.locator("button").click();
        await page.waitForFunction(() => /^Deleted hf:bitnet\/bitllama-3M@/.test(document.querySelector("#status")?.textContent ?? ""));
        await page.waitForFunction(() => /None yet/.test(document.querySelector("#cached")?.textContent ?? ""), undefined, { timeout: 10_000 });

        // A gated repo without a token: a sentence saying what to do.
        await page.goto(`${base}/examples/browser/?${new URLSearchParams({ ...query, model: "hf:bitnet/gated" })}`);
        await page.waitForSelector('#status[data-error="true"]', { timeout: 30_000 });
        assert.match((await page.textContent("#status")) ?? "", /^hf:bitnet\/gated is gated or private: give an access token \(settings\)/);
        await page.screenshot({ path: `${ARTIFACTS}error.png` });
        assert.equal(errors, []);
      });
    } finally {
      await hub.close();
    }
  },
);

needs(test, "without OPFS the Cache API holds the cache: an interrupted download resumed by Range, Node's text, the second load asks for no file, list and delete", {
  tools: TOOLS,
  files: ["models/bitllama-3M.bin", "models/tok512.bin"],
}, async (model3M, tok) => {
  const m = await loadBitNet(dataPath("models/bitllama-3M.bin"), { tokenizer: dataPath("models/tok512.bin") });
  const want = (await m.complete(PROMPT, { maxTokens: 24, temperature: 0 })).text;
  m.dispose();
  const hub = await MockHub.start([{ repo: "bitnet/bitllama-3M", commit: COMMIT, files: { "bitllama-3M.bin": model3M, "tok512.bin": tok } }]);
  try {
    await withPage(async (page, base) => {
      await page.goto(`${base}/examples/browser/`);
      hub.cuts.set("bitnet/bitllama-3M/bitllama-3M.bin", 300_000);
      type Lib = typeof import("../web.ts");
      const run = (endpoint: string) =>
        page.evaluate(async ({ endpoint, prompt }) => {
          delete (StorageManager.prototype as { getDirectory?: unknown }).getDirectory; // no OPFS here
          const lib: Lib = await import("/dist/web.js" as string);
          const cached = await lib.cacheHubModel("hf:bitnet/bitllama-3M", { hubEndpoint: endpoint });
          const model = await lib.loadBitNet(cached.source, { tokenizer: cached.tokenizer, threads: 1 });
          const text = (await model.complete(prompt, { maxTokens: 24, temperature: 0 })).text;
          model.dispose();
          return { text, cached: (await lib.listCachedModels()).map((c) => `${c.id} ${c.size}`), keys: (await (await caches.open("bitnet-wasm")).keys()).length };
        }, { endpoint, prompt: PROMPT });
      const first = await run(hub.endpoint);
      assert.is(first.text, want);
      const ranges = hub.log.filter((l) => l.server === "cdn").map((l) => l.range ?? "");
      assert.equal(ranges, ["", "bytes=300000-"], "the cut download resumed where it broke");
      assert.ok(first.keys >= 4, `the Cache API holds ${first.keys} entries (a ref, a listing, two files)`);
      assert.equal(first.cached, [`hf:bitnet/bitllama-3M@${COMMIT} ${model3M.length + tok.length}`]);
      hub.log.length = 0;
      assert.is((await run(hub.endpoint)).text, want);
      assert.equal(hub.fileRequests(), []);
      const freed = await page.evaluate(async () => {
        const lib: Lib = await import("/dist/web.js" as string);
        const bytes = await lib.deleteCachedModel("hf:bitnet/bitllama-3M");
        return { bytes, left: (await lib.listCachedModels()).length, keys: (await (await caches.open("bitnet-wasm")).keys()).length };
      });
      assert.equal(freed, { bytes: model3M.length + tok.length, left: 0, keys: 0 });
    });
  } finally {
    await hub.close();
  }
});

test.run();
