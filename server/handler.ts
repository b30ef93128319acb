// An OpenAI-compatible HTTP API as one web-standard function, Request -> Response, so the
// same code serves Node, Deno, Bun and Workers (each runtime's adapter only hands requests
// over). Every request is bounded before it reaches a model: the key, the body size, the
// fields (openai.ts), the prompt's length; then it waits for a generation slot (slots.ts)
// and runs in a session of its own, one kept from an earlier request when its cache holds
// the start of this prompt (sessions.ts).
import type { BitNetModel } from "../model/model.ts";
import { checkTokenIds, type Session } from "../model/session.ts";
import { BitNetError, OptionError } from "../core/errors.ts";
import { checkOptions, describe, own } from "../core/options.ts";
import { type ChatMessage, renderChat } from "../text/chat.ts";
import { drain, type GeneratedToken, type GenerationResult } from "../text/generate.ts";
import { ApiError, chunkBody, completionBody, completionId, type CompletionRequest, type Endpoint, parseCompletionRequest, usageChunk } from "./openai.ts";
import { QueueFull, Slots } from "./slots.ts";
import { SessionPool } from "./sessions.ts";

/** Options of createHandler. */
export interface HandlerOptions {
  /** Generations that run at once, each in its own KV cache; their tokens interleave (default 1). */
  parallel?: number;
  /** Requests that may wait for a slot; past that the answer is 503 with Retry-After (default 16). */
  queue?: number;
  /** Requests to /v1/ must carry `Authorization: Bearer <apiKey>` (compared in constant time); default: none needed. */
  apiKey?: string;
  /** An origin allowed to call the API from a browser (or "*"); default: no CORS headers, preflights refused. */
  cors?: string;
  /** Largest request body in bytes (default 1 MiB); larger is 413. */
  maxBodyBytes?: number;
  /** Longest prompt in tokens (default: the model's context less one); longer is 413. */
  maxPromptTokens?: number;
  /** Called once per request when its answer is complete (for a stream: when the stream ends). */
  onRequest?: (record: RequestRecord) => void;
}

/** What one request did: an access-log line. */
export interface RequestRecord {
  /** The HTTP method. */
  method: string;
  /** The URL's path. */
  path: string;
  /** The status answered (500 for a generation that failed mid-stream). */
  status: number;
  /** The model a completion ran on. */
  model?: string;
  /** Tokens in the prompt (the rendered conversation, for chat). */
  promptTokens?: number;
  /** Prompt tokens whose keys and values a kept session already had (not computed again). */
  cachedTokens?: number;
  /** Tokens generated. */
  completionTokens?: number;
  /** How the generation ended: stop, length, context or abort (the client left). */
  finishReason?: string;
  /** Milliseconds spent waiting for a slot. */
  queuedMs?: number;
  /** Milliseconds from the request to its first generated token. */
  firstTokenMs?: number;
  /** Milliseconds from the request to its last byte. */
  totalMs: number;
  /** Why it failed, for an error status. */
  error?: string;
}

const HANDLER_OPTIONS = {
  parallel: "number",
  queue: "number",
  apiKey: "string",
  cors: "string",
  maxBodyBytes: "number",
  maxPromptTokens: "number",
  onRequest: "function",
} as const;

/** Prompt text is refused before it is tokenized past this many characters per allowed token (no token is longer). */
const MAX_CHARS_PER_TOKEN = 64;

