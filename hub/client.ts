// Talking to a Hugging Face Hub, or a mirror at HF_ENDPOINT as huggingface_hub honours it: the
// file listing of a revision (resolved to its commit), and files through the
// /{repo}/resolve/{revision}/{file} URLs. Redirects are followed here, hop by hop, so the access
// token goes to the endpoint only and never to the CDN a large file is redirected to.
import { BitNetError, HubError } from "../core/errors.ts";
import { env } from "../runtime/environment.ts";
import { Exchange, type ReadOptions } from "../runtime/files.ts";
import type { HubId } from "./id.ts";

/** Where the hub is and who asks. */
export interface HubOptions {
  /** The hub's address: default $HF_ENDPOINT, else https://huggingface.co. */
  hubEndpoint?: string;
  /** A Hugging Face access token, for gated and private repos: default $HF_TOKEN. Sent to the endpoint only. */
  accessToken?: string;
}

/** A hub to talk to, with the limits of every exchange. */
export interface Hub {
  endpoint: URL;
  token?: string;
  read: Pick<ReadOptions, "signal" | "stallTimeoutMs">;
}

/** One file of a repo at a commit, as the hub lists it. */
export interface RepoFile {
  /** Path in the repo ("model.safetensors", "gguf/model.gguf"). */
  name: string;
  /** Bytes. */
  size: number;
  /** What the hub sends as the file's ETag: the sha256 of an LFS file, else the git blob id. */
  etag: string;
}

/** The files of a repo at one commit. */
export interface Snapshot {
  commit: string;
  files: RepoFile[];
}

const DEFAULT_ENDPOINT = "https://huggingface.co";
// The hub answers a resolve URL with one redirect (two when a repo was renamed); more is a loop.
const MAX_REDIRECTS = 8;

/** The hub `options` name, checked (a HubError for an endpoint that is no http(s) URL). */
export function hubOf(options: HubOptions & Pick<ReadOptions, "signal" | "stallTimeoutMs">, id: string): Hub {
  const text = options.hubEndpoint ?? env("HF_ENDPOINT") ?? DEFAULT_ENDPOINT;
  let endpoint: URL;
  try {
    endpoint = new URL(text.replace(/\/+$/, "") + "/");
  } catch {
    throw new HubError(id, `the hub endpoint ${JSON.stringify(text)} (hubEndpoint option or HF_ENDPOINT) is not a URL`);
  }
  if (endpoint.protocol !== "http:" && endpoint.protocol !== "https:") throw new HubError(id, `the hub endpoint ${endpoint.href} is not an http(s) URL`);
  const token = options.accessToken ?? env("HF_TOKEN");
  return { endpoint, ...(token ? { token } : {}), read: { signal: options.signal, stallTimeoutMs: options.stallTimeoutMs } };
}

const filePath = (file: string) => file.split("/").map(encodeURIComponent).join("/");

/** The URL a file of a repo at a revision is downloaded from. */
export function resolveUrl(hub: Hub, repo: string, revision: string, file: string): URL {
  return new URL(`${repo}/resolve/${encodeURIComponent(revision)}/${filePath(file)}`, hub.endpoint);
}

/** The hub's answer that is not a success, as a HubError a user can act on. */
function statusError(hub: Hub, id: HubId, what: string, response: Response): HubError {
  const { status } = response, code = response.headers.get("x-error-code"), said = response.headers.get("x-error-message");
  const hint = said ? ` (the hub says: ${said})` : "";
  if (status === 401 || status === 403 || code === "GatedRepo") {
    const how = hub.token
      ? "the access token given is not allowed to read it: check that its account has accepted the repo's terms"
      : "the repo is gated or private: pass an access token (the accessToken option, or HF_TOKEN) of an account that has accepted its terms";
    return new HubError(id.text, `${what}: HTTP ${status}${hint}; ${how}`, status);
  }
  if (status === 404) {
    const missing = code === "EntryNotFound"
      ? "no such file in the repo"
      : code === "RevisionNotFound"
      ? `no revision ${JSON.stringify(id.revision)}`
      : "no such repo, revision or file";
    return new HubError(id.text, `${what}: HTTP 404, ${missing} at ${hub.endpoint.origin}${hint}`, status);
  }
  return new HubError(id.text, `${what}: HTTP ${status}${hint}`, status);
}

