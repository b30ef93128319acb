// A hub id -> the files of the model in the cache, downloaded when missing. Which files: the
// one the id names; else a Hugging Face folder (config.json with model.safetensors, or the
// shards its index lists); else the repo's one GGUF (or llama2.c .bin). Tokenizer files beside
// the model come too, for the loader to find as it finds them beside a path.
import { HubError } from "../core/errors.ts";
import { openCacheFiles } from "../runtime/cache-files.ts";
import { env } from "../runtime/environment.ts";
import type { ByteSource, Progress, ReadOptions } from "../runtime/files.ts";
import { TOKENIZER_FILES } from "../text/tokenizer/resolve.ts";
import { readSafetensorsIndex } from "../formats/safetensors.ts";
import { fetchSnapshot, type Hub, hubOf, type HubOptions, type RepoFile, type Snapshot } from "./client.ts";
import { type CachedModel, ModelCache } from "./cache.ts";
import { type HubId, isCommit, parseHubId } from "./id.ts";

/** Options for models named by hub id. */
export interface HubLoadOptions extends HubOptions {
  /** The cache's place: default $BITNET_WASM_CACHE, else $XDG_CACHE_HOME/bitnet-wasm, else ~/.cache/bitnet-wasm (Node / Deno / Bun). */
  cacheDir?: string;
  /** Never ask the hub: load from the cache or fail saying what is missing. Default: $HF_HUB_OFFLINE set (not "0" / "false"). */
  offline?: boolean;
}

/** A model of the hub, complete in the cache. */
export interface CachedHubModel {
  /** What loadBitNet reads: the cached folder (Hugging Face folders) or file. */
  source: ByteSource;
  /** The commit it is at. */
  commit: string;
  /** The repo's files that were fetched (or found) for it. */
  files: RepoFile[];
  /** The tokenizer file beside the model, where `source` is no path to look beside (a File from OPFS). */
  tokenizer?: ByteSource;
}

const EXTRAS = [...TOKENIZER_FILES, "tokenizer_config.json"];
const INDEX = "model.safetensors.index.json";
const isOffline = (options: HubLoadOptions) => options.offline ?? !["", "0", "false", "no", "off"].includes((env("HF_HUB_OFFLINE") ?? "").toLowerCase());

/** The listing of `id`'s revision: cached for a commit; from the hub otherwise (the cached ref when offline or the hub cannot be reached). */
async function snapshotOf(cache: ModelCache, hub: Hub, id: HubId, offline: boolean): Promise<Snapshot> {
  const pinned = isCommit(id.revision) ? id.revision : null;
  const cached = async () => {
    const commit = pinned ?? (await cache.ref(id.repo, id.revision));
    return commit ? cache.snapshot(id.repo, commit) : null;
  };
  if (pinned || offline) {
    const snapshot = await cached();
    if (snapshot) return snapshot;
    if (offline) throw new HubError(id.text, `not in the cache at ${cache.store.root} (offline: the hub is not asked; load it once online)`);
  }
  try {
    const snapshot = await fetchSnapshot(hub, id);
    await cache.keep(id.repo, id.revision, snapshot);
    return snapshot;
  } catch (e) {
    hub.read.signal?.throwIfAborted();
    if (e instanceof HubError) throw e; // the hub answered: its answer stands
    const snapshot = await cached(); // the hub cannot be reached: what was cached, as huggingface_hub does
    if (snapshot) return snapshot;
    throw e;
  }
}

const folderOf = (name: string) => name.slice(0, name.lastIndexOf("/") + 1);

