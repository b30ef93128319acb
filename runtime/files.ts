// The one place that touches a file system. Paths and file: URLs go through node:fs
// (Node, Deno and Bun all provide it); everything else goes through fetch, which every
// runtime has. Browsers and Workers never reach the node:fs branch.
// Models are opened as random-access files: the loader reads the header, then each tensor
// straight into WebAssembly memory, so a file is never held whole in the JS heap when its
// source allows piecewise reads (paths; URLs whose server honours Range requests).
import { BitNetError } from "../core/errors.ts";

/** A file path, a file: / http(s): URL, a stream of bytes, or bytes already in memory. */
export type ByteSource = string | URL | Uint8Array | ArrayBuffer | ReadableStream<Uint8Array>;

/** Progress of a long operation: `phase` names it, `total` is undefined when unknown. */
export interface Progress {
  /** What is being loaded: the file's bytes, or the layers. */
  phase: "read" | "weights";
  /** Done so far (bytes or layers). */
  loaded: number;
  /** In all, when known. */
  total?: number;
}

/** Options for reading a source. */
export interface ReadOptions {
  /** Reports reading progress. */
  onProgress?: (p: Progress) => void;
  /** Aborts the reading. */
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
  const response = await fetchOrFail(url, { signal: options.signal });
  if (!response.ok || !response.body) throw new BitNetError(`cannot fetch ${url.href}: HTTP ${response.status}`);
  return readResponse(response, url.href, options);
}