/** An answer of the hub: the response after the redirects, its exchange (end it when done), and the ETag the hub itself sent. */
export interface HubResponse {
  response: Response;
  exchange: Exchange;
  /** X-Linked-Etag or ETag of the endpoint's own first answer, unquoted; null where only another origin's answer could be read. */
  etag: string | null;
}

const unquote = (etag: string | null) => etag?.replace(/^W\//, "").replace(/^"(.*)"$/, "$1") ?? null;

/**
 * GETs a URL of the hub, following redirects by hand: the token goes with requests to the
 * endpoint's origin only. Where redirects cannot be read (a browser answers "manual" with an
 * opaque response), the fetch follows them itself, and browsers drop Authorization on a
 * cross-origin hop. A status other than 2xx (and 416 when `accept416`) is a HubError.
 */
export async function hubGet(hub: Hub, id: HubId, url: URL, what: string, headers: Record<string, string> = {}, accept416 = false): Promise<HubResponse> {
  const exchange = new Exchange(url, hub.read);
  try {
    let at = url, etag: string | null = null;
    for (let hop = 0;; hop++) {
      const own = at.origin === hub.endpoint.origin;
      const sent = own && hub.token ? { ...headers, Authorization: `Bearer ${hub.token}` } : headers;
      let response = await exchange.fetch(sent, "manual", at);
      const hidden = response.type === "opaqueredirect"; // a browser: it follows, and the answer may be the CDN's
      if (hidden) response = await exchange.fetch(sent, "follow", at);
      const endpoints = own && (!hidden || new URL(response.url || at.href).origin === hub.endpoint.origin);
      if (endpoints && etag === null) etag = unquote(response.headers.get("x-linked-etag") ?? response.headers.get("etag"));
      const location = response.headers.get("location");
      if (response.status >= 300 && response.status < 400 && location) {
        if (hop === MAX_REDIRECTS) throw new HubError(id.text, `${what}: more than ${MAX_REDIRECTS} redirects from ${url.href}`);
        await response.body?.cancel();
        at = new URL(location, at);
        continue;
      }
      if (!response.ok && !(accept416 && response.status === 416)) {
        await response.body?.cancel();
        throw statusError(hub, id, what, response);
      }
      return { response, exchange, etag };
    }
  } catch (e) {
    exchange.end();
    throw e;
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null;

/** The files of `id`'s repo at its revision, and the commit the revision names now. */
export async function fetchSnapshot(hub: Hub, id: HubId): Promise<Snapshot> {
  const url = new URL(`api/models/${id.repo}/revision/${encodeURIComponent(id.revision)}?blobs=true`, hub.endpoint);
  const what = `listing the files of ${id.repo} at ${id.revision}`;
  const { response, exchange } = await hubGet(hub, id, url, what);
  let body: unknown;
  try {
    body = JSON.parse(await exchange.within(response.text(), () => "no complete listing"));
  } catch (e) {
    if (e instanceof BitNetError) throw e;
    throw new HubError(id.text, `${what}: the answer of ${url.href} is not JSON (${(e as Error).message})`);
  } finally {
    exchange.end();
  }
  const bad = (why: string) => new HubError(id.text, `${what}: the answer of ${url.href} ${why}`);
  if (!isObject(body) || typeof body.sha !== "string" || !/^[0-9a-f]{40}$/.test(body.sha)) throw bad("has no commit sha");
  if (!Array.isArray(body.siblings)) throw bad("has no siblings list");
  const files = body.siblings.map((s: unknown): RepoFile => {
    if (!isObject(s) || typeof s.rfilename !== "string") throw bad("lists a file without rfilename");
    const lfs = isObject(s.lfs) ? s.lfs : null;
    const size = lfs?.size ?? s.size, etag = lfs?.sha256 ?? s.blobId;
    if (typeof size !== "number" || !Number.isSafeInteger(size) || size < 0 || typeof etag !== "string") {
      throw bad(`lists ${s.rfilename} without its size and blob id (asked with ?blobs=true)`);
    }
    return { name: s.rfilename, size, etag };
  });
  return { commit: body.sha, files };
}