const utf8 = new TextEncoder();
const SSE_HEADERS = { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache" };

/** The web-standard request handler of an OpenAI-compatible server. */
export type Handler = (request: Request) => Promise<Response>;

/**
 * An OpenAI-compatible API over loaded models, named by the keys of `models`:
 * `POST /v1/chat/completions`, `POST /v1/completions` (streamed as server-sent events with
 * `stream: true`), `GET /v1/models`, `GET /v1/models/{id}` and `GET /health`. Serve it with
 * `Deno.serve(handler)`, `Bun.serve({ fetch: handler })`, a Worker's `fetch`, or
 * `bitnet-wasm serve` (Node, Deno, Bun).
 */
export function createHandler(models: Record<string, BitNetModel>, options: HandlerOptions = {}): Handler {
  checkOptions(options, HANDLER_OPTIONS, "createHandler");
  if (typeof models !== "object" || models === null || Object.keys(models).length === 0) {
    throw new OptionError("models", `expected an object naming at least one model, got ${describe(models)}`);
  }
  for (const [name, m] of Object.entries(models)) {
    if (typeof m?.createSession !== "function") throw new OptionError("models", `${JSON.stringify(name)} is ${describe(m)}, not a loaded model`);
  }
  const { parallel = 1, queue = 16, apiKey, cors, maxBodyBytes = 2 ** 20, maxPromptTokens, onRequest } = options;
  const positive = (name: string, v: number, min: number) => {
    if (!Number.isSafeInteger(v) || v < min) throw new OptionError(name, `expected an integer >= ${min}, got ${describe(v)}`);
  };
  positive("parallel", parallel, 1);
  positive("queue", queue, 0);
  positive("maxBodyBytes", maxBodyBytes, 1);
  if (maxPromptTokens !== undefined) positive("maxPromptTokens", maxPromptTokens, 1);
  if (apiKey === "") throw new OptionError("apiKey", "an empty key would let anyone in; leave it out instead");
  const slots = new Slots(parallel, queue);
  const sessions = new SessionPool(parallel);
  const key = apiKey === undefined ? null : sha256(apiKey);
  const served = Object.entries(models).map(([id]) => ({ id, object: "model", created: Math.floor(Date.now() / 1000), owned_by: "bitnet-wasm" }));
  let meanSlotSeconds = 1; // how long a generation holds its slot, on average (for Retry-After)

  async function completion(endpoint: Endpoint, request: Request, record: RequestRecord, started: number): Promise<Response> {
    const body = await readJson(request, maxBodyBytes);
    const req = parseCompletionRequest(endpoint, body);
    const model = own(models, req.model);
    if (!model) throw new ApiError(404, `The model ${JSON.stringify(req.model)} does not exist; this server has ${served.map((m) => m.id).join(", ")}`, "model", "model_not_found");
    record.model = req.model;
    const prompt = promptTokens(model, req, maxPromptTokens);
    const context = model.config.seqLen;
    const maxTokens = Math.min(req.maxTokens ?? Infinity, context - prompt.length);
    record.promptTokens = prompt.length;

    const abort = new AbortController();
    request.signal?.addEventListener("abort", () => abort.abort(), { once: true });
    let release: () => void;
    try {
      release = await slots.acquire(abort.signal);
    } catch (e) {
      if (e instanceof QueueFull) throw new ApiError(503, `${e.message}; retry later`, null, "server_overloaded");
      throw e;
    }
    const granted = performance.now();
    record.queuedMs = granted - started;
    let session: Session;
    try {
      session = sessions.take(model, prompt, prompt.length + maxTokens);
    } catch (e) {
      release();
      throw new ApiError(503, `no room for this request's KV cache: ${(e as Error).message}`, null, "server_overloaded");
    }
    const finish = (result: GenerationResult | null, error?: unknown) => {
      if (error) session.dispose();
      else sessions.give(model, session);
      release();
      meanSlotSeconds = 0.8 * meanSlotSeconds + 0.2 * ((performance.now() - granted) / 1000);
      if (result) Object.assign(record, { cachedTokens: result.usage.cachedTokens, completionTokens: result.usage.completionTokens, finishReason: result.finishReason });
      if (error) Object.assign(record, { status: 500, error: (error as Error)?.message ?? String(error) });
      record.totalMs = performance.now() - started;
      onRequest?.(record);
    };
    let generation: AsyncGenerator<GeneratedToken, GenerationResult>;
    try {
      generation = session.generate(prompt, { ...req.options, maxTokens, signal: abort.signal });
    } catch (e) {
      finish(null, e);
      throw e;
    }
    const id = completionId(endpoint, req.model);
    record.status = 200;
    if (req.stream) return streamed(endpoint, id, req.includeUsage, generation, abort, (at) => (record.firstTokenMs ??= at - started), finish);
    try {
      const result = await drain(generation);
      record.firstTokenMs = result.timings.prefillMs + record.queuedMs;
      finish(result);
      return json(completionBody(endpoint, id, result));
    } catch (e) {
      finish(null, e);
      throw e;
    }
  }

  async function route(request: Request, record: RequestRecord, started: number): Promise<Response> {
    const { pathname } = new URL(request.url);
    const method = request.method;
    if (method === "OPTIONS") {
      if (!cors) throw new ApiError(405, "cross-origin requests are not enabled on this server (serve with --cors ORIGIN)");
      return new Response(null, {
        status: 204,
        headers: { "access-control-allow-methods": "GET, POST, OPTIONS", "access-control-allow-headers": "authorization, content-type", "access-control-max-age": "600" },
      });
    }
    const endpoint = ROUTES[pathname];
    if (pathname === "/health") return allow(method, "GET") ?? json({ status: "ok", slots: { parallel, running: slots.running, queued: slots.queued, queue } });
    if (!pathname.startsWith("/v1/")) throw new ApiError(404, `no such endpoint: ${pathname}`, null, "not_found");
    if (key && !(await authorized(request, key))) throw new ApiError(401, "Incorrect API key provided (expected Authorization: Bearer <key>)", null, "invalid_api_key");
    if (endpoint) return allow(method, "POST") ?? completion(endpoint, request, record, started);
    if (pathname === "/v1/models") return allow(method, "GET") ?? json({ object: "list", data: served });
    const modelId = pathname.startsWith("/v1/models/") ? decodeURIComponent(pathname.slice("/v1/models/".length)) : null;
    if (modelId !== null) {
      const found = served.find((m) => m.id === modelId);
      if (!found) throw new ApiError(404, `The model ${JSON.stringify(modelId)} does not exist`, "model", "model_not_found");
      return allow(method, "GET") ?? json(found);
    }
    throw new ApiError(404, `no such endpoint: ${pathname}`, null, "not_found");
  }

  return async (request: Request): Promise<Response> => {
    const started = performance.now();
    const record: RequestRecord = { method: request.method, path: new URL(request.url).pathname, status: 200, totalMs: 0 };
    let response: Response;
    try {
      response = await route(request, record, started);
    } catch (e) {
      const error = apiError(e);
      response = json(error.toJSON(), error.status);
      if (error.status === 503) response.headers.set("retry-after", String(Math.max(1, Math.ceil((meanSlotSeconds * (slots.queued + 1)) / parallel))));
      if (error.status === 401) response.headers.set("www-authenticate", "Bearer");
      if (error.status === 405) response.headers.set("allow", ROUTES[record.path] ? "POST" : "GET");
      Object.assign(record, { status: error.status, error: error.message });
    }
    // A generation's record is complete when it ends (finish, above); the rest are now.
    if (record.finishReason === undefined && record.queuedMs === undefined) {
      record.totalMs = performance.now() - started;
      onRequest?.(record);
    }
    if (cors) {
      response.headers.set("access-control-allow-origin", cors);
      if (cors !== "*") response.headers.append("vary", "origin");
    }
    return response;
  };
}

const ROUTES: Record<string, Endpoint> = Object.assign(Object.create(null), { "/v1/chat/completions": "chat", "/v1/completions": "text" });

/** null when `method` is the route's; else the 405 to answer. */
function allow(method: string, expected: string): null {
  if (method !== expected && !(expected === "GET" && method === "HEAD")) throw new ApiError(405, `${method} is not allowed here; use ${expected}`, null, "method_not_allowed");
  return null;
}

/** Any failure as the API's error: typed library errors are the caller's (400), the rest the server's (500). */
function apiError(e: unknown): ApiError {
  if (e instanceof ApiError) return e;
  if (e instanceof OptionError) return new ApiError(400, e.message, e.option, "invalid_value");
  if (e instanceof BitNetError) return new ApiError(400, e.message);
  return new ApiError(500, `internal error: ${(e as Error)?.message ?? String(e)}`);
}

function json(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });
}

