// The browser example in headless Chromium (Debian's chromium, driven by playwright-core):
// served with COOP / COEP, it loads bitllama-1M by URL (HTTP ranges), runs on 2 worker
// threads in a cross-origin-isolated page, and streams the greedy text Node generates.
// Runs in the Node pass only (Playwright drives the browser from Node).
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { existsSync } from "node:fs";
import { CHROMIUM, launchChromium } from "../eval/chromium.ts";
import { loadBitNet } from "../model/load.ts";
import { dataPath, needs, onlyUnder } from "./helpers.ts";

const test = suite("browser");
const CHROMIUM_TOOL = { tool: CHROMIUM, available: existsSync(CHROMIUM), reason: "apt-get install chromium (.ci/run installs it), or set CHROMIUM=/path/to/chromium" };

needs(
  test,
  "examples/browser in headless Chromium streams the Node greedy text of bitllama-1M on 2 threads",
  { tools: [onlyUnder("node"), CHROMIUM_TOOL], files: ["models/bitllama-1M.bin", "models/tok512.bin"] },
  async () => {
    // @ts-ignore: a plain JavaScript module without types
    const { serve } = await import("../examples/browser/serve.mjs");
    const server = await serve();
    const browser = await launchChromium();
    try {
      const page = await browser.newPage();
      const errors: string[] = [];
      page.on("pageerror", (e) => errors.push(e.message));
      const prompt = "Once upon a time";
      const query = new URLSearchParams({ model: "/data/models/bitllama-1M.bin", tokenizer: "/data/models/tok512.bin", prompt, maxTokens: "64", threads: "2", autorun: "1" });
      await page.goto(`${server.url}/examples/browser/?${query}`);
      await page.waitForSelector('#output[data-done="true"]', { timeout: 60_000 });
      const status = await page.textContent("#status");
      assert.match(status ?? "", /^64 tokens, [0-9.]+ tok\/s \((relaxed|strict) SIMD, 2 thread\(s\), cross-origin isolated: true\)$/, `status: ${status}; errors: ${errors}`);
      const m = await loadBitNet(dataPath("models/bitllama-1M.bin"));
      let want = prompt;
      try {
        for await (const { text } of m.generate(prompt, { maxTokens: 64, temperature: 0 })) want += text;
      } finally {
        m.dispose();
      }
      assert.is(await page.textContent("#output"), want);
      assert.equal(errors, []);
    } finally {
      await browser.close();
      server.close();
    }
  },
);

test.run();
