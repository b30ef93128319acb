// Progress a user can draw: one stream per phase and file, each monotone, a few events a
// second at most, the last one always (a bar reaches 100%).
import type { Progress } from "./files.ts";

/** Least time between two events of one phase and file, in milliseconds. */
export const PROGRESS_INTERVAL_MS = 250;

/**
 * `onProgress` behind a throttle: per phase and file, the first event, then at most one per
 * PROGRESS_INTERVAL_MS, and always the first one that reaches the total; an event that goes no
 * further than the last one passed on is dropped.
 */
export function throttled(onProgress: (p: Progress) => void): (p: Progress) => void {
  const last = new Map<string, { loaded: number; at: number; complete: boolean }>();
  return (p) => {
    const key = `${p.phase}\u0000${p.file ?? ""}`, now = performance.now(), seen = last.get(key);
    const complete = p.total !== undefined && p.loaded >= p.total;
    if (seen && (complete ? seen.complete || p.loaded < seen.loaded : p.loaded <= seen.loaded || now - seen.at < PROGRESS_INTERVAL_MS)) return;
    last.set(key, { loaded: p.loaded, at: now, complete });
    onProgress(p);
  };
}
