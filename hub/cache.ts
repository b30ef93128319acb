// The model cache: hub files kept by repo, commit and name, so a model is downloaded once.
// Layout under the cache's root (one logic for every store of files, runtime/cache-files.ts):
//   hf/ORG/REPO/refs/REVISION          the commit a branch or tag named when last asked
//   hf/ORG/REPO/COMMIT/listing.json    the repo's files at that commit (names, sizes, ETags)
//   hf/ORG/REPO/COMMIT/files/FILE      a complete file, checked against the listing's size and ETag
//   hf/ORG/REPO/COMMIT/partial/FILE    a download under way or interrupted (resumed with Range)
//   hf/ORG/REPO/COMMIT/partial/FILE.lock  who downloads it: other processes and tabs wait for it
// A file appears under files/ only whole (renamed from partial/), so a reader never sees a part.
import { BitNetError, HubError } from "../core/errors.ts";
import type { CacheFiles } from "../runtime/cache-files.ts";
import { DEFAULT_STALL_TIMEOUT_MS, type Progress } from "../runtime/files.ts";
import { type Hub, hubGet, type RepoFile, resolveUrl, type Snapshot } from "./client.ts";
import type { HubId } from "./id.ts";

/** A repo's commit as it is in the cache. */
export interface CachedModel {
  /** "hf:ORG/REPO@COMMIT", loadable offline. */
  id: string;
  /** "ORG/REPO". */
  repo: string;
  /** The full commit hash the files were downloaded at. */
  commit: string;
  /** Branches and tags that named this commit when last asked. */
  refs: string[];
  /** Complete files, with their sizes. */
  files: { name: string; size: number }[];
  /** Bytes of interrupted downloads kept for resuming. */
  partialBytes: number;
  /** Bytes in all (files and partial downloads). */
  size: number;
}

// Tries at a download before giving up, as long as each try gets further than the last.
const ATTEMPTS = 5;
// How often a process waiting for another's download looks again.
const POLL_MS = 200;
// Downloads under way in this program, by cache file: a second load of the same file waits for the first.
const downloads = new Map<string, Promise<void>>();

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });

export class ModelCache {
  constructor(readonly store: CacheFiles) {}

  #repo = (repo: string) => `hf/${repo}`;
  #commit = (repo: string, commit: string) => `hf/${repo}/${commit}`;
  #ref = (repo: string, revision: string) => `hf/${repo}/refs/${encodeURIComponent(revision)}`;

  /** Where a complete file of a commit is. */
  filePath(repo: string, commit: string, file: string): string {
    return `${this.#commit(repo, commit)}/files/${file}`;
  }

  /** The folder of a commit's complete files. */
  filesPath(repo: string, commit: string): string {
    return `${this.#commit(repo, commit)}/files`;
  }

