// Strict options: every options object of the API is checked against the keys it knows, so
// a misspelt or foreign option ({ max_new_tokens }, { cotextLength }) is an error naming it
// and the nearest known key instead of being silently ignored.
import { OptionError } from "./errors.ts";

/** What one option accepts: a type name checked by typeof, or a predicate with its description. */
export type OptionRule = "number" | "string" | "boolean" | "function" | "object" | { test: (v: unknown) => boolean; expected: string };

/** The known keys of an options object and what each accepts. */
export type OptionRules = Record<string, OptionRule>;

/** The rule of every `signal` option. */
export const ABORT_SIGNAL: OptionRule = {
  test: (v) => typeof (v as AbortSignal)?.aborted === "boolean" && typeof (v as AbortSignal).addEventListener === "function",
  expected: "an AbortSignal",
};

/** The known key closest to `name` (edit distance, ignoring case and separators), if one is close enough to suggest. */
export function nearestName(name: string, known: Iterable<string>): string | undefined {
  let best: string | undefined, bestDistance = Infinity;
  for (const k of known) {
    const d = editDistance(fold(name), fold(k));
    if (d < bestDistance) [best, bestDistance] = [k, d];
  }
  return best !== undefined && bestDistance <= Math.max(2, Math.floor(best.length / 3)) ? best : undefined;
}

/** " (did you mean X?)" when a known name is close to `name`, else "". */
export function didYouMean(name: string, known: Iterable<string>): string {
  const near = nearestName(name, known);
  return near ? ` (did you mean ${near}?)` : "";
}

/** Throws OptionError for an unknown key or a value of the wrong type; undefined values pass. */
export function checkOptions(options: unknown, rules: OptionRules, what: string): void {
  if (options === undefined) return;
  if (options === null || typeof options !== "object" || Array.isArray(options)) {
    throw new OptionError(what, `expected an options object, got ${describe(options)}`);
  }
  for (const [key, value] of Object.entries(options)) {
    const rule = Object.hasOwn(rules, key) ? rules[key] : undefined;
    if (rule === undefined) throw new OptionError(key, `is not an option of ${what}${didYouMean(key, Object.keys(rules))}; known: ${Object.keys(rules).join(", ")}`);
    if (value === undefined) continue;
    const ok = typeof rule === "string" ? typeof value === rule && (rule !== "object" || value !== null) && (rule !== "number" || !Number.isNaN(value)) : rule.test(value);
    if (!ok) throw new OptionError(key, `expected ${typeof rule === "string" ? `a ${rule}` : rule.expected}, got ${describe(value)}`);
  }
}

/** `table[key]` when `key` is the table's own entry: a name read from a file or given by a caller
 *  ("toString", "__proto__") never reaches Object.prototype. */
export function own<T>(table: Readonly<Record<string, T>>, key: string): T | undefined {
  return typeof key === "string" && Object.hasOwn(table, key) ? table[key] : undefined;
}

/** A short description of a value for messages: `-0.5`, `the string "2"`, `null`, `an array`. */
export function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "string") return `the string ${JSON.stringify(value.length > 40 ? value.slice(0, 40) + "..." : value)}`;
  if (typeof value === "object") return "an object";
  return typeof value === "number" || typeof value === "boolean" ? String(value) : `the ${typeof value} ${String(value)}`;
}

/** Case and separators do not count: max_new_tokens is near maxTokens, top-p is topP. */
const fold = (name: string) => name.toLowerCase().replace(/[-_ ]/g, "");

/** Levenshtein distance, for suggestions between short names. */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) row[j] = Math.min(previous[j] + 1, row[j - 1] + 1, previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    previous = row;
  }
  return previous[b.length];
}
