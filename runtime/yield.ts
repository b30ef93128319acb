// Giving the event loop a turn between tokens, prefill blocks and tensors, so timers,
// abort signals, I/O and a page's rendering run while a model works. A resolved promise
// would not do: it is a microtask, and timers wait for the macrotask queue. In order:
// setImmediate (Node, Deno, Bun: after the loop's timers and I/O, ~2 us); a MessageChannel
// message (browsers, Workers; not first, since Bun runs queued messages ahead of its timers: a
// 5 ms interval fired 11 times in 100 such turns of 6 ms); setTimeout(0) last (clamped to
// 1-4 ms). Not scheduler.yield: Chromium resumes its continuations ahead of queued messages,
// so a model worker that yields so never sees the page's abort message (seen: a Stop clicked
// at token 8 of 310 ended nothing). A MessageChannel gets its own channel per turn, closed on
// arrival, so none is left to keep a process alive.

type SetImmediate = (callback: () => void) => unknown;

/** Resolves after the event loop has run its pending macrotasks (timers, I/O, messages). */
export function yieldToEventLoop(): Promise<void> {
  const setImmediate = (globalThis as { setImmediate?: SetImmediate }).setImmediate;
  if (typeof setImmediate === "function") return new Promise((resolve) => setImmediate(resolve));
  if (typeof MessageChannel === "function") {
    return new Promise((resolve) => {
      const { port1, port2 } = new MessageChannel();
      port1.onmessage = () => {
        port1.close();
        port2.close();
        resolve();
      };
      port2.postMessage(null);
    });
  }
  return new Promise((resolve) => setTimeout(resolve, 0));
}
