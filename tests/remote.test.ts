// loadBitNetInWorker (worker/client.ts, worker/entry.ts) where Web Workers exist outside a
// browser (Deno, Bun): the model in the worker answers as loadBitNet's does in this thread
// (streamed tokens, complete, a session's turns), an abort ends a stream within one token,
// errors arrive as the library's classes, and a disposed model refuses calls. Under Node
// (no Web Workers) it says to use loadBitNet. The browser page is tests/browser.test.ts.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { pathToFileURL } from "node:url";
import { BitNetError, FormatError, OptionError } from "../core/errors.ts";
import { loadBitNet } from "../mod.ts";
import { loadBitNetInWorker } from "../worker/client.ts";
import { dataPath, needs, onlyUnder, rejects } from "./helpers.ts";

const test = suite("remote");
const PROMPT = "Once upon a time";
const url = (file: string) => pathToFileURL(dataPath(file)).href; // the web entry in the worker reads file: URLs by fetch (Deno, Bun)

needs(test, "in a worker: streamed tokens, complete and a session's turns equal loadBitNet's; abort within one token; typed errors; dispose", {
  tools: [onlyUnder("deno", "bun")],
  files: ["models/bitllama-1M.bin", "models/tok512.bin"],
}, async () => {
  const local = await loadBitNet(dataPath("models/bitllama-1M.bin"), { tokenizer: dataPath("models/tok512.bin") });
  const events: string[] = [];
  const remote = await loadBitNetInWorker(url("models/bitllama-1M.bin"), { tokenizer: url("models/tok512.bin"), threads: 1, onProgress: (p) => events.push(p.phase) });
  try {
    assert.equal(remote.config, { ...local.config });
    assert.ok(events.includes("weights"), `progress: ${events}`);
    const greedy = { maxTokens: 32, temperature: 0 };
    const streamed = async (tokens: AsyncGenerator<{ text: string }, unknown>) => {
      let text = "";
      for await (const t of tokens) text += t.text;
      return text;
    };
    assert.is(await streamed(remote.generate(PROMPT, greedy)), await streamed(local.generate(PROMPT, greedy)));
    const withoutTimings = ({ timings: _, ...rest }: { timings: unknown }) => rest;
    assert.equal(withoutTimings(await remote.complete(PROMPT, greedy)), withoutTimings(await local.complete(PROMPT, greedy)));

    const [r, l] = [remote.createSession(), local.createSession()];
    for (const turn of [PROMPT, " The dog", " Then"]) assert.is(await r.prompt(turn, greedy), await l.prompt(turn, greedy));
    await r.reset();
    l.reset();
    assert.is(await r.prompt(PROMPT, greedy), await l.prompt(PROMPT, greedy));

    // Aborted after 5 tokens taken: the stream ends at most one token later, with finishReason "abort".
    const controller = new AbortController();
    const stream = remote.generate(PROMPT, { maxTokens: 200, temperature: 0, signal: controller.signal });
    let taken = 0, result;
    for (;;) {
      const step = await stream.next();
      if (step.done) {
        result = step.value;
        break;
      }
      if (++taken === 5) controller.abort();
    }
    assert.is(result.finishReason, "abort");
    assert.ok(taken <= 6, `${taken} tokens after the abort at 5`);

    await rejects(remote.complete(PROMPT, { maxTokens: -1 } as never), OptionError, /maxTokens/);
    await rejects(loadBitNetInWorker(url("models/tok512.bin"), { threads: 1 }), FormatError, /tok512\.bin/);
    await rejects(loadBitNetInWorker(url("models/none.bin"), { threads: 1 }), BitNetError, /none\.bin/);
    await rejects(loadBitNetInWorker(url("models/bitllama-1M.bin"), { thread: 1 } as never), OptionError, /thread/);
  } finally {
    remote.dispose();
    local.dispose();
  }
  await rejects(remote.complete(PROMPT), BitNetError, /model was disposed/);
});

needs(test, "under Node (no Web Workers): a BitNetError that says to use loadBitNet", { tools: [onlyUnder("node")] }, async () => {
  await rejects(loadBitNetInWorker("model.gguf"), BitNetError, /needs Web Workers.*use loadBitNet here/);
});

test("options that cannot cross to a worker, or are no options, are OptionErrors naming them (before any worker starts)", async () => {
  await rejects(loadBitNetInWorker("model.gguf", { tokenizer: { encode: () => [] } } as never), OptionError, /tokenizer: a Tokenizer object cannot go to a worker/);
  await rejects(loadBitNetInWorker("model.gguf", { threadz: 2 } as never), OptionError, /threadz/);
});

test.run();