/** The request body as JSON, read no further than `limit` bytes. */
async function readJson(request: Request, limit: number): Promise<unknown> {
  const tooLarge = () => new ApiError(413, `the request body is larger than ${limit} bytes`, null, "request_too_large");
  if (Number(request.headers.get("content-length") ?? 0) > limit) throw tooLarge();
  const chunks: Uint8Array[] = [];
  let size = 0;
  if (request.body) {
    const reader = request.body.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.length;
      if (size > limit) {
        await reader.cancel().catch(() => {});
        throw tooLarge();
      }
      chunks.push(value);
    }
  }
  const bytes = new Uint8Array(size);
  chunks.reduce((at, c) => (bytes.set(c, at), at + c.length), 0);
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw new ApiError(400, "the request body is not valid UTF-8", null, "invalid_json");
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new ApiError(400, `the request body is not valid JSON: ${(e as Error).message}`, null, "invalid_json");
  }
}

/** The prompt's token ids: the conversation rendered with the model's chat template, or the prompt text with BOS, or ids. */
function promptTokens(model: BitNetModel, req: CompletionRequest, maxPromptTokens: number | undefined): number[] {
  const limit = Math.min(maxPromptTokens ?? Infinity, model.config.seqLen - 1);
  const tooLong = (what: string) => new ApiError(413, `the prompt is ${what}; this server takes ${limit} tokens at most`, endpointField(req.endpoint), "context_length_exceeded");
  let ids: number[];
  if (Array.isArray(req.input) && typeof req.input[0] === "number") {
    ids = req.input as number[];
    try {
      checkTokenIds(ids, model.config.vocabSize, "prompt");
    } catch (e) {
      throw new ApiError(400, (e as Error).message, "prompt", "invalid_value");
    }
  } else {
    const tokenizer = model.tokenizer;
    if (!tokenizer) throw new ApiError(400, `the model ${JSON.stringify(req.model)} has no tokenizer; send the prompt as token ids`, endpointField(req.endpoint));
    let text: string;
    if (req.endpoint === "chat") {
      if (!model.chatTemplate) {
        throw new ApiError(
          400,
          `the model ${JSON.stringify(req.model)} has no chat template; use /v1/completions, or serve it with a chat template (--chat-template FILE)`,
          "messages",
        );
      }
      text = renderChat(tokenizer, req.input as ChatMessage[], model.source, model.chatTemplate);
    } else text = req.input as string;
    if (text.length > limit * MAX_CHARS_PER_TOKEN) throw tooLong(`${text.length} characters long`);
    ids = tokenizer.encode(text, { bos: req.endpoint === "text" });
  }
  if (ids.length > limit) throw tooLong(`${ids.length} tokens long`);
  return ids;
}

