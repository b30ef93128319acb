// The model cache in a browser: the origin-private file system (OPFS), random access without
// Blob size limits, in pages and workers alike. Files are written through writable streams,
// which commit when closed (a reader never sees a half-written text); the lock of a download is
// a Web Lock as well as a file (runtime/lock-files.ts).
import { BitNetError } from "../core/errors.ts";
import type { Appender, CacheEntry, CacheFiles } from "./cache-files.ts";
import { lockFiles } from "./lock-files.ts";

// The parts of the File System API used here (not in every TypeScript DOM lib).
interface Writable {
  write(data: Uint8Array | string): Promise<void>;
  seek(position: number): Promise<void>;
  close(): Promise<void>;
}
interface FileHandle {
  kind: "file";
  getFile(): Promise<File>;
  createWritable(options?: { keepExistingData?: boolean }): Promise<Writable>;
  move?(parent: DirectoryHandle, name: string): Promise<void>;
}
interface DirectoryHandle {
  kind: "directory";
  getDirectoryHandle(name: string, options?: { create?: boolean }): Promise<DirectoryHandle>;
  getFileHandle(name: string, options?: { create?: boolean }): Promise<FileHandle>;
  removeEntry(name: string, options?: { recursive?: boolean }): Promise<void>;
  entries(): AsyncIterable<[string, FileHandle | DirectoryHandle]>;
}
type Navigator = { storage?: { getDirectory?: () => Promise<DirectoryHandle> } };

const nav = () => (globalThis as { navigator?: Navigator }).navigator;

/** Whether this runtime has an origin-private file system. */
export function hasOpfs(): boolean {
  return typeof nav()?.storage?.getDirectory === "function";
}

const notFound = (e: unknown) => ["NotFoundError", "TypeMismatchError"].includes((e as { name?: string }).name ?? "");
const parts = (path: string) => path.split("/").filter((p) => p !== "");

/** The cache in OPFS, under the folder `root` (default "bitnet-wasm"). */
export function opfsCacheFiles(root = "bitnet-wasm"): CacheFiles {
  const top = nav()!.storage!.getDirectory!().then((d) => d.getDirectoryHandle(root, { create: true }));
  const folder = async (names: string[], create: boolean) => {
    let dir = await top;
    for (const name of names) dir = await dir.getDirectoryHandle(name, { create });
    return dir;
  };
  const file = async (path: string, create = false) => {
    const names = parts(path);
    return (await folder(names.slice(0, -1), create)).getFileHandle(names.at(-1)!, { create });
  };
  const orNull = <T>(promise: Promise<T>) => promise.catch((e) => (notFound(e) ? null : Promise.reject(e)));
  const locks = lockFiles(`opfs:${root}`, async (path) => (await store.stat(path)) !== null, (path, text) => store.writeText(path, text));

  const store: CacheFiles = {
    root: `OPFS ${root}/`,
    async source(path) {
      const handle = await orNull(file(path));
      if (handle) return handle.getFile(); // a File: read piece by piece with slice()
      throw new BitNetError(
        `${path}: a Hugging Face folder cannot be read from OPFS here (the folder reader needs a file system); in a browser, load a GGUF repo or file (hf:ORG/REPO/FILE.gguf)`,
      );
    },
    async stat(path) {
      const f = await orNull(file(path).then((h) => h.getFile()));
      return f && { size: f.size, ageMs: Date.now() - f.lastModified };
    },
    async readText(path) {
      return (await orNull(file(path).then((h) => h.getFile())))?.text() ?? null;
    },
    async writeText(path, text) {
      const out = await (await file(path, true)).createWritable();
      await out.write(text);
      await out.close(); // commits the whole text at once
    },
    createExclusive: (path, text) => locks.create(path, text),
    async append(path, fresh): Promise<Appender> {
      const handle = await file(path, true), size = fresh ? 0 : (await handle.getFile()).size;
      const out = await handle.createWritable({ keepExistingData: !fresh });
      await out.seek(size);
      return { write: (bytes) => out.write(bytes), close: () => out.close() };
    },
    async rename(from, to) {
      const source = await file(from), names = parts(to), parent = await folder(names.slice(0, -1), true);
      if (source.move) return source.move(parent, names.at(-1)!);
      const out = await (await parent.getFileHandle(names.at(-1)!, { create: true })).createWritable();
      await (await source.getFile()).stream().pipeTo(out as unknown as WritableStream<Uint8Array>); // closes (commits) it at the end
      await store.remove(from);
    },
    async remove(path) {
      const names = parts(path);
      const parent = await orNull(folder(names.slice(0, -1), false));
      await (parent && orNull(parent.removeEntry(names.at(-1)!, { recursive: true })));
      locks.release(path);
    },
    async list(path): Promise<CacheEntry[]> {
      const dir = await orNull(folder(parts(path), false));
      const entries: CacheEntry[] = [];
      if (dir) { for await (const [name, handle] of dir.entries()) entries.push({ name, directory: handle.kind === "directory" }); }
      return entries;
    },
  };
  return store;
}
