// The OpenAI API's shapes: a request body is checked field by field (unknown fields, types,
// ranges: OpenAI's own "Unrecognized request argument" rule) and becomes the library's
// generate options before anything reaches a model; results, stream chunks and errors are
// written as OpenAI writes them, so its clients (the `openai` package among them) read them.
import { BitNetError } from "../core/errors.ts";
import { describe, didYouMean } from "../core/options.ts";
import type { ChatMessage } from "../text/chat.ts";
import type { FinishReason, GenerateOptions, GenerationResult } from "../text/generate.ts";

/** A request the API refuses: the HTTP status, and OpenAI's error fields. */
export class ApiError extends BitNetError {
  /** Error class name. */
  override name = "ApiError";
  /** `param` names the request field at fault; `code` is OpenAI's machine-readable reason. */
  constructor(readonly status: number, message: string, readonly param: string | null = null, readonly code: string | null = null) {
    super(message);
  }
  /** OpenAI's error type for the status. */
  get type(): string {
    return this.status === 401 ? "authentication_error" : this.status >= 500 ? "server_error" : "invalid_request_error";
  }
  /** The response body: `{ error: { message, type, param, code } }`. */
  toJSON(): { error: { message: string; type: string; param: string | null; code: string | null } } {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

/** Which endpoint a request came to: /v1/chat/completions or /v1/completions. */
export type Endpoint = "chat" | "text";

/** A checked completion request. */
export interface CompletionRequest {
  endpoint: Endpoint;
  model: string;
  /** The conversation (chat), or the prompt: text or token ids (completions). */
  input: ChatMessage[] | string | number[];
  stream: boolean;
  /** `stream_options.include_usage`: a last chunk carries the usage. */
  includeUsage: boolean;
  /** max_tokens / max_completion_tokens, if given. */
  maxTokens?: number;
  /** Sampling and stop strings as the library takes them (OpenAI's defaults: temperature 1, top_p 1). */
  options: GenerateOptions;
}

type Check = (value: unknown, field: string) => unknown;

const bad = (field: string, expected: string, value: unknown) => new ApiError(400, `${field}: expected ${expected}, got ${describe(value)}`, field, "invalid_value");
const number = (min: number, max: number, { openMin = false } = {}): Check => (v, f) => {
  if (typeof v !== "number" || !Number.isFinite(v) || v > max || (openMin ? v <= min : v < min)) throw bad(f, `a number in ${openMin ? "(" : "["}${min}, ${max}]`, v);
  return v;
};
const integer = (min: number): Check => (v, f) => {
  if (!Number.isSafeInteger(v) || (v as number) < min) throw bad(f, `an integer >= ${min}`, v);
  return v;
};
const only = (allowed: unknown, expected: string): Check => (v, f) => {
  if (v !== allowed) throw new ApiError(400, `${f}: only ${expected} is supported, got ${describe(v)}`, f, "unsupported_value");
  return v;
};
const boolean: Check = (v, f) => {
  if (typeof v !== "boolean") throw bad(f, "true or false", v);
  return v;
};
const string: Check = (v, f) => {
  if (typeof v !== "string") throw bad(f, "a string", v);
  return v;
};
const stop: Check = (v, f) => {
  const list = typeof v === "string" ? [v] : v;
  if (!Array.isArray(list) || list.length > 4 || list.some((s) => typeof s !== "string" || s.length === 0)) throw bad(f, "a non-empty string or up to 4 of them", v);
  return list;
};
const streamOptions: Check = (v, f) => {
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw bad(f, "an object", v);
  for (const [key, value] of Object.entries(v)) {
    if (key !== "include_usage") throw new ApiError(400, `Unrecognized request argument supplied: ${f}.${key}`, `${f}.${key}`, "unknown_parameter");
    if (value !== null) boolean(value, `${f}.include_usage`);
  }
  return v;
};

/** Message fields besides role and content that clients send back with a reply: accepted, not used. */
const MESSAGE_EXTRAS = new Set(["name", "refusal", "annotations"]);

const messages: Check = (v, f) => {
  if (!Array.isArray(v) || v.length === 0) throw bad(f, "a non-empty array of messages", v);
  return v.map((m, i): ChatMessage => {
    const at = `${f}[${i}]`;
    if (typeof m !== "object" || m === null || Array.isArray(m)) throw bad(at, "a message object", m);
    for (const key of Object.keys(m)) {
      if (key !== "role" && key !== "content" && !MESSAGE_EXTRAS.has(key)) {
        throw new ApiError(400, `${at}.${key}: not supported (role and content only)`, `${at}.${key}`, "unknown_parameter");
      }
    }
    // "developer" is OpenAI's newer name for system instructions.
    const role = m.role === "developer" ? "system" : m.role;
    if (role !== "system" && role !== "user" && role !== "assistant") throw bad(`${at}.role`, `"system", "developer", "user" or "assistant"`, m.role);
    return { role, content: messageText(m.content, `${at}.content`) };
  });
};

/** A message's content: a string, or an array of text parts (what multi-part clients send). */
function messageText(content: unknown, field: string): string {
  if (typeof content === "string") return content;
  const parts = Array.isArray(content) ? content : null;
  if (!parts || parts.some((p) => p?.type !== "text" || typeof p.text !== "string")) throw bad(field, `a string or an array of { type: "text", text }`, content);
  return parts.map((p) => p.text).join("");
}

const prompt: Check = (v, f) => {
  const one = Array.isArray(v) && v.length === 1 && typeof v[0] === "string" ? v[0] : v;
  if (typeof one === "string") return one;
  if (Array.isArray(one) && one.length > 0 && one.every((t) => Number.isSafeInteger(t) && t >= 0)) return one;
  throw bad(f, "a string or an array of token ids (one prompt)", v);
};

const SAMPLING: Record<string, Check> = {
  model: string,
  stream: boolean,
  stream_options: streamOptions,
  max_tokens: integer(1),
  temperature: number(0, 2),
  top_p: number(0, 1, { openMin: true }),
  stop,
  seed: integer(Number.MIN_SAFE_INTEGER),
  frequency_penalty: number(-2, 2),
  presence_penalty: number(-2, 2),
  n: only(1, "n = 1"),
  user: string,
};

/** The fields each endpoint accepts (null is taken as absent, as OpenAI does). */
const FIELDS: Record<Endpoint, Record<string, Check>> = {
  chat: { ...SAMPLING, messages, max_completion_tokens: integer(1), logprobs: only(false, "logprobs: false") },
  text: { ...SAMPLING, prompt, echo: only(false, "echo: false"), best_of: only(1, "best_of = 1"), logprobs: only(0, "logprobs: 0"), suffix: only("", `suffix: ""`) },
};

/** Checks a parsed JSON body for `endpoint`; an ApiError (400) names the first bad field. */
export function parseCompletionRequest(endpoint: Endpoint, body: unknown): CompletionRequest {
  if (typeof body !== "object" || body === null || Array.isArray(body)) throw new ApiError(400, `the request body must be a JSON object, got ${describe(body)}`);
  const fields = FIELDS[endpoint], got: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(body)) {
    if (!Object.hasOwn(fields, key)) throw new ApiError(400, `Unrecognized request argument supplied: ${key}${didYouMean(key, Object.keys(fields))}`, key, "unknown_parameter");
    if (value !== null) got[key] = fields[key](value, key);
  }
  const required = endpoint === "chat" ? "messages" : "prompt";
  for (const key of ["model", required]) if (got[key] === undefined) throw new ApiError(400, `missing required field ${key}`, key, "missing_required_parameter");
  const options: GenerateOptions = {
    temperature: (got.temperature as number | undefined) ?? 1,
    topP: (got.top_p as number | undefined) ?? 1,
    seed: got.seed as number | undefined,
    frequencyPenalty: got.frequency_penalty as number | undefined,
    presencePenalty: got.presence_penalty as number | undefined,
    stop: got.stop as string[] | undefined,
  };
  return {
    endpoint,
    model: got.model as string,
    input: got[required] as CompletionRequest["input"],
    stream: got.stream === true,
    includeUsage: (got.stream_options as { include_usage?: boolean } | undefined)?.include_usage === true,
    maxTokens: (got.max_completion_tokens ?? got.max_tokens) as number | undefined,
    options,
  };
}

/** OpenAI's finish_reason: a full context counts as "length", as in OpenAI and llama-server. */
export function finishReason(reason: FinishReason): "stop" | "length" {
  return reason === "length" || reason === "context" ? "length" : "stop";
}

/** What identifies one completion in every chunk and result. */
export interface CompletionId {
  id: string;
  created: number;
  model: string;
}

/** A new id ("chatcmpl-..." / "cmpl-...") with the current time. */
export function completionId(endpoint: Endpoint, model: string): CompletionId {
  return { id: `${endpoint === "chat" ? "chatcmpl" : "cmpl"}-${crypto.randomUUID().replaceAll("-", "")}`, created: Math.floor(Date.now() / 1000), model };
}

/** OpenAI's usage object. */
export function usage(result: GenerationResult): { prompt_tokens: number; completion_tokens: number; total_tokens: number; prompt_tokens_details: { cached_tokens: number } } {
  const { promptTokens, completionTokens, cachedTokens } = result.usage;
  return {
    prompt_tokens: promptTokens,
    completion_tokens: completionTokens,
    total_tokens: promptTokens + completionTokens,
    prompt_tokens_details: { cached_tokens: cachedTokens },
  };
}

/** The whole result: a chat.completion or a text_completion. */
export function completionBody(endpoint: Endpoint, id: CompletionId, result: GenerationResult): object {
  const choice = endpoint === "chat"
    ? { index: 0, message: { role: "assistant", content: result.text, refusal: null }, logprobs: null, finish_reason: finishReason(result.finishReason) }
    : { index: 0, text: result.text, logprobs: null, finish_reason: finishReason(result.finishReason) };
  return { ...idFields(endpoint, id, false), choices: [choice], usage: usage(result) };
}

/** One stream chunk: text (and, in chat, the assistant role first), or the finish reason; `null` text with no reason opens a chat stream. */
export function chunkBody(endpoint: Endpoint, id: CompletionId, piece: { text?: string; role?: true; finish?: FinishReason }): object {
  const finish_reason = piece.finish ? finishReason(piece.finish) : null;
  const choice = endpoint === "chat"
    ? { index: 0, delta: piece.finish ? {} : { ...(piece.role ? { role: "assistant" } : {}), content: piece.text ?? "" }, logprobs: null, finish_reason }
    : { index: 0, text: piece.text ?? "", logprobs: null, finish_reason };
  return { ...idFields(endpoint, id, true), choices: [choice] };
}

/** The last chunk of a stream with `include_usage`: no choices, the usage. */
export function usageChunk(endpoint: Endpoint, id: CompletionId, result: GenerationResult): object {
  return { ...idFields(endpoint, id, true), choices: [], usage: usage(result) };
}

function idFields(endpoint: Endpoint, { id, created, model }: CompletionId, chunk: boolean) {
  const object = endpoint === "chat" ? (chunk ? "chat.completion.chunk" : "chat.completion") : "text_completion";
  return { id, object, created, model, system_fingerprint: null };
}
