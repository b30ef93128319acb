// Bytes in and out, web-standard only: memory, Blob / File (read lazily with slice), streams,
// and URLs through fetch (HTTP Range requests when the server honours them). File paths go
// through a pluggable FileSystem that an entry installs: the Node / Deno / Bun entry (mod.ts)
// installs node:fs (runtime/node.ts); the web entry (web.ts) installs none, so a path there is
// an error saying what to pass instead, never a fetch of a relative URL. This module imports
// nothing from node: (tsconfig.web.json checks the whole web graph without Node's types).
// Models are opened as random-access files: the loader reads the header, then each tensor
// straight into WebAssembly memory, so a file is never held whole in the JS heap when its
// source allows piecewise reads (paths, Blobs, URLs whose server honours Range requests).
import { BitNetError, OptionError } from "../core/errors.ts";

/**
 * A file path (needs the Node / Deno / Bun entry, or a FileSystem given to useFileSystem), a
 * file: / http(s): URL, a Blob or File (read piece by piece), a stream of bytes, or bytes in memory.
 */
export type ByteSource = string | URL | Uint8Array | ArrayBuffer | Blob | ReadableStream<Uint8Array>;

/** Progress of a long operation: `phase` names it, `file` what it works on, `total` is undefined when unknown. */
export interface Progress {
  /** What is being done: a file downloaded into the cache, a file's bytes read, or the layers built. */
  phase: "download" | "read" | "weights";
  /** The file (a path, URL or a hub repo's file name) the event is about. */
  file?: string;
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
  /**
   * How long an http(s) transfer may make no progress (no response yet, or no byte of the body)
   * before it fails with a BitNetError naming the URL, in milliseconds: default 30000
   * (DEFAULT_STALL_TIMEOUT_MS); Infinity waits forever. It bounds silence, not the whole
   * transfer: a slow download that keeps sending bytes never trips it (`signal` bounds the whole).
   */
  stallTimeoutMs?: number;
}

/** How long an http(s) transfer may make no progress before it fails, unless `stallTimeoutMs` says otherwise. */
export const DEFAULT_STALL_TIMEOUT_MS = 30_000;
// setTimeout's longest delay (a longer one fires at once).
const MAX_TIMER_MS = 2 ** 31 - 1;

/** The stall limit of `options`, checked: a number of milliseconds > 0 up to MAX_TIMER_MS, or Infinity. */
function stallLimit(options: ReadOptions): number {
  const ms = options.stallTimeoutMs ?? DEFAULT_STALL_TIMEOUT_MS;
  if (typeof ms !== "number" || !(ms > 0) || (ms > MAX_TIMER_MS && ms !== Infinity)) {
    throw new OptionError("stallTimeoutMs", `expected a number of milliseconds from 1 to ${MAX_TIMER_MS}, or Infinity, got ${typeof ms === "number" ? ms : typeof ms}`);
  }
  return ms;
}

const ignore = () => {};

/**
 * One http(s) exchange under a stall limit: its fetch and each read of its body must make
 * progress within the limit, else the exchange is aborted (its connection dropped) and the wait
 * fails with a BitNetError naming the URL. The caller's signal aborts it too, with its reason.
 */
export class Exchange {
  readonly #controller = new AbortController();
  readonly #ms: number;
  readonly #unlink: () => void;

  constructor(readonly url: URL, options: ReadOptions) {
    this.#ms = stallLimit(options);
    const outer = options.signal, controller = this.#controller;
    const onAbort = () => controller.abort(outer!.reason);
    if (outer?.aborted) onAbort();
    outer?.addEventListener("abort", onAbort, { once: true });
    this.#unlink = () => outer?.removeEventListener("abort", onAbort);
  }

