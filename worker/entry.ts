// The script of the worker loadBitNetInWorker starts (worker/client.ts): it loads one model with
// the web entry's loadBitNet (hub ids through the OPFS cache), then runs the calls the page
// sends on it and on its sessions, streaming tokens back as the page takes them. Generation
// yields to the event loop between tokens, so an abort message is seen within one token.
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
// Per streaming call: the tokens the page has taken, and who waits for the next to be.
const taken = new Map<number, { count: number; wake: (() => void) | null }>();

/** Resolves once the page has taken `n` tokens of `call`, or the call is aborted. */
function tokensTaken(call: number, n: number): Promise<void> | void {
  const t = taken.get(call)!, signal = running.get(call)!.signal;
  if (t.count >= n || signal.aborted) return;
  return new Promise<void>((resolve) => {
    const done = () => ((t.wake = null), signal.removeEventListener("abort", done), resolve());
    t.wake = () => t.count >= n && done();
    signal.addEventListener("abort", done);
  });
}

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
    // Pulled as the page reads, one token ahead (as an async generator in the page's own
    // thread would be, zero ahead): Stop ends the stream within one token.
    const tokens = fn(...args) as AsyncGenerator<{ token: number; text: string }, unknown>;
    taken.set(call, { count: 0, wake: null });
    let step, sent = 0;
    while (!(step = await tokens.next()).done) {
      post({ op: "token", call, token: step.value });
      await tokensTaken(call, sent++);
    }
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
  } else if (data.op === "pull") {
    const t = taken.get(data.call);
    if (t) {
      t.count++;
      t.wake?.();
    }
  } else {
    run(data).catch((e) => post({ op: "error", call: data.call, error: errorRecord(e) })).finally(() => (running.delete(data.call), taken.delete(data.call)));
  }
});
