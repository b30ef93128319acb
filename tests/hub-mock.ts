// A Hugging Face Hub on 127.0.0.1 for the tests, answering as the real one does: the listing of
// a revision (/api/models/ORG/REPO/revision/REV?blobs=true), files at
// /ORG/REPO/resolve/REV/FILE (small files directly with the git blob id as ETag; LFS files by a
// 302 to a CDN on another port, with X-Linked-Etag / X-Linked-Size / X-Repo-Commit), Range
// requests, X-Error-Code on errors, a gated repo answering 401 without its token, CORS for
// pages. Every request but a preflight is logged; a download can be cut after some bytes, or held until released.
import { createHash } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

/** A repo of the mock hub. */
export interface MockRepo {
  repo: string;
  /** Its one commit (40 hex digits), which `branch` names. */
  commit: string;
  branch?: string;
  files: Record<string, Uint8Array>;
  /** The token it needs (a gated repo), if any. */
  token?: string;
}

/** One request either server saw. */
export interface Logged {
  server: "hub" | "cdn";
  path: string;
  range?: string;
  authorization?: string;
}

// Files from this size on are LFS files, redirected to the CDN (the hub's rule is 10 MB; small here for small models).
const LFS_FROM = 64 * 1024;

const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
const gitBlobId = (b: Uint8Array) => createHash("sha1").update(`blob ${b.length}\0`).update(b).digest("hex");

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** Sends `bytes` (the part a Range header asks for, when it does), cut after `cutAfter` bytes of the body when given. */
function sendBytes(req: IncomingMessage, res: ServerResponse, bytes: Uint8Array, headers: Record<string, string>, cutAfter?: number) {
  const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? "");
  let start = 0, end = bytes.length - 1, status = 200;
  if (req.headers.range) {
    if (!range || Number(range[1]) >= bytes.length) {
      res.writeHead(416, { ...headers, "content-range": `bytes */${bytes.length}` }).end();
      return;
    }
    start = Number(range[1]);
    end = range[2] ? Math.min(Number(range[2]), end) : end;
    status = 206;
    headers = { ...headers, "content-range": `bytes ${start}-${end}/${bytes.length}` };
  }
  res.writeHead(status, { ...headers, "content-length": String(end - start + 1), "accept-ranges": "bytes" });
  const body = bytes.subarray(start, end + 1);
  if (cutAfter !== undefined && cutAfter < body.length) {
    res.write(body.subarray(0, cutAfter), () => setTimeout(() => res.destroy(), 20));
    return;
  }
  res.end(body);
}

// What a page on another origin may send and read, as the hub allows it (browsers, behind COEP too).
const EXPOSED = "etag, content-length, content-range, accept-ranges, x-repo-commit, x-linked-etag, x-linked-size, x-error-code, x-error-message";

/** Sets the CORS headers; answers a preflight (unlogged) and says whether the request goes on. */
function cors(req: IncomingMessage, res: ServerResponse): boolean {
  res.setHeader("access-control-allow-origin", "*");
  res.setHeader("access-control-expose-headers", EXPOSED);
  if (req.method !== "OPTIONS") return true;
  res.writeHead(204, { "access-control-allow-headers": "authorization, range", "access-control-allow-methods": "GET, HEAD", "access-control-max-age": "600" }).end();
  return false;
}

export class MockHub {
  readonly log: Logged[] = [];
  /** The next download of a file (by repo path "ORG/REPO/FILE") drops its connection after this many bytes. */
  readonly cuts = new Map<string, number>();
  /** Downloads of these files ("ORG/REPO/FILE") wait, after their headers and first bytes, until `release` is called. */
  readonly holds = new Map<string, Promise<void>>();
  #release = new Map<string, () => void>();

  /** The hub's address (give it as hubEndpoint or HF_ENDPOINT) and the CDN's, another origin. */
  endpoint = "";
  cdn = "";
  readonly #blobs = new Map<string, { bytes: Uint8Array; key: string }>();
  readonly #servers: Server[];

  private constructor(private readonly repos: MockRepo[]) {
    this.#servers = [createServer((req, res) => cors(req, res) && this.#hub(req, res)), createServer((req, res) => cors(req, res) && this.#cdn(req, res))];
  }

