// Command-line options: parsed with node:util's parseArgs (Node, Deno and Bun all have it),
// then converted and range-checked into typed values with errors that name the option.
import { OptionError } from "../core/errors.ts";

export function numberOption(values: Record<string, unknown>, name: string, check: (n: number) => boolean, expected: string): number | undefined {
  const raw = values[name];
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (typeof raw !== "string" || raw.trim() === "" || !Number.isFinite(n) || !check(n)) {
    throw new OptionError(`--${name}`, `expected ${expected}, got ${JSON.stringify(raw)}`);
  }
  return n;
}

export const isPositiveInteger = (n: number) => Number.isInteger(n) && n > 0;
export const isNonNegativeInteger = (n: number) => Number.isInteger(n) && n >= 0;