/** A response body in one buffer, preallocated from its content-length when it is exact. */
function readResponse(response: Response, name: string, options: ReadOptions): Promise<Uint8Array> {
  const length = response.headers.get("content-length");
  const total = length !== null && /^\d+$/.test(length) && !response.headers.get("content-encoding") ? Number(length) : undefined;
  return readStream(response.body!, total, name, options);
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

/** Appends text to a file, creating it (Node, Deno, Bun). */
export async function appendText(path: string, text: string): Promise<void> {
  const fs = await import("node:fs/promises");
  try {
    await fs.appendFile(path, text);
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

/** HTTP statuses that mean "no such file" for a sibling lookup: 404 / 410, and 401 / 403, which
 *  Hugging Face (gated or missing entries) and S3 (missing keys without list rights) send. */
const ABSENT_STATUSES = new Set([401, 403, 404, 410]);

/**
 * The bytes of a file that may not exist: a path or file: URL (absent: not a regular file) or an
 * http(s) URL (absent: HTTP 404, 410, 401 or 403, with `status` telling which). Other failures
 * (a 500, a dropped connection, a file that exists but cannot be read) are errors.
 */
export async function readIfPresent(location: string | URL, options: ReadOptions = {}): Promise<{ bytes: Uint8Array } | { bytes: null; status?: number }> {
  const url = location instanceof URL ? location : isUrlString(location) ? new URL(location) : null;
  if (url && (url.protocol === "http:" || url.protocol === "https:")) {
    const response = await fetchOrFail(url, { signal: options.signal });
    if (ABSENT_STATUSES.has(response.status)) {
      await response.body?.cancel();
      return { bytes: null, status: response.status };
    }
    if (!response.ok || !response.body) throw new BitNetError(`cannot fetch ${url.href}: HTTP ${response.status}`);
    return { bytes: await readResponse(response, url.href, options) };
  }
  if (url && url.protocol !== "file:") return { bytes: null };
  try {
    const fs = await import("node:fs/promises");
    if (!(await fs.stat(url ?? (location as string))).isFile()) return { bytes: null };
  } catch {
    return { bytes: null };
  }
  return { bytes: await readBytes(url ?? location, options) };
}

/** A file read piece by piece. */
export interface RandomAccessFile {
  /** Its name in messages (path or URL). */
  readonly name: string;
  /** Size in bytes. */
  readonly size: number;
  /** Reads bytes [offset, offset + length) into `into` (default: a fresh array, or a view of memory). */
  read(offset: number, length: number, into?: Uint8Array): Promise<Uint8Array>;
  /** Releases the file handle or connection. */
  close(): Promise<void>;
}

function checkRange(file: { name: string; size: number }, offset: number, length: number, into?: Uint8Array): void {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > file.size) {
    throw new BitNetError(`${file.name}: read of bytes ${offset}..${offset + length} outside the file (${file.size} bytes)`);
  }
  if (into && into.length !== length) throw new BitNetError(`${file.name}: read target holds ${into.length} bytes, ${length} requested`);
}

/** Bytes already in memory as a file. */
export function memoryFile(bytes: Uint8Array, name: string): RandomAccessFile {
  return {
    name, size: bytes.length,
    read(offset, length, into) {
      checkRange(this, offset, length, into);
      const part = bytes.subarray(offset, offset + length);
      if (into) into.set(part);
      return Promise.resolve(into ?? part);
    },
    close: () => Promise.resolve(),
  };
}

/** Several files (safetensors shards) as one, back to back; a read must stay inside one part. */
export function concatFiles(parts: RandomAccessFile[], name: string): { file: RandomAccessFile; bases: number[] } {
  const bases: number[] = [];
  let size = 0;
  for (const p of parts) {
    bases.push(size);
    size += p.size;
  }
  const file: RandomAccessFile = {
    name, size,
    read(offset, length, into) {
      checkRange(this, offset, length, into);
      let i = bases.length - 1;
      while (i > 0 && bases[i] > offset) i--;
      if (offset + length > bases[i] + parts[i].size) return Promise.reject(new BitNetError(`${name}: read of bytes ${offset}..${offset + length} spans two shards`));
      return parts[i].read(offset - bases[i], length, into);
    },
    close: () => Promise.all(parts.map((p) => p.close())).then(() => undefined),
  };
  return { file, bases };
}

const MAX_READ = 1 << 30; // node:fs reads at most 2 GiB per call

async function openPath(path: string | URL): Promise<RandomAccessFile> {
  const fs = await import("node:fs/promises");
  let handle: Awaited<ReturnType<typeof fs.open>>;
  try {
    handle = await fs.open(path, "r");
  } catch (e) {
    throw new BitNetError(`cannot read ${String(path)}: ${(e as Error).message}`, { cause: e });
  }
  const size = (await handle.stat()).size, name = String(path);
  return {
    name, size,
    async read(offset, length, into) {
      checkRange({ name, size }, offset, length, into);
      const buffer = into ?? new Uint8Array(length);
      for (let done = 0; done < length;) {
        const { bytesRead } = await handle.read(buffer, done, Math.min(length - done, MAX_READ), offset + done);
        if (bytesRead === 0) throw new BitNetError(`${name}: file ended at byte ${offset + done} while reading ${offset}..${offset + length} (changed while open?)`);
        done += bytesRead;
      }
      return buffer;
    },
    close: () => handle.close(),
  };
}

async function fetchOrFail(url: URL, init: RequestInit): Promise<Response> {
  try {
    return await fetch(url, init);
  } catch (e) {
    (init.signal as AbortSignal | undefined)?.throwIfAborted();
    throw new BitNetError(`cannot fetch ${url.href}: ${(e as Error).message}`, { cause: e });
  }
}

/** A URL read with HTTP Range requests when the server honours them, else downloaded whole. */
async function openUrl(url: URL, options: ReadOptions): Promise<RandomAccessFile> {
  const signal = options.signal;
  const probe = await fetchOrFail(url, { headers: { Range: "bytes=0-0" }, signal });
  const total = /^bytes 0-0\/(\d+)$/.exec(probe.headers.get("content-range") ?? "");
  if (probe.status !== 206 || !total) {
    if (!probe.ok || !probe.body) throw new BitNetError(`cannot fetch ${url.href}: HTTP ${probe.status}`);
    return memoryFile(await readResponse(probe, url.href, options), url.href);
  }
  await probe.body?.cancel();
  const size = Number(total[1]);
  return {
    name: url.href, size,
    async read(offset, length, into) {
      checkRange({ name: url.href, size }, offset, length, into);
      const buffer = into ?? new Uint8Array(length);
      if (length === 0) return buffer;
      const response = await fetchOrFail(url, { headers: { Range: `bytes=${offset}-${offset + length - 1}` }, signal });
      if (response.status !== 206 || !response.body) throw new BitNetError(`${url.href}: HTTP ${response.status} to a Range request for bytes ${offset}..${offset + length}`);
      let done = 0;
      const reader = response.body.getReader();
      try {
        for (;;) {
          const { done: end, value } = await reader.read().catch((e) => {
            signal?.throwIfAborted();
            throw new BitNetError(`${url.href}: transfer failed after ${done} of ${length} bytes: ${(e as Error).message}`, { cause: e });
          });
          if (end) break;
          if (done + value.length > length) throw new BitNetError(`${url.href}: server sent more than the ${length} bytes asked for`);
          buffer.set(value, done);
          done += value.length;
        }
      } finally {
        reader.releaseLock();
      }
      if (done !== length) throw new BitNetError(`${url.href}: ${done} bytes arrived for a range of ${length} (truncated transfer)`);
      return buffer;
    },
    close: () => Promise.resolve(),
  };
}

/** Reports every read as progress of phase "read" and honours the abort signal. */
function watched(file: RandomAccessFile, { onProgress, signal }: ReadOptions): RandomAccessFile {
  if (!onProgress && !signal) return file;
  let loaded = 0;
  return {
    name: file.name, size: file.size,
    async read(offset, length, into) {
      signal?.throwIfAborted();
      const bytes = await file.read(offset, length, into);
      loaded += length;
      onProgress?.({ phase: "read", loaded: Math.min(loaded, file.size), total: file.size });
      return bytes;
    },
    close: () => file.close(),
  };
}

/** Opens any source for random access: paths and ranged URLs are read piece by piece;
 *  streams and servers without Range support are read into memory first. */
export async function openFile(source: ByteSource, options: ReadOptions = {}): Promise<RandomAccessFile> {
  const name = sourceName(source);
  if (source instanceof Uint8Array || source instanceof ArrayBuffer) return memoryFile(await readBytes(source), name);
  if (typeof ReadableStream !== "undefined" && source instanceof ReadableStream) return memoryFile(await readBytes(source, options), name);
  const url = source instanceof URL ? source : isUrlString(source as string) ? new URL(source as string) : null;
  if (url === null || url.protocol === "file:") return watched(await openPath(url ?? (source as string)), options);
  if (url.protocol === "http:" || url.protocol === "https:") return watched(await openUrl(url, options), options);
  return memoryFile(await readBytes(url, options), name);
}

/** Where a writer puts its bytes, in order. */
export interface ByteSink {
  write(bytes: Uint8Array): Promise<void>;
  close(): Promise<void>;
}

/** A sink that writes a file (Node, Deno, Bun). */
export async function fileSink(path: string): Promise<ByteSink> {
  const fs = await import("node:fs/promises");
  const fail = (e: unknown) => new BitNetError(`cannot write ${path}: ${(e as Error).message}`, { cause: e });
  const handle = await fs.open(path, "w").catch((e) => Promise.reject(fail(e)));
  return {
    async write(bytes) {
      for (let done = 0; done < bytes.length;) {
        const { bytesWritten } = await handle.write(bytes, done, Math.min(bytes.length - done, MAX_READ)).catch((e) => Promise.reject(fail(e)));
        done += bytesWritten;
      }
    },
    close: () => handle.close(),
  };
}

/** A sink that collects everything into one array (`bytes()` after `close`). */
export function memorySink(): ByteSink & { bytes(): Uint8Array } {
  const chunks: Uint8Array[] = [];
  return {
    write(bytes) {
      chunks.push(bytes.slice());
      return Promise.resolve();
    },
    close: () => Promise.resolve(),
    bytes() {
      const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
      let at = 0;
      for (const c of chunks) {
        out.set(c, at);
        at += c.length;
      }
      return out;
    },
  };
}

/** A human name for a source, for error messages. */
export function sourceName(source: ByteSource): string {
  if (source instanceof Uint8Array || source instanceof ArrayBuffer) return `<${source.byteLength} bytes in memory>`;
  if (typeof ReadableStream !== "undefined" && source instanceof ReadableStream) return "<stream>";
  return String(source);
}
