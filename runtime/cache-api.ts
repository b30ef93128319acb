// The model cache in a browser without an origin-private file system: the Cache API, one
// Response per file under a made-up URL of this origin's cache. A cached Response's Blob is
// read piece by piece with slice(), as a File from OPFS is; what it cannot do is grow, so a
// download's bytes are gathered as Blob parts and stored when the download ends or breaks
// (resumed from there, as in OPFS; a tab closed mid-download starts that file over).
// Folders are the "/"-separated prefixes of the keys.
import type { Appender, CacheEntry, CacheFiles } from "./cache-files.ts";
import { BitNetError } from "../core/errors.ts";
import { lockFiles } from "./lock-files.ts";

const BASE = "https://bitnet-wasm.cache/";
const WRITTEN = "x-bitnet-written"; // when the entry was stored (for the age of a lock or a partial download)

/** Whether this runtime has the Cache API. */
export function hasCacheApi(): boolean {
  return typeof (globalThis as { caches?: CacheStorage }).caches?.open === "function";
}

const parts = (path: string) => path.split("/").filter((p) => p !== "").join("/");

/** The cache in the Cache API's cache named `root` (default "bitnet-wasm"). */
export function cacheApiCacheFiles(root = "bitnet-wasm"): CacheFiles {
  const cache = caches.open(root);
  const url = (path: string) => BASE + parts(path).split("/").map(encodeURIComponent).join("/");
  const pathOf = (key: string) => key.slice(BASE.length).split("/").map(decodeURIComponent).join("/");
  const get = async (path: string) => (await cache).match(url(path));
  const put = async (path: string, body: Blob | string) => (await cache).put(url(path), new Response(body, { headers: { [WRITTEN]: String(Date.now()) } }));
  const blob = async (path: string) => (await get(path))?.blob() ?? null;
  const under = async (path: string) => {
    const prefix = parts(path) === "" ? "" : `${parts(path)}/`;
    return (await (await cache).keys()).map((r) => pathOf(r.url)).filter((p) => p.startsWith(prefix)).map((p) => p.slice(prefix.length));
  };

  const locks = lockFiles(`cache:${root}`, async (path) => (await get(path)) !== undefined, put);

  const store: CacheFiles = {
    root: `Cache API ${root}`,
    async source(path) {
      const found = await blob(path);
      if (!found) throw new BitNetError(`${path} is not in the cache (${root})`);
      return new File([found], parts(path).split("/").at(-1)!); // a name for messages; still read by slices
    },
    async stat(path) {
      const response = await get(path);
      if (!response) return null;
      return { size: (await response.blob()).size, ageMs: Date.now() - Number(response.headers.get(WRITTEN) ?? 0) };
    },
    async readText(path) {
      return (await get(path))?.text() ?? null;
    },
    writeText: put, // one put replaces the entry whole
    createExclusive: (path, text) => locks.create(path, text),
    async append(path, fresh): Promise<Appender> {
      const kept: BlobPart[] = fresh ? [] : [(await blob(path)) ?? new Blob()];
      return {
        write: (bytes) => (kept.push(bytes.slice()), Promise.resolve()), // a copy: the caller may reuse its buffer
        close: () => put(path, new Blob(kept)),
      };
    },
    async rename(from, to) {
      const found = await blob(from);
      if (!found) throw new BitNetError(`${from} is not in the cache (${root})`);
      await put(to, found);
      await (await cache).delete(url(from));
    },
    async remove(path) {
      const c = await cache;
      await c.delete(url(path));
      for (const rest of await under(path)) await c.delete(url(`${path}/${rest}`));
      locks.release(path);
    },
    async list(path): Promise<CacheEntry[]> {
      const entries = new Map<string, boolean>();
      for (const rest of await under(path)) {
        const [name, ...deeper] = rest.split("/");
        entries.set(name, (entries.get(name) ?? false) || deeper.length > 0);
      }
      return [...entries].map(([name, directory]) => ({ name, directory }));
    },
  };
  return store;
}
