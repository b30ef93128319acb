// The Node / Deno / Bun adapter: the one module of the library that imports node: modules
// (Node, Deno and Bun all provide node:fs, node:os and node:worker_threads). Importing it
// installs, for the whole program:
// - node:fs as the FileSystem that paths and file: URLs go through (files.ts);
// - a folder as the model cache (cache-files.ts): $BITNET_WASM_CACHE, else
//   $XDG_CACHE_HOME/bitnet-wasm, else ~/.cache/bitnet-wasm; and process.env as the environment;
// - the thread starter (spawn-thread.ts): Node and Deno start kernel workers through
//   node:worker_threads (Deno for its Worker.unref(), see spawn-thread.ts), Bun as module Web
//   Workers like browsers; and Node's core count from os.availableParallelism.
// mod.ts, the command line and the Node-side scripts import it; web.ts never does. Nothing
// in the core looks at which runtime it is in: choosing this module is the entry's job.
import { appendFile, mkdir, open, readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import process from "node:process";
import { join, resolve } from "node:path";
import { availableParallelism, cpus, homedir } from "node:os";
import { Worker } from "node:worker_threads";
import { BitNetError } from "../core/errors.ts";
import { type ByteSink, type FileSystem, type RandomAccessFile, useFileSystem } from "./files.ts";
import { type CacheFiles, useCacheFiles } from "./cache-files.ts";
import { env, useEnvironment } from "./environment.ts";
import { spawnWebWorker, type ThreadStarter, useThreadStarter } from "./spawn-thread.ts";
import type { ThreadHandle } from "./threads.ts";

const MAX_IO = 1 << 30; // node:fs reads and writes at most 2 GiB per call

async function openRead(path: string | URL): Promise<RandomAccessFile> {
  const handle = await open(path, "r");
  const info = await handle.stat(), size = info.size, name = String(path);
  if (!info.isFile()) {
    await handle.close();
    throw new BitNetError(`${name} is a directory or device, expected a file`);
  }
  return {
    name,
    size,
    async read(offset, length, into) {
      const buffer = into ?? new Uint8Array(length);
      for (let done = 0; done < length;) {
        const { bytesRead } = await handle.read(buffer, done, Math.min(length - done, MAX_IO), offset + done);
        if (bytesRead === 0) throw new BitNetError(`${name}: file ended at byte ${offset + done} while reading ${offset}..${offset + length} (changed while open?)`);
        done += bytesRead;
      }
      return buffer;
    },
    close: () => handle.close(),
  };
}

async function writeSink(path: string): Promise<ByteSink> {
  // Written under a temporary name and renamed when complete: a failed write leaves no file.
  const partial = `${path}.${process.pid}-${Math.random().toString(36).slice(2, 8)}.partial`;
  const handle = await open(partial, "w");
  let open_ = true;
  const release = async () => {
    if (open_) await handle.close();
    open_ = false;
  };
  return {
    async write(bytes) {
      for (let done = 0; done < bytes.length;) {
        const { bytesWritten } = await handle.write(bytes, done, Math.min(bytes.length - done, MAX_IO));
        done += bytesWritten;
      }
    },
    async close() {
      await release();
      await rename(partial, path);
    },
    async abort() {
      await release();
      await rm(partial, { force: true });
    },
  };
}

/** node:fs as a FileSystem (what the Node / Deno / Bun entry installs). */
export const nodeFileSystem: FileSystem = {
  open: openRead,
  readFile: async (path, signal) => new Uint8Array(await readFile(path, { signal })),
  isFile: async (path) => (await stat(path)).isFile(),
  isDirectory: async (path) => (await stat(path)).isDirectory(),
  writeFile: (path, bytes) => writeFile(path, bytes),
  appendFile: (path, text) => appendFile(path, text),
  sink: writeSink,
};

/** Where the model cache is unless told: $BITNET_WASM_CACHE, else $XDG_CACHE_HOME/bitnet-wasm, else ~/.cache/bitnet-wasm. */
export function defaultCacheRoot(): string {
  const xdg = env("XDG_CACHE_HOME");
  return env("BITNET_WASM_CACHE") ?? (xdg ? join(xdg, "bitnet-wasm") : join(env("HOME") ?? homedir(), ".cache", "bitnet-wasm"));
}

const missing = (e: unknown) => (e as { code?: string }).code === "ENOENT";

/** A folder as the model cache. */
export function nodeCacheFiles(root: string = defaultCacheRoot()): CacheFiles {
  const base = resolve(root), at = (path: string) => join(base, ...path.split("/"));
  const parent = (path: string) => mkdir(join(at(path), ".."), { recursive: true });
  return {
    root: base,
    source: (path) => Promise.resolve(at(path)),
    stat: (path) => stat(at(path)).then((s) => ({ size: s.size, ageMs: Date.now() - s.mtimeMs }), (e) => (missing(e) ? null : Promise.reject(e))),
    readText: (path) => readFile(at(path), "utf8").catch((e) => (missing(e) ? null : Promise.reject(e))),
    async writeText(path, text) {
      await parent(path);
      const temporary = `${at(path)}.${process.pid}-${Math.random().toString(36).slice(2, 8)}.tmp`;
      await writeFile(temporary, text);
      await rename(temporary, at(path));
    },
    async createExclusive(path, text) {
      await parent(path);
      return writeFile(at(path), text, { flag: "wx" }).then(() => true, (e) => ((e as { code?: string }).code === "EEXIST" ? false : Promise.reject(e)));
    },
    async append(path, fresh) {
      await parent(path);
      const handle = await open(at(path), fresh ? "w" : "a");
      return {
        async write(bytes) {
          for (let done = 0; done < bytes.length;) done += (await handle.write(bytes, done, Math.min(bytes.length - done, MAX_IO))).bytesWritten;
        },
        close: () => handle.close(),
      };
    },
    async rename(from, to) {
      await parent(to);
      await rename(at(from), at(to));
    },
    remove: (path) => rm(at(path), { recursive: true, force: true }),
    list: (path) =>
      readdir(at(path), { withFileTypes: true }).then(
        (entries) => entries.map((e) => ({ name: e.name, directory: e.isDirectory() })),
        (e) => (missing(e) ? [] : Promise.reject(e)),
      ),
  };
}

const isDeno = typeof (globalThis as { Deno?: unknown }).Deno !== "undefined";
const isBun = typeof (globalThis as { Bun?: unknown }).Bun !== "undefined";

let dataUrl: Promise<URL> | undefined;
/** node:worker_threads starts file: and data: URLs only: a remote module (Deno importing the package by URL, as from JSR) hands it the worker's source. */
function workerDataUrl(url: URL): Promise<URL> {
  return (dataUrl ??= fetch(url).then(async (response) => {
    if (!response.ok) throw new Error(`cannot fetch ${url.href}: HTTP ${response.status}`);
    return new URL(`data:text/javascript,${encodeURIComponent(await response.text())}`);
  }).catch((e) => {
    dataUrl = undefined; // a later load may try again
    throw e;
  }));
}

/** A kernel worker through node:worker_threads, unref'd once it is ready (idle threads never keep the process alive). */
async function spawnNodeWorker(url: URL, init: unknown): Promise<ThreadHandle> {
  const worker = new Worker(url.protocol === "file:" ? url : await workerDataUrl(url));
  await new Promise<void>((resolve, reject) => {
    worker.once("message", () => resolve());
    worker.once("error", reject);
    worker.postMessage(init);
  });
  worker.unref(); // Node, Deno: idle kernel threads never keep the process alive
  return { terminate: () => void worker.terminate() };
}

/** Threads on Node and Deno through node:worker_threads, on Bun through Web Workers (its unref() works). */
export const nodeThreads: ThreadStarter = {
  spawn: isBun ? spawnWebWorker : spawnNodeWorker,
  // Node: os.availableParallelism. Deno and Bun: navigator.hardwareConcurrency (Deno's node:os would ask for --allow-sys).
  coreCount: isDeno || isBun ? undefined : () => availableParallelism?.() ?? cpus().length,
};

useFileSystem(nodeFileSystem);
useCacheFiles(nodeCacheFiles);
useEnvironment((name) => process.env[name]);
useThreadStarter(nodeThreads);