  /** The commit a branch or tag named when last asked, or null. */
  async ref(repo: string, revision: string): Promise<string | null> {
    const text = (await this.store.readText(this.#ref(repo, revision)))?.trim();
    return text && /^[0-9a-f]{40}$/.test(text) ? text : null;
  }

  /** The cached listing of a commit, or null. */
  async snapshot(repo: string, commit: string): Promise<Snapshot | null> {
    const text = await this.store.readText(`${this.#commit(repo, commit)}/listing.json`);
    if (text === null) return null;
    try {
      const files = JSON.parse(text) as RepoFile[];
      return Array.isArray(files) ? { commit, files } : null;
    } catch {
      return null; // written whole or not at all: unreadable only if changed by hand; the hub is asked again
    }
  }

  /** Keeps a listing, and the commit `revision` names now. */
  async keep(repo: string, revision: string, snapshot: Snapshot): Promise<void> {
    await this.store.writeText(`${this.#commit(repo, snapshot.commit)}/listing.json`, JSON.stringify(snapshot.files));
    if (revision !== snapshot.commit) await this.store.writeText(this.#ref(repo, revision), snapshot.commit);
  }

  /** Whether a commit's file is complete in the cache. */
  async has(repo: string, commit: string, file: RepoFile): Promise<boolean> {
    return (await this.store.stat(this.filePath(repo, commit, file.name)))?.size === file.size;
  }

  /**
   * Makes a commit's file complete in the cache: downloaded once, to partial/ and renamed,
   * resumed where an earlier try stopped; when another program holds its lock, waits for it
   * (and takes over a lock nobody has moved for twice the stall limit).
   */
  ensure(hub: Hub, id: HubId, commit: string, file: RepoFile, onProgress?: (p: Progress) => void): Promise<void> {
    const key = `${this.store.root}\u0000${this.filePath(id.repo, commit, file.name)}`;
    let running = downloads.get(key);
    if (!running) {
      running = this.#ensure(hub, id, commit, file, onProgress).finally(() => downloads.delete(key));
      downloads.set(key, running);
    }
    return running;
  }

  async #ensure(hub: Hub, id: HubId, commit: string, file: RepoFile, onProgress?: (p: Progress) => void): Promise<void> {
    const partial = `${this.#commit(id.repo, commit)}/partial/${file.name}`, lock = `${partial}.lock`;
    const stale = 2 * (hub.read.stallTimeoutMs ?? DEFAULT_STALL_TIMEOUT_MS);
    for (;;) {
      hub.read.signal?.throwIfAborted();
      if (await this.has(id.repo, commit, file)) return;
      if (await this.store.createExclusive(lock, `${Date.now()}\n`)) break;
      // Someone else downloads it: it is done when the file appears; their lock is stale when neither it nor the part moved.
      const [held, part] = await Promise.all([this.store.stat(lock), this.store.stat(partial)]);
      if (held && Math.min(held.ageMs, part?.ageMs ?? Infinity) > stale) await this.store.remove(lock);
      else await sleep(POLL_MS, hub.read.signal);
    }
    try {
      if (await this.has(id.repo, commit, file)) return; // completed between our look and our lock
      await this.#download(hub, id, commit, file, partial, onProgress);
      await this.store.rename(partial, this.filePath(id.repo, commit, file.name));
    } finally {
      await this.store.remove(lock);
    }
  }

  /** Downloads into `partial` until it holds the whole file, retrying while each try gets further. */
  async #download(hub: Hub, id: HubId, commit: string, file: RepoFile, partial: string, onProgress?: (p: Progress) => void): Promise<void> {
    const url = resolveUrl(hub, id.repo, commit, file.name), what = `downloading ${file.name}`;
    for (let attempt = 1, best = -1;; attempt++) {
      let have = (await this.store.stat(partial))?.size ?? 0;
      if (have > file.size) have = 0;
      if (have === file.size && file.size > 0) return;
      try {
        await this.#transfer(hub, id, url, what, file, partial, have, onProgress);
        return;
      } catch (e) {
        hub.read.signal?.throwIfAborted();
        const now = (await this.store.stat(partial))?.size ?? 0;
        if (e instanceof HubError || attempt === ATTEMPTS || now <= best) throw e;
        best = now; // it got further: try again from there
      }
    }
  }

  /** One request: the bytes from `have` on, appended to `partial`; the answer checked against the listing. */
  async #transfer(hub: Hub, id: HubId, url: URL, what: string, file: RepoFile, partial: string, have: number, onProgress?: (p: Progress) => void): Promise<void> {
    const { response, exchange, etag } = await hubGet(hub, id, url, what, have > 0 ? { Range: `bytes=${have}-` } : {}, have > 0);
    try {
      if (etag !== null && etag !== file.etag) {
        throw new HubError(id.text, `${what}: the hub's ETag ${etag} is not the ${file.etag} its listing gave (the file changed; load again to list anew)`);
      }
      let from = 0;
      if (response.status === 416) {
        await response.body?.cancel();
        await this.store.remove(partial); // what is kept is not a start of this file: start over
        throw new BitNetError(`${url.href}: the hub refused the range from byte ${have} (HTTP 416); starting over`);
      }
      if (response.status === 206) {
        const range = response.headers.get("content-range") ?? "";
        if (range.trim() !== `bytes ${have}-${file.size - 1}/${file.size}`) {
          throw new HubError(id.text, `${what}: asked for bytes ${have}- of ${file.size}, the answer has Content-Range ${JSON.stringify(range)}`);
        }
        from = have;
      }
      const out = await this.store.append(partial, from === 0);
      let loaded = from;
      try {
        onProgress?.({ phase: "download", file: file.name, loaded, total: file.size });
        const reader = response.body!.getReader();
        for (;;) {
          const { done, value } = await exchange.read(reader, () => `after ${loaded} of ${file.size} bytes`).catch((e) => {
            hub.read.signal?.throwIfAborted();
            throw e instanceof BitNetError ? e : new BitNetError(`${url.href}: transfer failed after ${loaded} of ${file.size} bytes: ${(e as Error).message}`, { cause: e });
          });
          if (done) break;
          if (loaded + value.length > file.size) throw new HubError(id.text, `${what}: more bytes than the ${file.size} the listing gives`);
          await out.write(value);
          loaded += value.length;
          onProgress?.({ phase: "download", file: file.name, loaded, total: file.size });
        }
      } finally {
        await out.close();
      }
      if (loaded !== file.size) throw new BitNetError(`${url.href}: the transfer ended after ${loaded} of ${file.size} bytes`);
    } finally {
      exchange.end();
    }
  }