  /** Aborted by the caller's signal (with its reason) or by a stall (with the stall's error). */
  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  /** `promise`, unless it does not settle within the limit: then the exchange is aborted and a BitNetError says `what` did not come. */
  async within<T>(promise: Promise<T>, what: () => string): Promise<T> {
    if (this.#ms === Infinity) return promise;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const stalled = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const e = new BitNetError(`${this.url.href}: ${what()} within ${this.#ms} ms (stalled transfer; the stallTimeoutMs option sets the limit)`);
        promise.catch(ignore); // it rejects once the connection is dropped: nobody waits for it any more
        this.#controller.abort(e);
        reject(e);
      }, this.#ms);
    });
    try {
      return await Promise.race([promise, stalled]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Fetches the URL (or `url`, a redirect's target) under the limit, until its response headers arrive. */
  fetch(headers?: Record<string, string>, redirect: RequestRedirect = "follow", url: URL = this.url): Promise<Response> {
    return this.within(fetchOrFail(url, { headers, redirect, signal: this.signal }), () => "no response");
  }

  /** The next chunk of a body under the limit (`progress`: how far the body got, for the message). */
  read(reader: ReadableStreamDefaultReader<Uint8Array>, progress: () => string): Promise<ReadableStreamReadResult<Uint8Array>> {
    return this.within(reader.read(), () => `no bytes ${progress()}`);
  }

  /** Ends the exchange: drops the connection if a body is left unread, stops following the caller's signal. */
  end(): void {
    this.#controller.abort();
    this.#unlink();
  }
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

/** Where a writer puts its bytes, in order. */
export interface ByteSink {
  /** Appends bytes (the sink may keep `bytes` only until the returned promise settles). */
  write(bytes: Uint8Array): Promise<void>;
  /** Flushes and releases the sink: a file sink's file appears complete under its name only now. */
  close(): Promise<void>;
  /** Releases the sink and discards what was written (a file sink leaves no file behind). */
  abort(): Promise<void>;
}

/**
 * What file paths need from a runtime: exactly the operations the loader, the tokenizer lookup
 * and the command line use. The Node / Deno / Bun entry installs one on node:fs; give your own
 * (an origin-private file system, a virtual one in tests) to useFileSystem. Paths reach it as
 * given; file: URLs as URL objects. Its failures are reported as BitNetErrors naming the path.
 */
export interface FileSystem {
  /** Opens a file for random access (reads arrive with their range already checked against `size`). */
  open(path: string | URL): Promise<RandomAccessFile>;
  /** The whole file. */
  readFile(path: string | URL, signal?: AbortSignal): Promise<Uint8Array>;
  /** Whether a regular file is there (false when nothing is, or it cannot be looked at). */
  isFile(path: string | URL): Promise<boolean>;
  /** Whether a directory is there (false when nothing is, or it cannot be looked at). */
  isDirectory(path: string | URL): Promise<boolean>;
  /** Creates or replaces a file with these bytes. */
  writeFile(path: string, bytes: Uint8Array): Promise<void>;
  /** Appends text (UTF-8) to a file, creating it. */
  appendFile(path: string, text: string): Promise<void>;
  /** A sink that writes a file: to a temporary name beside it, renamed to `path` by close(), removed by abort(). */
  sink(path: string): Promise<ByteSink>;
}

let fileSystem: FileSystem | null = null;

/**
 * Installs the file system that paths (and file: URLs) go through; null removes it. The Node /
 * Deno / Bun entry ("bitnet-wasm", "jsr:@bitnet/wasm") installs node:fs on import; the web
 * entry ("bitnet-wasm/web") installs none, so there a path is an error unless you give one here.
 */
export function useFileSystem(fs: FileSystem | null): void {
  fileSystem = fs;
}

/** The error for a path where no file system is installed: what to import or pass instead. */
function noFileSystem(path: string | URL, cause?: unknown): BitNetError {
  const what = path instanceof URL ? `the file: URL ${path.href}` : `the path ${JSON.stringify(path)}`;
  return new BitNetError(
    `cannot read ${what}: file paths need the Node / Deno / Bun entry ("bitnet-wasm" or "jsr:@bitnet/wasm", which installs node:fs), ` +
      `and this program has no file system installed (the web entry, for browsers and Workers). Pass an http(s) URL ` +
      `(new URL(path, location.href) for one relative to a page), a Blob or File, a ReadableStream or the bytes instead`,
    cause === undefined ? undefined : { cause },
  );
}

/** A failure of the installed file system as a BitNetError naming the path (an abort stays the abort). */
function fsError(verb: "read" | "write", path: string | URL, e: unknown, signal?: AbortSignal): unknown {
  signal?.throwIfAborted();
  if (e instanceof BitNetError) return e;
  return new BitNetError(`cannot ${verb} ${String(path)}: ${(e as Error).message}`, { cause: e });
}

/** The installed file system, or the error saying a path needs one. */
function needFileSystem(path: string | URL): FileSystem {
  if (!fileSystem) throw noFileSystem(path);
  return fileSystem;
}

/**
 * Collects a stream into one buffer, preallocated when the length is known (no second copy);
 * a response body's stream reads under its exchange's stall limit.
 */
async function readStream(
  stream: ReadableStream<Uint8Array>,
  total: number | undefined,
  name: string,
  { onProgress, signal }: ReadOptions,
  exchange?: Exchange,
): Promise<Uint8Array> {
  let reader: ReadableStreamDefaultReader<Uint8Array>;
  try {
    reader = stream.getReader();
  } catch (e) {
    throw new BitNetError(`${name}: cannot be read: ${(e as Error).message}`, { cause: e }); // Bun opens a file: URL's file here
  }
  let buffer = new Uint8Array(total ?? 1 << 20), loaded = 0;
  const progress = () => `after ${loaded}${total === undefined ? "" : ` of ${total}`} bytes`;
  try {
    for (;;) {
      signal?.throwIfAborted();
      let chunk: ReadableStreamReadResult<Uint8Array>;
      try {
        chunk = await (exchange ? exchange.read(reader, progress) : reader.read());
      } catch (e) {
        signal?.throwIfAborted();
        if (e instanceof BitNetError) throw e; // a stall
        throw new BitNetError(`${name}: transfer failed ${progress()}: ${(e as Error).message}`, { cause: e });
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
      onProgress?.({ phase: "read", file: name, loaded, total });
    }
  } finally {
    reader.releaseLock();
  }
  if (total === undefined) onProgress?.({ phase: "read", file: name, loaded, total: loaded }); // the total is known now
  if (total !== undefined && loaded !== total) throw new BitNetError(`${name}: ${loaded} bytes arrived, ${total} were announced (truncated transfer)`);
  return loaded === buffer.length ? buffer : buffer.slice(0, loaded);
}

function isUrlString(s: string): boolean {
  return /^(https?|file|data|blob):/i.test(s);
}

const isBlob = (v: unknown): v is Blob => typeof Blob !== "undefined" && v instanceof Blob;
const isStream = (v: unknown): v is ReadableStream<Uint8Array> => typeof ReadableStream !== "undefined" && v instanceof ReadableStream;

/** A string or URL source as a URL, or null for a plain path. */
function urlOf(source: string | URL): URL | null {
  return source instanceof URL ? source : isUrlString(source) ? new URL(source) : null;
}

/** Reads a whole source into memory, reporting progress for streams, Blobs and URLs. */
export async function readBytes(source: ByteSource, options: ReadOptions = {}): Promise<Uint8Array> {
  stallLimit(options); // checked whatever the source
  if (source instanceof Uint8Array) return source;
  if (source instanceof ArrayBuffer) return new Uint8Array(source);
  if (isBlob(source)) return readStream(source.stream(), source.size, sourceName(source), options);
  if (isStream(source)) return readStream(source, undefined, "stream", options);
  const url = urlOf(source);
  if (url === null || (url.protocol === "file:" && fileSystem)) {
    const path = url ?? (source as string), fs = needFileSystem(path);
    let bytes: Uint8Array;
    try {
      bytes = await fs.readFile(path, options.signal);
    } catch (e) {
      throw fsError("read", path, e, options.signal);
    }
    options.onProgress?.({ phase: "read", file: String(path), loaded: bytes.length, total: bytes.length });
    return bytes;
  }
  return fetchWhole(url, options);
}

/** A URL's body in one buffer (anything but a 2xx with a body is an error naming the URL and the status). */
async function fetchWhole(url: URL, options: ReadOptions): Promise<Uint8Array> {
  const exchange = new Exchange(url, options);
  try {
    const response = await exchange.fetch();
    if (!response.ok || !response.body) throw new BitNetError(`cannot fetch ${url.href}: HTTP ${response.status}`);
    return await readResponse(response, url.href, options, exchange);
  } finally {
    exchange.end();
  }
}

/** The exact length a response announces (content-length of an unencoded body), if it does. */
function announcedLength(response: Response): number | undefined {
  const length = response.headers.get("content-length");
  return length !== null && /^\d+$/.test(length) && !response.headers.get("content-encoding") ? Number(length) : undefined;
}

/** A response body in one buffer, preallocated from its content-length when it is exact. */
function readResponse(response: Response, name: string, options: ReadOptions, exchange?: Exchange): Promise<Uint8Array> {
  return readStream(response.body!, announcedLength(response), name, options, exchange);
}

/** Writes bytes to a file path (through the installed file system). */
export async function writeBytes(path: string, bytes: Uint8Array): Promise<void> {
  const fs = needFileSystem(path);
  try {
    await fs.writeFile(path, bytes);
  } catch (e) {
    throw fsError("write", path, e);
  }
}

/** Appends text to a file, creating it (through the installed file system). */
export async function appendText(path: string, text: string): Promise<void> {
  const fs = needFileSystem(path);
  try {
    await fs.appendFile(path, text);
  } catch (e) {
    throw fsError("write", path, e);
  }
}

/** Whether a source is a directory path (false for anything else, and where no file system is installed). */
export function isDirectory(path: ByteSource): Promise<boolean> {
  const fs = fileSystem;
  if (typeof path !== "string" || /^[a-z]+:/i.test(path) || !fs) return Promise.resolve(false);
  return Promise.resolve().then(() => fs.isDirectory(path)).catch(() => false);
}

/** Whether a file exists (false where no file system is installed). */
export function fileExists(path: string): Promise<boolean> {
  const fs = fileSystem;
  if (!fs) return Promise.resolve(false);
  return Promise.resolve().then(() => fs.isFile(path)).catch(() => false);
}

/** HTTP statuses that mean "no such file" for a sibling lookup: 404 / 410, and 401 / 403, which
 *  Hugging Face (gated or missing entries) and S3 (missing keys without list rights) send. */
const ABSENT_STATUSES = new Set([401, 403, 404, 410]);

/**
 * The bytes of a file that may not exist: a path or file: URL (absent: not a regular file) or an
 * http(s) URL (absent: HTTP 404, 410, 401 or 403, with `status` telling which). Other failures
 * (a 500, a dropped connection, a file that exists but cannot be read) are errors. A path where
 * no file system is installed is an error; a file: URL there is fetched (Deno and Bun read those),
 * and absent when that fails.
 */
export async function readIfPresent(location: string | URL, options: ReadOptions = {}): Promise<{ bytes: Uint8Array } | { bytes: null; status?: number }> {
  stallLimit(options);
  const url = urlOf(location);
  if (url && (url.protocol === "http:" || url.protocol === "https:")) {
    const exchange = new Exchange(url, options);
    try {
      const response = await exchange.fetch();
      if (ABSENT_STATUSES.has(response.status)) return { bytes: null, status: response.status }; // its body is dropped with the exchange
      if (!response.ok || !response.body) throw new BitNetError(`cannot fetch ${url.href}: HTTP ${response.status}`);
      return { bytes: await readResponse(response, url.href, options, exchange) };
    } finally {
      exchange.end();
    }
  }
  if (url && url.protocol !== "file:") return { bytes: null };
  if (url && !fileSystem) {
    const response = await fetch(url, { signal: options.signal }).catch(() => null);
    if (!response?.ok || !response.body) {
      options.signal?.throwIfAborted();
      return { bytes: null };
    }
    return { bytes: await readResponse(response, url.href, options) };
  }
  const path = url ?? (location as string), fs = needFileSystem(path);
  if (!(await fs.isFile(path).catch(() => false))) return { bytes: null };
  return { bytes: await readBytes(path, options) };
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
    name,
    size: bytes.length,
    read(offset, length, into) {
      checkRange(this, offset, length, into);
      const part = bytes.subarray(offset, offset + length);
      if (into) into.set(part);
      return Promise.resolve(into ?? part);
    },
    close: () => Promise.resolve(),
  };
}

/** A Blob (a File a page picked, say) as a file: each read is a `slice`, so it is never held whole. */
function blobFile(blob: Blob, name: string): RandomAccessFile {
  return {
    name,
    size: blob.size,
    async read(offset, length, into) {
      checkRange(this, offset, length, into);
      let part: Uint8Array;
      try {
        part = new Uint8Array(await blob.slice(offset, offset + length).arrayBuffer());
      } catch (e) {
        throw new BitNetError(`${name}: cannot read bytes ${offset}..${offset + length}: ${(e as Error).message}`, { cause: e });
      }
      if (part.length !== length) throw new BitNetError(`${name}: ${part.length} bytes read for a range of ${length} (changed while open?)`);
      if (!into) return part;
      into.set(part);
      return into;
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
    name,
    size,
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

/** A path opened by the installed file system, its reads range-checked here. */
async function openPath(path: string | URL): Promise<RandomAccessFile> {
  const fs = needFileSystem(path);
  let file: RandomAccessFile;
  try {
    file = await fs.open(path);
  } catch (e) {
    throw fsError("read", path, e);
  }
  const { name, size } = file;
  return {
    name,
    size,
    read(offset, length, into) {
      checkRange({ name, size }, offset, length, into);
      return file.read(offset, length, into);
    },
    close: () => file.close(),
  };
}

async function fetchOrFail(url: URL, init: RequestInit): Promise<Response> {
  try {
    return await fetch(url, init);
  } catch (e) {
    (init.signal as AbortSignal | undefined)?.throwIfAborted();
    if (url.protocol === "file:") throw noFileSystem(url, e); // fetch reads file: URLs in Deno and Bun only
    throw new BitNetError(`cannot fetch ${url.href}: ${(e as Error).message}`, { cause: e });
  }
}

/** A URL read with HTTP Range requests when the server honours them, else downloaded whole. */
async function openUrl(url: URL, options: ReadOptions): Promise<RandomAccessFile> {
  const name = url.href, probing = new Exchange(url, options);
  let size: number;
  try {
    const probe = await probing.fetch({ Range: "bytes=0-0" });
    const total = /^bytes 0-0\/(\d+)$/.exec(probe.headers.get("content-range") ?? "");
    if (probe.status !== 206 || !total) {
      if (!probe.ok || !probe.body) throw new BitNetError(`cannot fetch ${name}: HTTP ${probe.status}`);
      return memoryFile(await readResponse(probe, name, options, probing), name);
    }
    size = Number(total[1]);
  } finally {
    probing.end();
  }
  return {
    name,
    size,
    async read(offset, length, into) {
      checkRange({ name, size }, offset, length, into);
      const buffer = into ?? new Uint8Array(length);
      if (length === 0) return buffer;
      const range = `bytes ${offset}..${offset + length}`, exchange = new Exchange(url, options);
      try {
        const response = await exchange.fetch({ Range: `bytes=${offset}-${offset + length - 1}` });
        if (response.status !== 206 || !response.body) throw new BitNetError(`${name}: HTTP ${response.status} to a Range request for ${range}`);
        // The server says which bytes it sends: exactly those asked for, of a file of the size the probe gave.
        const answered = response.headers.get("content-range"), announced = announcedLength(response);
        if (answered === null || !new RegExp(`^bytes ${offset}-${offset + length - 1}/(${size}|\\*)$`).test(answered.trim())) {
          throw new BitNetError(
            `${name}: the answer to a Range request for ${range} has Content-Range ${answered === null ? "missing" : JSON.stringify(answered)}, expected "bytes ${offset}-${
              offset + length - 1
            }/${size}" (changed while open?)`,
          );
        }
        if (announced !== undefined && announced !== length) {
          throw new BitNetError(`${name}: the answer to a Range request for ${range} announces ${announced} bytes (content-length), not ${length}`);
        }
        let done = 0;
        const reader = response.body.getReader();
        try {
          for (;;) {
            const { done: end, value } = await exchange.read(reader, () => `after ${done} of the ${length} bytes of a Range request for ${range}`).catch((e) => {
              options.signal?.throwIfAborted();
              if (e instanceof BitNetError) throw e; // a stall
              throw new BitNetError(`${name}: transfer failed after ${done} of ${length} bytes: ${(e as Error).message}`, { cause: e });
            });
            if (end) break;
            if (done + value.length > length) throw new BitNetError(`${name}: server sent more than the ${length} bytes asked for`);
            buffer.set(value, done);
            done += value.length;
          }
        } finally {
          reader.releaseLock();
        }
        if (done !== length) throw new BitNetError(`${name}: ${done} bytes arrived for a range of ${length} (truncated transfer)`);
        return buffer;
      } finally {
        exchange.end();
      }
    },
    close: () => Promise.resolve(),
  };
}

/** Reports every read as progress of phase "read" and honours the abort signal. */
function watched(file: RandomAccessFile, { onProgress, signal }: ReadOptions): RandomAccessFile {
  if (!onProgress && !signal) return file;
  let loaded = 0;
  return {
    name: file.name,
    size: file.size,
    async read(offset, length, into) {
      signal?.throwIfAborted();
      const bytes = await file.read(offset, length, into);
      loaded += length;
      onProgress?.({ phase: "read", file: file.name, loaded: Math.min(loaded, file.size), total: file.size });
      return bytes;
    },
    close: () => file.close(),
  };
}

/** Opens any source for random access: paths, Blobs and ranged URLs are read piece by piece;
 *  streams and servers without Range support are read into memory first. */
export async function openFile(source: ByteSource, options: ReadOptions = {}): Promise<RandomAccessFile> {
  stallLimit(options); // checked whatever the source
  const name = sourceName(source);
  if (source instanceof Uint8Array || source instanceof ArrayBuffer) return memoryFile(await readBytes(source), name);
  if (isBlob(source)) return watched(blobFile(source, name), options);
  if (isStream(source)) return memoryFile(await readBytes(source, options), name);
  const url = urlOf(source);
  if (url === null || (url.protocol === "file:" && fileSystem)) return watched(await openPath(url ?? (source as string)), options);
  if (url.protocol === "http:" || url.protocol === "https:") return watched(await openUrl(url, options), options);
  return memoryFile(await readBytes(url, options), name);
}

/** A sink that writes a file (through the installed file system). */
export async function fileSink(path: string): Promise<ByteSink> {
  const fs = needFileSystem(path);
  const fail = (e: unknown) => fsError("write", path, e);
  const sink = await fs.sink(path).catch((e) => Promise.reject(fail(e)));
  return {
    write: (bytes) => sink.write(bytes).catch((e) => Promise.reject(fail(e))),
    close: () => sink.close().catch((e) => Promise.reject(fail(e))),
    abort: () => sink.abort().catch((e) => Promise.reject(fail(e))),
  };
}

/** Runs `write` into `sink`, then closes it; when `write` fails the sink is aborted (no partial file) and the error rethrown. */
export async function writeThrough<T>(sink: ByteSink, write: (sink: ByteSink) => Promise<T>): Promise<T> {
  let result: T;
  try {
    result = await write(sink);
  } catch (e) {
    await sink.abort().catch(() => {}); // the write's own error says what went wrong
    throw e;
  }
  await sink.close();
  return result;
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
    abort: () => Promise.resolve(void chunks.splice(0)),
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
  if (isBlob(source)) return typeof File !== "undefined" && source instanceof File && source.name ? source.name : `<Blob of ${source.size} bytes>`;
  if (isStream(source)) return "<stream>";
  return String(source);
}
