// The one place that touches a file system. Paths and file: URLs go through node:fs
// (Node, Deno and Bun all provide it); everything else goes through fetch, which every
// runtime has. Browsers and Workers never reach the node:fs branch.
import { BitNetError } from "../model/errors.ts";

/** A file path, a file: / http(s): URL, a stream of bytes, or bytes already in memory. */
export type ByteSource = string | URL | Uint8Array | ArrayBuffer | ReadableStream<Uint8Array>;

/** Progress of a long operation: `phase` names it, `total` is undefined when unknown. */
export interface Progress {
  phase: "read" | "weights";
  loaded: number;
  total?: number;
}

export interface ReadOptions {
  onProgress?: (p: Progress) => void;
  signal?: AbortSignal;
}

/** Collects a stream into one buffer, preallocated when the length is known (no second copy). */
async function readStream(stream: ReadableStream<Uint8Array>, total: number | undefined, name: string, { onProgress, signal }: ReadOptions): Promise<Uint8Array> {
  const reader = stream.getReader();
  let buffer = new Uint8Array(total ?? 1 << 20), loaded = 0;
  try {
    for (;;) {
      signal?.throwIfAborted();
      let chunk: ReadableStreamReadResult<Uint8Array>;
      try {
        chunk = await reader.read();
      } catch (e) {
        signal?.throwIfAborted();
        throw new BitNetError(`${name}: transfer failed after ${loaded}${total === undefined ? "" : ` of ${total}`} bytes: ${(e as Error).message}`, { cause: e });
      }
      const { done, value } = chunk;
      if (done) break;
      if (total !== undefined && loaded + value.length > total) throw new BitNetError(`${name}: more bytes than the announced ${total}`);
      if (loaded + value.length > buffer.length) {
        const grown = new Uint8Array(Math.max(buffer.length * 2, loaded + value.length));
        grown.set(buffer.subarray(0, loaded));
        buffer = grown;
      }
      buffer.set(value, loaded);
      loaded += value.length;
      onProgress?.({ phase: "read", loaded, total });
    }
  } finally {
    reader.releaseLock();
  }
  if (total !== undefined && loaded !== total) throw new BitNetError(`${name}: ${loaded} bytes arrived, ${total} were announced (truncated transfer)`);
  return loaded === buffer.length ? buffer : buffer.slice(0, loaded);
}

function isUrlString(s: string): boolean {
  return /^(https?|file|data|blob):/i.test(s);
}

/** Reads a whole source into memory, reporting progress for streams and URLs. */
export async function readBytes(source: ByteSource, options: ReadOptions = {}): Promise<Uint8Array> {
  if (source instanceof Uint8Array) return source;
  if (source instanceof ArrayBuffer) return new Uint8Array(source);
  if (typeof ReadableStream !== "undefined" && source instanceof ReadableStream) return readStream(source, undefined, "stream", options);
  source = source as string | URL;
  const url = source instanceof URL ? source : isUrlString(source) ? new URL(source) : null;
  if (url === null || url.protocol === "file:") {
    const fs = await import("node:fs/promises");
    try {
      const bytes = new Uint8Array(await fs.readFile(url ?? (source as string), { signal: options.signal }));
      options.onProgress?.({ phase: "read", loaded: bytes.length, total: bytes.length });
      return bytes;
    } catch (e) {
      throw new BitNetError(`cannot read ${String(source)}: ${(e as Error).message}`, { cause: e });
    }
  }
  let response: Response;
  try {
    response = await fetch(url, { signal: options.signal });
  } catch (e) {
    options.signal?.throwIfAborted();
    throw new BitNetError(`cannot fetch ${url.href}: ${(e as Error).message}`, { cause: e });
  }
  if (!response.ok || !response.body) throw new BitNetError(`cannot fetch ${url.href}: HTTP ${response.status}`);
  const length = response.headers.get("content-length");
  const total = length !== null && /^\d+$/.test(length) && !response.headers.get("content-encoding") ? Number(length) : undefined;
  return readStream(response.body, total, url.href, options);
}

/** Writes bytes to a file path (Node, Deno, Bun). */
export async function writeBytes(path: string, bytes: Uint8Array): Promise<void> {
  const fs = await import("node:fs/promises");
  try {
    await fs.writeFile(path, bytes);
  } catch (e) {
    throw new BitNetError(`cannot write ${path}: ${(e as Error).message}`, { cause: e });
  }
}

/** Whether a path is a directory (false where there is no file system). */
export async function isDirectory(path: ByteSource): Promise<boolean> {
  if (typeof path !== "string" || /^[a-z]+:/i.test(path)) return false;
  try {
    const fs = await import("node:fs/promises");
    return (await fs.stat(path)).isDirectory();
  } catch {
    return false;
  }
}

/** Whether a file exists (false where there is no file system). */
export async function fileExists(path: string): Promise<boolean> {
  try {
    const fs = await import("node:fs/promises");
    return (await fs.stat(path)).isFile();
  } catch {
    return false;
  }
}

/** A human name for a source, for error messages. */
export function sourceName(source: ByteSource): string {
  if (source instanceof Uint8Array || source instanceof ArrayBuffer) return `<${source.byteLength} bytes in memory>`;
  if (typeof ReadableStream !== "undefined" && source instanceof ReadableStream) return "<stream>";
  return String(source);
}