  /** Every cached commit of every repo, with its files and sizes. */
  async list(): Promise<CachedModel[]> {
    const models: CachedModel[] = [];
    for (const org of await this.#folders("hf")) {
      for (const name of await this.#folders(`hf/${org}`)) {
        const repo = `${org}/${name}`, refs = new Map<string, string[]>();
        for (const entry of await this.store.list(`${this.#repo(repo)}/refs`)) {
          const commit = await this.ref(repo, decodeURIComponent(entry.name));
          if (commit) refs.set(commit, [...(refs.get(commit) ?? []), decodeURIComponent(entry.name)]);
        }
        for (const commit of (await this.#folders(this.#repo(repo))).filter((c) => /^[0-9a-f]{40}$/.test(c))) {
          const files = await this.#sizes(`${this.#commit(repo, commit)}/files`);
          const partialBytes = (await this.#sizes(`${this.#commit(repo, commit)}/partial`)).reduce((n, f) => n + f.size, 0);
          const size = files.reduce((n, f) => n + f.size, partialBytes);
          models.push({ id: `hf:${repo}@${commit}`, repo, commit, refs: refs.get(commit) ?? [], files, partialBytes, size });
        }
      }
    }
    return models;
  }

  /** Deletes a repo's cached commits (only the one `revision` names, when given); the bytes freed. */
  async remove(repo: string, revision?: string): Promise<number> {
    const all = (await this.list()).filter((m) => m.repo === repo);
    if (revision === undefined) {
      await this.store.remove(this.#repo(repo));
      return all.reduce((n, m) => n + m.size, 0);
    }
    const commit = /^[0-9a-f]{40}$/.test(revision) ? revision : await this.ref(repo, revision);
    const model = all.find((m) => m.commit === commit);
    if (!model) return 0;
    await this.store.remove(this.#commit(repo, model.commit));
    for (const ref of model.refs) await this.store.remove(this.#ref(repo, ref));
    return model.size;
  }

  async #folders(path: string): Promise<string[]> {
    return (await this.store.list(path)).filter((e) => e.directory).map((e) => e.name).sort();
  }

  /** The files under a folder, at any depth, with their sizes (names relative to it). */
  async #sizes(path: string, prefix = ""): Promise<{ name: string; size: number }[]> {
    const out: { name: string; size: number }[] = [];
    for (const entry of (await this.store.list(path)).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const name = prefix + entry.name;
      if (entry.directory) out.push(...await this.#sizes(`${path}/${entry.name}`, `${name}/`));
      else if (!entry.name.endsWith(".lock")) out.push({ name, size: (await this.store.stat(`${path}/${entry.name}`))?.size ?? 0 });
    }
    return out;
  }
}
