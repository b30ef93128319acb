// The files of the model cache, whatever holds them: a folder through node:fs on Node / Deno /
// Bun (runtime/node.ts installs it), the origin-private file system in a browser, else its Cache API. The hub
// cache (hub/cache.ts) is written against this interface only, so one cache logic serves every
// runtime. Paths are relative to the cache's root, with "/" between their parts.
import { BitNetError } from "../core/errors.ts";
import type { ByteSource } from "./files.ts";
import { hasOpfs, opfsCacheFiles } from "./opfs-cache.ts";
import { cacheApiCacheFiles, hasCacheApi } from "./cache-api.ts";

/** Bytes appended, in order, to one file of the cache. */
export interface Appender {
  /** Appends bytes (kept only until the returned promise settles). */
  write(bytes: Uint8Array): Promise<void>;
  /** Flushes and releases the file. */
  close(): Promise<void>;
}

/** An entry of a cache folder. */
export interface CacheEntry {
  /** The entry's name in its folder. */
  name: string;
  /** Whether it is a folder. */
  directory: boolean;
}

/** What the hub cache needs of a store of files. Missing parent folders are created on write. */
export interface CacheFiles {
  /** Where the cache is, for messages (a folder path, "OPFS"). */
  readonly root: string;
  /** What loadBitNet reads for a cached file or folder (a path on Node / Deno / Bun). */
  source(path: string): Promise<ByteSource>;
  /** Size in bytes and milliseconds since the last change of a file, or null when there is none. */
  stat(path: string): Promise<{ size: number; ageMs: number } | null>;
  /** A text file's contents, or null when there is none. */
  readText(path: string): Promise<string | null>;
  /** Creates or replaces a text file in one step (readers see the old text or the new, never a part). */
  writeText(path: string, text: string): Promise<void>;
  /** Creates a file holding `text` only if there is none: true when this call created it (a lock). */
  createExclusive(path: string, text: string): Promise<boolean>;
  /** Opens a file to append to; `fresh` empties it first. */
  append(path: string, fresh: boolean): Promise<Appender>;
  /** Moves a file, replacing what is at `to`. */
  rename(from: string, to: string): Promise<void>;
  /** Removes a file or a folder with everything in it (nothing there is no error). */
  remove(path: string): Promise<void>;
  /** The entries of a folder ([] when there is none). */
  list(path: string): Promise<CacheEntry[]>;
}

let opener: ((root?: string) => CacheFiles) | null = null;

/**
 * Installs how the cache is opened (`root` overrides its default place); null removes it. The
 * Node / Deno / Bun entry installs a folder on node:fs; without one, browsers use OPFS, else the Cache API.
 */
export function useCacheFiles(open: ((root?: string) => CacheFiles) | null): void {
  opener = open;
}

/** The cache at `root` (default: the runtime's own place), or an error saying this runtime has none. */
export function openCacheFiles(root?: string): CacheFiles {
  if (opener) return opener(root);
  if (hasOpfs()) return opfsCacheFiles(root);
  if (hasCacheApi()) return cacheApiCacheFiles(root);
  throw new BitNetError(
    `this runtime has no place for the model cache (no file system, no origin-private file system): load a Hugging Face model by its resolve URL ` +
      `(https://huggingface.co/ORG/REPO/resolve/main/FILE), or give useCacheFiles a store`,
  );
}