  static async start(repos: MockRepo[]): Promise<MockHub> {
    const hub = new MockHub(repos);
    [hub.endpoint, hub.cdn] = [await listen(hub.#servers[0]), await listen(hub.#servers[1])];
    return hub;
  }

  #cdn(req: IncomingMessage, res: ServerResponse) {
    const url = new URL(req.url!, "http://x");
    this.log.push({ server: "cdn", path: url.pathname, range: req.headers.range, authorization: req.headers.authorization });
    const blob = this.#blobs.get(url.pathname.slice("/blob/".length));
    if (!blob) return res.writeHead(404).end();
    this.#serve(req, res, blob.key, blob.bytes, { etag: `"${sha256(blob.bytes)}"` });
  }

  #hub(req: IncomingMessage, res: ServerResponse) {
    const url = new URL(req.url!, "http://x");
    this.log.push({ server: "hub", path: url.pathname + url.search, range: req.headers.range, authorization: req.headers.authorization });
    const fail = (status: number, code: string, message: string) =>
      res.writeHead(status, { "x-error-code": code, "x-error-message": message, "content-type": "application/json" }).end(JSON.stringify({ error: message }));
    const api = /^\/api\/models\/([^/]+\/[^/]+)\/revision\/([^/]+)$/.exec(url.pathname);
    const resolve = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(url.pathname);
    const match = api ?? resolve;
    const repo = match && this.repos.find((r) => r.repo === match[1]);
    if (!repo) return fail(404, "RepoNotFound", "Repository not found");
    if (repo.token && req.headers.authorization !== `Bearer ${repo.token}`) return fail(401, "GatedRepo", "Access to this model is restricted: you must be authenticated");
    const revision = decodeURIComponent(match[2]);
    if (revision !== repo.commit && revision !== (repo.branch ?? "main")) return fail(404, "RevisionNotFound", `Invalid rev id: ${revision}`);
    if (api) {
      const siblings = Object.entries(repo.files).map(([name, bytes]) => ({
        rfilename: name,
        size: bytes.length,
        blobId: gitBlobId(bytes),
        ...(bytes.length >= LFS_FROM ? { lfs: { sha256: sha256(bytes), size: bytes.length, pointerSize: 134 } } : {}),
      }));
      return res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ id: repo.repo, sha: repo.commit, siblings }));
    }
    const name = decodeURIComponent(resolve![3]), bytes = repo.files[name];
    if (!bytes) return fail(404, "EntryNotFound", `${name} does not exist on "${revision}"`);
    const common = { "x-repo-commit": repo.commit };
    if (bytes.length < LFS_FROM) return this.#serve(req, res, `${repo.repo}/${name}`, bytes, { ...common, etag: `"${gitBlobId(bytes)}"` });
    const blob = sha256(bytes);
    this.#blobs.set(blob, { bytes, key: `${repo.repo}/${name}` });
    res.writeHead(302, { ...common, location: `${this.cdn}/blob/${blob}?name=${encodeURIComponent(name)}`, "x-linked-etag": `"${blob}"`, "x-linked-size": String(bytes.length) })
      .end();
  }

  #serve(req: IncomingMessage, res: ServerResponse, key: string, bytes: Uint8Array, headers: Record<string, string>) {
    const cut = this.cuts.get(key), hold = this.holds.get(key);
    this.cuts.delete(key);
    if (!hold) return sendBytes(req, res, bytes, headers, cut);
    // Held: the first 1000 bytes now, the rest once released.
    const { range } = req.headers, start = Number(/^bytes=(\d+)-$/.exec(range ?? "")?.[1] ?? 0);
    res.writeHead(range ? 206 : 200, {
      ...headers,
      "content-length": String(bytes.length - start),
      ...(range ? { "content-range": `bytes ${start}-${bytes.length - 1}/${bytes.length}` } : {}),
    });
    res.write(bytes.subarray(start, start + 1000));
    hold.then(() => res.end(bytes.subarray(start + 1000)));
  }

  /** Holds the downloads of a file until `release(key)`. */
  hold(key: string): void {
    this.holds.set(key, new Promise((resolve) => this.#release.set(key, resolve)));
  }

  release(key: string): void {
    this.#release.get(key)?.();
    this.holds.delete(key);
  }

  /** The requests for a repo's files (resolve URLs and the CDN), leaving out listings. */
  fileRequests(): Logged[] {
    return this.log.filter((l) => l.server === "cdn" || l.path.includes("/resolve/"));
  }

  close(): Promise<void> {
    for (const key of this.#release.keys()) this.release(key);
    return Promise.all(this.#servers.map((s) => new Promise<void>((resolve) => (s.closeAllConnections?.(), s.close(() => resolve()))))).then(() => undefined);
  }
}
