// Chat templates come from checkpoints, so they are untrusted programs: @huggingface/jinja
// runs them with no limit, and `{% for i in range(10**9) %}` would take the process's memory
// and time. Rendering here is bounded: a budget of evaluation steps, and `range` refused past
// a length, both as FormatErrors naming the model. The library has no hook for either, so its
// Interpreter.evaluate and the `range` global are wrapped, and the limits apply only while a
// render of ours runs (other users of the library in the process see it unchanged).
import { Environment, Interpreter, Template } from "@huggingface/jinja";
import { FormatError } from "../core/errors.ts";

/** Evaluation steps one render may take (the Llama 3 template takes about 40 per message). */
export const TEMPLATE_STEPS = 1_000_000;
/** The longest `range()` a template may build. */
export const TEMPLATE_RANGE = 100_000;

class OverBudget extends Error {}
let stepsLeft = Infinity;

const evaluate = Interpreter.prototype.evaluate;
Interpreter.prototype.evaluate = function (this: Interpreter, ...args: Parameters<typeof evaluate>) {
  if (--stepsLeft < 0) throw new OverBudget(`more than ${TEMPLATE_STEPS} evaluation steps`);
  return evaluate.apply(this, args);
};
const set = Environment.prototype.set;
Environment.prototype.set = function (this: Environment, name: string, value: unknown) {
  if (name !== "range" || typeof value !== "function" || stepsLeft === Infinity) return set.call(this, name, value);
  const range = value as (start: number, stop?: number, step?: number) => number[];
  return set.call(this, name, (...args: [number, number?, number?]) => {
    const [start, stop, step = 1] = args, [from, to] = stop === undefined ? [0, start] : [start, stop];
    if (Math.abs((to - from) / step) > TEMPLATE_RANGE) throw new OverBudget(`range(${args.join(", ")}) is longer than ${TEMPLATE_RANGE}`);
    return range(...args);
  });
};

/** Renders a checkpoint's template with `context`, within the limits; any failure is a FormatError naming `source`. */
export function renderTemplate(template: string, context: Record<string, unknown>, source: string): string {
  stepsLeft = TEMPLATE_STEPS;
  try {
    const rendered = new Template(template).render(context);
    if (typeof rendered !== "string") throw new Error("it did not render to text");
    return rendered;
  } catch (e) {
    throw new FormatError(source, `its chat template cannot be used: ${(e as Error)?.message ?? e}`, { cause: e });
  } finally {
    stepsLeft = Infinity;
  }
}
