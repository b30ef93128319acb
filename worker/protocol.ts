// The messages between a page and the worker that runs its model (worker/entry.ts runs in the
// worker, worker/client.ts is the page's side). Everything in them survives structured cloning:
// functions and signals stay on the page's side (progress and tokens come back as messages,
// an abort goes over as one), errors travel as their name, message and fields.

/** What a call is on: 0 is the model, other numbers are its sessions. */
export type Target = number;

/** The methods a call may name, by what they are on, and whether they stream tokens. */
export const METHODS = {
  model: { generate: "stream", chat: "stream", complete: "value", createSession: "session", dispose: "value" },
  session: { generate: "stream", chatStream: "stream", prompt: "value", chat: "value", reset: "value", dispose: "value" },
} as const;

export type ModelMethod = keyof typeof METHODS.model;
export type SessionMethod = keyof typeof METHODS.session;

/** An error as it crosses: its class name, message and own fields (a HubError's id and status, an OptionError's option). */
export interface ErrorRecord {
  name: string;
  message: string;
  fields: Record<string, unknown>;
}

/** Page -> worker. */
export type ToWorker =
  | { op: "load"; source: unknown; options: Record<string, unknown>; progress: boolean }
  | { op: "call"; call: number; target: Target; method: ModelMethod | SessionMethod; args: unknown[] }
  | { op: "abort"; call: number; reason: string }
  // The page took a streamed token: the worker computes at most one token ahead of what was taken.
  | { op: "pull"; call: number };

/** What the page learns of the loaded model. */
export interface ModelInfo {
  source: string;
  simd: "relaxed" | "strict";
  threads: number;
  chatTemplate: string | undefined;
  config: Record<string, unknown>;
  memoryBytes: number;
}

/** Worker -> page. */
export type FromWorker =
  | { op: "progress"; progress: { phase: string; file?: string; loaded: number; total?: number } }
  | { op: "loaded"; info: ModelInfo }
  | { op: "token"; call: number; token: { token: number; text: string } }
  | { op: "return"; call: number; value: unknown }
  | { op: "error"; call: number | null; error: ErrorRecord };

/** An error as a record that crosses postMessage. */
export function errorRecord(e: unknown): ErrorRecord {
  if (!(e instanceof Error) && !(typeof DOMException === "function" && e instanceof DOMException)) return { name: "Error", message: String(e), fields: {} };
  const error = e as Error, fields: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(error)) if (key !== "name" && key !== "message" && (typeof value !== "object" || value === null)) fields[key] = value;
  return { name: error.name, message: error.message, fields };
}