const endpointField = (endpoint: Endpoint) => (endpoint === "chat" ? "messages" : "prompt");

/** A generation as server-sent events, produced as fast as the model goes (a slow reader does not hold the slot longer); the client's leaving aborts it. */
function streamed(
  endpoint: Endpoint,
  id: ReturnType<typeof completionId>,
  includeUsage: boolean,
  generation: AsyncGenerator<GeneratedToken, GenerationResult>,
  abort: AbortController,
  firstToken: (at: number) => void,
  finish: (result: GenerationResult | null, error?: unknown) => void,
): Response {
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  const body = new ReadableStream<Uint8Array>({ start: (c) => void (controller = c), cancel: () => abort.abort() });
  const send = (data: unknown) => {
    if (abort.signal.aborted) return;
    try {
      controller.enqueue(utf8.encode(`data: ${typeof data === "string" ? data : JSON.stringify(data)}\n\n`));
    } catch {
      abort.abort(); // the stream is gone
    }
  };
  (async () => {
    let result: GenerationResult | null = null, error: unknown;
    try {
      if (endpoint === "chat") send(chunkBody(endpoint, id, { role: true, text: "" }));
      for (;;) {
        const step = await generation.next();
        if (step.done) {
          result = step.value;
          break;
        }
        if (!step.value.text) continue;
        firstToken(performance.now());
        send(chunkBody(endpoint, id, { text: step.value.text }));
      }
      send(chunkBody(endpoint, id, { finish: result.finishReason }));
      if (includeUsage) send(usageChunk(endpoint, id, result));
      send("[DONE]");
    } catch (e) {
      error = e;
      send(apiError(e).toJSON()); // mid-stream, as OpenAI does: an error event, then the end
    } finally {
      finish(result, error);
      try {
        controller.close();
      } catch { /* cancelled by the client */ }
    }
  })();
  return new Response(body, { headers: SSE_HEADERS });
}

async function sha256(text: string): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", utf8.encode(text)));
}

/** Whether the request's bearer token is the key: their digests compared in constant time. */
async function authorized(request: Request, key: Promise<Uint8Array>): Promise<boolean> {
  const token = /^Bearer +(.+)$/i.exec(request.headers.get("authorization") ?? "")?.[1] ?? "";
  const [given, expected] = await Promise.all([sha256(token), key]);
  let diff = token === "" ? 1 : 0;
  for (let i = 0; i < expected.length; i++) diff |= given[i] ^ expected[i];
  return diff === 0;
}
