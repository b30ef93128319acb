// The page's side of a model that runs in a worker: loadBitNetInWorker starts worker/entry.ts,
// loads the model there, and gives back a RemoteModel with BitNetModel's generation API, so the
// page's thread only posts messages while the model loads and generates. Progress and tokens
// arrive as messages; an AbortSignal, or leaving a for-await loop early, stops the generation
// in the worker; errors arrive as the library's own classes.
import { BitNetError, FormatError, HubError, NonFiniteError, OptionError, ShapeError } from "../core/errors.ts";
import { checkOptions } from "../core/options.ts";
import { LOAD_OPTIONS, type LoadOptions } from "../model/load.ts";
import type { ChatMessage } from "../text/chat.ts";
import type { GeneratedToken, GenerateOptions, GenerationResult } from "../text/generate.ts";
import type { SessionOptions } from "../model/session.ts";
import type { ModelConfig } from "../formats/config.ts";
import type { ByteSource, Progress } from "../runtime/files.ts";
import type { ErrorRecord, FromWorker, ModelInfo, ModelMethod, SessionMethod, Target, ToWorker } from "./protocol.ts";

/** loadBitNet's options, plus the worker to load in. */
export interface WorkerLoadOptions extends LoadOptions {
  /** A worker started on bitnet-wasm's worker/entry.js (as a bundler builds it); default: one started here. */
  worker?: Worker;
}

const CLASSES: Record<string, { prototype: Error }> = { BitNetError, FormatError, HubError, NonFiniteError, OptionError, ShapeError };

/** The worker's error as the class it was thrown as (a DOMException for an abort). */
function rebuild(record: ErrorRecord): Error {
  if (record.name === "AbortError") return new DOMException(record.message, "AbortError");
  const error: Error = Object.create((CLASSES[record.name] ?? Error).prototype);
  Object.assign(error, record.fields, { name: record.name, message: record.message, stack: `${record.name}: ${record.message}\n    in the model's worker` });
  return error;
}

type Pending = { resolve: (v: unknown) => void; reject: (e: unknown) => void; token?: (t: GeneratedToken) => void };

/** The calls to one worker and their answers. */
class Channel {
  readonly #calls = new Map<number, Pending>();
  #next = 1;
  #failure: Error | null = null;

  constructor(readonly worker: Worker, readonly onMessage: (m: FromWorker) => void) {
    worker.addEventListener("message", (event) => {
      const m = (event as MessageEvent<FromWorker>).data;
      if (m.op === "token") return this.#calls.get(m.call)?.token?.(m.token);
      if (m.op === "return" || (m.op === "error" && m.call !== null)) {
        const pending = this.#calls.get(m.call!);
        this.#calls.delete(m.call!);
        return m.op === "return" ? pending?.resolve(m.value) : pending?.reject(rebuild(m.error));
      }
      onMessage(m);
    });
    worker.addEventListener("error", (event) => this.fail(new BitNetError(`the model's worker failed: ${(event as ErrorEvent).message ?? "it could not start"}`)));
  }

