// One fuzz case, run in this process: its files written to a folder, then what a user does
// with a model: load, logits, a few generated tokens, a chat reply where there is a template,
// perplexity. The outcome is ok, typed (a BitNetError), untyped (any other throw: a broken
// promise), or silent (non-finite logits or loss with no error: a wrong answer).
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { BitNetError } from "../../core/errors.ts";
import { loadBitNet } from "../../model/load.ts";
import type { FuzzCase } from "./seeds.ts";
import "../../runtime/node.ts";

/** How a case ended. */
export type Outcome = "ok" | "typed" | "untyped" | "silent";

/** A case's files in `dir` (created afresh). */
export function writeCase(c: FuzzCase, dir: string): void {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  for (const [name, bytes] of c.files) {
    if (bytes === "dir") mkdirSync(join(dir, name || "empty"), { recursive: true });
    else writeFileSync(join(dir, name), bytes);
  }
}

// The highest WebAssembly memory any instance reached in this case (the kernels grow it from JS).
let wasmHigh = 0;
const grow = WebAssembly.Memory.prototype.grow;
WebAssembly.Memory.prototype.grow = function (this: WebAssembly.Memory, delta: number) {
  const before = grow.call(this, delta);
  wasmHigh = Math.max(wasmHigh, this.buffer.byteLength);
  return before;
};

/** Runs the case in `dir`; `wasmBytes` is the largest WebAssembly memory it grew. */
export async function exercise(c: Pick<FuzzCase, "entry" | "call">, dir: string): Promise<{ outcome: Outcome; detail: string; wasmBytes: number }> {
  wasmHigh = 0;
  const done = (outcome: Outcome, detail: string) => ({ outcome, detail, wasmBytes: wasmHigh });
  try {
    const model = await loadBitNet(join(dir, c.entry), { simd: "strict", ...c.call?.load });
    try {
      const vocab = model.config.vocabSize;
      const ids = c.call?.ids ?? [1, 2, 3].map((i) => i % vocab);
      const logits = model.logits(ids);
      if (logits.some((row) => row.some((x) => !Number.isFinite(x)))) return done("silent", "non-finite logits");
      if (model.tokenizer) {
        for await (const _ of model.generate("Once upon a time", { temperature: 0, maxTokens: 3, ...c.call?.generate }));
        if (model.tokenizer.chatTemplate) { for await (const _ of model.chat([{ role: "user", content: "Hi" }], { temperature: 0, maxTokens: 2 })); }
      }
      // The loss must be finite; its exp, the perplexity, may overflow to Infinity for a damaged (but finite) model.
      const { loss } = await model.perplexity(ids.length >= 2 ? ids : [ids[0], ids[0]]);
      if (!Number.isFinite(loss)) return done("silent", `loss ${loss}`);
      return done("ok", "");
    } finally {
      model.dispose();
    }
  } catch (e) {
    const error = e as Error;
    const message = `${error?.name}: ${String(error?.message).slice(0, 300)}`;
    return done(e instanceof BitNetError ? "typed" : "untyped", e instanceof BitNetError ? message : `${message}\n${String(error?.stack).split("\n").slice(1, 6).join("\n")}`);
  }
}
