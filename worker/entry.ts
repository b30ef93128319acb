// The script of the worker loadBitNetInWorker starts (worker/client.ts): it loads one model with
// the web entry's loadBitNet (hub ids through the OPFS cache), then runs the calls the page
// sends on it and on its sessions, streaming tokens back as they come. Generation yields to the
// event loop between tokens, so an abort message is seen within one token.
import { loadBitNet } from "../model/load.ts";
import type { BitNetModel } from "../model/model.ts";
import type { Session } from "../model/session.ts";
import type { Progress } from "../runtime/files.ts";
import { errorRecord, type FromWorker, METHODS, type ToWorker } from "./protocol.ts";

interface WorkerScope {
  postMessage(message: FromWorker): void;
  addEventListener(type: "message", listener: (event: { data: ToWorker }) => void): void;
}
const scope = globalThis as unknown as WorkerScope;
const post = (message: FromWorker) => scope.postMessage(message);

let model: BitNetModel | null = null;
let loading: Promise<unknown> | null = null;
const sessions = new Map<number, Session>();
// The abort controllers of calls under way, by call number.
const running = new Map<number, AbortController>();

/** A call's options with the signal the page's abort message fires. */
function withSignal(call: number, args: unknown[], at: number): unknown[] {
  const controller = new AbortController();
  running.set(call, controller);
  const options = { ...(args[at] as object | undefined), signal: controller.signal };
  return [...args.slice(0, at), options];
}

async function run(message: Extract<ToWorker, { op: "call" }>): Promise<void> {
  const { call, target, method } = message;
  await loading;
  const on: BitNetModel | Session | undefined = target === 0 ? model ?? undefined : sessions.get(target);
  const kind = target === 0 ? METHODS.model : METHODS.session;
  const mode = (kind as Record<string, string>)[method];
  if (!on || !mode) throw new Error(`${target === 0 ? "the model" : `session ${target}`} has no method ${method} here (or is disposed)`);
  // The options are the last argument of every method that takes them: generate(input, options), createSession(options).
  const args = mode === "session" || method === "reset" || method === "dispose" ? message.args : withSignal(call, message.args, 1);
  const fn = (on as unknown as Record<string, (...a: unknown[]) => unknown>)[method].bind(on);
  if (mode === "stream") {
    const tokens = fn(...args) as AsyncGenerator<{ token: number; text: string }, unknown>;
    let step;
    while (!(step = await tokens.next()).done) post({ op: "token", call, token: step.value });
    return post({ op: "return", call, value: step.value });
  }
  if (mode === "session") {
    const [options, id] = args as [object, number]; // the page numbers its sessions
    sessions.set(id, fn(options) as Session);
    return post({ op: "return", call, value: id });
  }
  const value = await fn(...args);
  if (method === "dispose") {
    if (target === 0) model = null;
    else sessions.delete(target);
  }
  post({ op: "return", call, value: value ?? null });
}

scope.addEventListener("message", ({ data }) => {
  if (data.op === "load") {
    const options = { ...data.options, ...(data.progress ? { onProgress: (progress: Progress) => post({ op: "progress", progress }) } : {}) };
    loading = loadBitNet(data.source as string, options).then((m) => {
      model = m;
      post({ op: "loaded", info: { source: m.source, simd: m.simd, threads: m.threads, chatTemplate: m.chatTemplate, config: { ...m.config }, memoryBytes: m.memoryBytes } });
    }, (e) => post({ op: "error", call: null, error: errorRecord(e) }));
  } else if (data.op === "abort") {
    running.get(data.call)?.abort(new DOMException(data.reason, "AbortError"));
  } else {
    run(data).catch((e) => post({ op: "error", call: data.call, error: errorRecord(e) })).finally(() => running.delete(data.call));
  }
});