/** Which files of the repo make the model `id` names, and which of them is read (a file, or "" for the folder). */
async function choose(id: HubId, snapshot: Snapshot, fetchIndex: (file: RepoFile) => Promise<string>): Promise<{ files: RepoFile[]; main: string }> {
  const byName = new Map(snapshot.files.map((f) => [f.name, f]));
  const withExtras = (name: string) => {
    const extras = EXTRAS.map((e) => byName.get(folderOf(name) + e)).filter((f): f is RepoFile => f !== undefined && f.name !== name);
    return { files: [byName.get(name)!, ...extras], main: name };
  };
  const names = () => {
    const all = snapshot.files.map((f) => f.name).filter((n) => !n.startsWith("."));
    return all.length > 30 ? `${all.slice(0, 30).join(", ")} and ${all.length - 30} more` : all.join(", ") || "no files";
  };
  if (id.file) {
    if (!byName.has(id.file)) throw new HubError(id.text, `the repo has no file ${JSON.stringify(id.file)} at ${snapshot.commit}; it has ${names()}`);
    return withExtras(id.file);
  }
  if (byName.has("config.json") && (byName.has("model.safetensors") || byName.has(INDEX))) {
    const index = byName.get(INDEX);
    const weights = index
      ? [
        index,
        ...[...new Set(readSafetensorsIndex(await fetchIndex(index), `${id.text}/${INDEX}`).values())].sort().map((shard) => {
          const file = byName.get(shard);
          if (!file) throw new HubError(id.text, `${INDEX} names the shard ${shard}, which the repo does not have at ${snapshot.commit}`);
          return file;
        }),
      ]
      : [byName.get("model.safetensors")!];
    return { files: [byName.get("config.json")!, ...weights, ...EXTRAS.map((e) => byName.get(e)).filter((f): f is RepoFile => f !== undefined)], main: "" };
  }
  const ggufs = snapshot.files.filter((f) => f.name.endsWith(".gguf"));
  const candidates = ggufs.length ? ggufs : snapshot.files.filter((f) => f.name.endsWith(".bin") && !EXTRAS.some((e) => f.name.endsWith(e)));
  if (candidates.length === 1) return withExtras(candidates[0].name);
  if (candidates.length === 0) {
    throw new HubError(id.text, `no model in the repo at ${snapshot.commit}: no config.json with model.safetensors, no .gguf, no llama2.c .bin (it has ${names()})`);
  }
  const choices = candidates.map((f) => `hf:${id.repo}${id.revision === "main" ? "" : `@${encodeURIComponent(id.revision)}`}/${f.name} (${(f.size / 1e6).toFixed(1)} MB)`);
  throw new HubError(id.text, `the repo has ${candidates.length} model files; name one: ${choices.join(", ")}`);
}

/**
 * Makes the model a hub id names complete in the cache (downloading what is missing, with
 * `onProgress` events of phase "download" per file) and says where it is. Offline, or when the
 * hub cannot be reached, the cached commit of the revision serves.
 */
export async function cacheHubModel(hubId: string, options: HubLoadOptions & ReadOptions = {}): Promise<CachedHubModel> {
  const id = parseHubId(hubId), hub = hubOf(options, hubId), offline = isOffline(options);
  const cache = new ModelCache(openCacheFiles(options.cacheDir));
  const snapshot = await snapshotOf(cache, hub, id, offline);
  const ensure = async (file: RepoFile, onProgress?: (p: Progress) => void) => {
    if (await cache.has(id.repo, snapshot.commit, file)) return;
    if (offline) throw new HubError(id.text, `${file.name} is not in the cache at ${cache.store.root} (offline: the hub is not asked)`);
    await cache.ensure(hub, id, snapshot.commit, file, onProgress);
  };
  const { files, main } = await choose(id, snapshot, async (index) => {
    await ensure(index);
    return (await cache.store.readText(cache.filePath(id.repo, snapshot.commit, index.name))) ?? "";
  });
  for (const file of files) await ensure(file, options.onProgress);
  const path = main ? cache.filePath(id.repo, snapshot.commit, main) : cache.filesPath(id.repo, snapshot.commit);
  const source = await cache.store.source(path);
  const beside = typeof source === "string" ? undefined : TOKENIZER_FILES.map((t) => files.find((f) => f.name === folderOf(main) + t)).find((f) => f);
  const tokenizer = beside && (await cache.store.source(cache.filePath(id.repo, snapshot.commit, beside.name)));
  return { source, commit: snapshot.commit, files, ...(tokenizer ? { tokenizer } : {}) };
}

/** The models in the cache (at `cacheDir`, else the default place), one entry per repo and commit. */
export function listCachedModels(options: Pick<HubLoadOptions, "cacheDir"> = {}): Promise<CachedModel[]> {
  return new ModelCache(openCacheFiles(options.cacheDir)).list();
}

/** Deletes a cached model: every commit of "hf:ORG/REPO", or the one "hf:ORG/REPO@REVISION" names. Resolves to the bytes freed. */
export function deleteCachedModel(source: string, options: Pick<HubLoadOptions, "cacheDir"> = {}): Promise<number> {
  const id = parseHubId(source);
  if (id.file) throw new HubError(source, "a cached model is deleted whole: give hf:ORG/REPO or hf:ORG/REPO@REVISION, without a file");
  return new ModelCache(openCacheFiles(options.cacheDir)).remove(id.repo, source.includes("@") ? id.revision : undefined);
}

export type { CachedModel };