  /** Ends every call under way with `error`; later calls fail with it too. */
  fail(error: Error): void {
    this.#failure ??= error;
    for (const pending of this.#calls.values()) pending.reject(this.#failure);
    this.#calls.clear();
    this.onMessage({ op: "error", call: null, error: { name: error.name, message: error.message, fields: {} } });
  }

  send(message: ToWorker): void {
    this.worker.postMessage(message);
  }

  /** Calls `method` on `target`; `signal` aborts it in the worker. */
  call(target: Target, method: ModelMethod | SessionMethod, args: unknown[], signal?: AbortSignal, token?: (t: GeneratedToken) => void): { id: number; done: Promise<unknown> } {
    const id = this.#next++;
    if (this.#failure) return { id, done: Promise.reject(this.#failure) };
    const done = new Promise<unknown>((resolve, reject) => this.#calls.set(id, { resolve, reject, token }));
    this.send({ op: "call", call: id, target, method, args });
    if (signal) {
      const abort = () => this.abort(id, String(signal.reason ?? "aborted"));
      if (signal.aborted) abort();
      else signal.addEventListener("abort", abort, { once: true });
      done.finally(() => signal.removeEventListener("abort", abort)).catch(() => {});
    }
    return { id, done };
  }

  abort(id: number, reason: string): void {
    if (this.#calls.has(id)) this.send({ op: "abort", call: id, reason });
  }

  /** A streaming call as an async generator of its tokens, returning its result; leaving early aborts it. */
  async *stream(target: Target, method: ModelMethod | SessionMethod, input: unknown, options: GenerateOptions): AsyncGenerator<GeneratedToken, GenerationResult> {
    const { signal, ...rest } = options;
    const queue: GeneratedToken[] = [];
    let wake: (() => void) | null = null, settled = false, result: unknown, failure: unknown;
    const { id, done } = this.call(target, method, [input, rest], signal, (t) => (queue.push(t), wake?.()));
    done.then((v) => (result = v), (e) => (failure = e ?? new Error("failed"))).finally(() => ((settled = true), wake?.()));
    try {
      for (;;) {
        while (queue.length) {
          yield queue.shift()!;
          if (!settled) this.send({ op: "pull", call: id }); // taken: the worker may go on
        }
        if (settled) {
          if (failure) throw failure;
          return result as GenerationResult;
        }
        await new Promise<void>((resolve) => (wake = resolve));
        wake = null;
      }
    } finally {
      if (!settled) this.abort(id, "the reader stopped reading the stream");
    }
  }

  value<T>(target: Target, method: ModelMethod | SessionMethod, args: unknown[], signal?: AbortSignal): Promise<T> {
    return this.call(target, method, args, signal).done as Promise<T>;
  }
}

/** Options without what stays on this side (the signal travels as abort messages). */
const sendable = ({ signal: _, ...rest }: GenerateOptions = {}) => rest;
/** Text, messages or token ids as they cross (a typed array of ids as a plain array). */
const sendableInput = (input: string | ChatMessage[] | ArrayLike<number>) => (typeof input === "string" || Array.isArray(input) ? input : Array.from(input as ArrayLike<number>));

/** A session of a RemoteModel: its own text and KV cache in the worker. */
export class RemoteSession {
  readonly #id: number;
  readonly #channel: Channel;

  /** Made by {@link RemoteModel.createSession}, not by hand. */
  constructor(id: number, channel: unknown) {
    this.#id = id;
    this.#channel = channel as Channel;
  }

  /** Streams the continuation of the session's text by `input`. */
  generate(input: string | ArrayLike<number> = "", options: GenerateOptions = {}): AsyncGenerator<GeneratedToken, GenerationResult> {
    return this.#channel.stream(this.#id, "generate", sendableInput(input), options);
  }

  /** Streams the reply to a chat message (remembered with the conversation). */
  chatStream(message: string | ChatMessage | ChatMessage[], options: GenerateOptions = {}): AsyncGenerator<GeneratedToken, GenerationResult> {
    return this.#channel.stream(this.#id, "chatStream", message, options);
  }

  /** Continues the session's text by `input` and resolves to the generated text. */
  prompt(input: string | ArrayLike<number>, options: GenerateOptions = {}): Promise<string> {
    return this.#channel.value(this.#id, "prompt", [sendableInput(input), sendable(options)], options.signal);
  }

  /** Answers a chat message and resolves to the reply. */
  chat(message: string | ChatMessage | ChatMessage[], options: GenerateOptions = {}): Promise<string> {
    return this.#channel.value(this.#id, "chat", [message, sendable(options)], options.signal);
  }

  /** Forgets the text and the conversation (the worker keeps the cache for a prompt that starts the same way). */
  reset(): Promise<void> {
    return this.#channel.value(this.#id, "reset", []);
  }

  /** Frees the session's cache in the worker. */
  dispose(): Promise<void> {
    return this.#channel.value(this.#id, "dispose", []);
  }
}

/** A model loaded in a worker: BitNetModel's generation API, every call a message to the worker. */
export class RemoteModel {
  /** The source as given (a hub id, URL or file name). */
  readonly source: string;
  /** Which kernel build runs it. */
  readonly simd: "relaxed" | "strict";
  /** Threads its matrix products run on. */
  readonly threads: number;
  /** Its chat template, if it has one. */
  readonly chatTemplate: string | undefined;
  /** Its shape. */
  readonly config: ModelConfig;
  /** WebAssembly memory it took at load, in bytes. */
  readonly memoryBytes: number;
  #sessions = 0;

  readonly #channel: Channel;

  /** Made by loadBitNetInWorker, not by hand. */
  constructor(info: ModelInfo, channel: unknown) {
    this.#channel = channel as Channel;
    this.source = info.source;
    this.simd = info.simd;
    this.threads = info.threads;
    this.chatTemplate = info.chatTemplate;
    this.config = info.config as unknown as ModelConfig;
    this.memoryBytes = info.memoryBytes;
  }

  /** Streams the continuation of `input` (text or token ids), in a session of its own. */
  generate(input: string | ArrayLike<number> = "", options: GenerateOptions = {}): AsyncGenerator<GeneratedToken, GenerationResult> {
    return this.#channel.stream(0, "generate", sendableInput(input), options);
  }

  /** Streams the reply to a conversation rendered with the chat template. */
  chat(messages: ChatMessage[], options: GenerateOptions = {}): AsyncGenerator<GeneratedToken, GenerationResult> {
    return this.#channel.stream(0, "chat", messages, options);
  }

  /** The whole generation at once. */
  complete(input: string | ArrayLike<number> | ChatMessage[], options: GenerateOptions = {}): Promise<GenerationResult> {
    return this.#channel.value(0, "complete", [sendableInput(input), sendable(options)], options.signal);
  }

  /** A session with its own text and KV cache, in the worker. */
  createSession(options: SessionOptions = {}): RemoteSession {
    const id = ++this.#sessions;
    this.#channel.value(0, "createSession", [options, id]).catch(() => {}); // its calls come after it and fail with its error
    return new RemoteSession(id, this.#channel);
  }

  /** Stops the worker, freeing everything the model holds; calls under way fail. */
  dispose(): void {
    this.#channel.fail(new BitNetError(`${this.source}: model was disposed`));
    this.#channel.worker.terminate();
  }

  /** For `using`: the same as dispose(). */
  [Symbol.dispose](): void {
    this.dispose();
  }
}

const workerUrl = () => new URL(import.meta.url.endsWith(".ts") ? "./entry.ts" : "./entry.js", import.meta.url);

/**
 * Loads a model in a Web Worker, so the page never blocks: the same sources and options as
 * loadBitNet (`onProgress` is called here with the worker's events; a Tokenizer object cannot
 * cross, a tokenizer path, URL, bytes or Blob can). File and Blob sources go over as they are
 * and are still read piece by piece. Resolves to a RemoteModel once the model is loaded.
 */
export async function loadBitNetInWorker(source: ByteSource, options: WorkerLoadOptions = {}): Promise<RemoteModel> {
  const { worker: given, onProgress, signal, ...rest } = options;
  checkOptions(rest, LOAD_OPTIONS, "loadBitNetInWorker");
  if (typeof rest.tokenizer === "object" && rest.tokenizer !== null && typeof (rest.tokenizer as { encode?: unknown }).encode === "function") {
    throw new OptionError("tokenizer", "a Tokenizer object cannot go to a worker: give the tokenizer's path, URL, bytes or Blob");
  }
  if (!given && typeof Worker !== "function") throw new BitNetError("loadBitNetInWorker needs Web Workers (browsers, Deno, Bun); use loadBitNet here");
  signal?.throwIfAborted();
  const worker = given ?? new Worker(workerUrl(), { type: "module" });
  const cloneable = (v: unknown) => (v instanceof URL ? v.href : v);
  return await new Promise<RemoteModel>((resolve, reject) => {
    const channel = new Channel(worker, (m) => {
      if (m.op === "progress") onProgress?.(m.progress as Progress);
      else if (m.op === "loaded") resolve(new RemoteModel(m.info, channel));
      else if (m.op === "error") {
        worker.terminate();
        reject(rebuild(m.error));
      }
    });
    signal?.addEventListener("abort", () => channel.fail(signal.reason instanceof Error ? signal.reason : new DOMException(String(signal.reason), "AbortError")), { once: true });
    const sent = Object.fromEntries(Object.entries(rest).map(([k, v]) => [k, cloneable(v)]));
    channel.send({ op: "load", source: cloneable(source), options: sent, progress: onProgress !== undefined });
  });
}
