// Hub ids: "hf:ORG/REPO[@REVISION][/FILE]", as loadBitNet and the command line take them.
import { HubError } from "../core/errors.ts";

/** A parsed hub id. */
export interface HubId {
  /** The id as given, for messages. */
  text: string;
  /** "ORG/REPO". */
  repo: string;
  /** A branch, tag or commit ("main" unless given; "refs/pr/1" is written refs%2Fpr%2F1 in an id). */
  revision: string;
  /** One file of the repo, when the id names one. */
  file?: string;
}

const PREFIX = "hf:";
// Hugging Face's rule for an owner or repo name: letters, digits, "-", "_", "."; no "--" or ".." and not at the ends.
const NAME = /^(?!.*(--|\.\.))[A-Za-z0-9](?:[\w.-]{0,94}[A-Za-z0-9])?$/;

/** Whether a source names a model on the hub ("hf:..."). */
export function isHubId(source: unknown): source is string {
  return typeof source === "string" && source.startsWith(PREFIX);
}

/** Whether a revision is a full commit hash (cached for good: what it names never changes). */
export const isCommit = (revision: string) => /^[0-9a-f]{40}$/.test(revision);

/** Parses "hf:ORG/REPO[@REVISION][/FILE]" (a HubError saying what is expected otherwise). */
export function parseHubId(text: string): HubId {
  const bad = (why: string) => new HubError(text, `${why}; expected hf:ORG/REPO, hf:ORG/REPO@REVISION or hf:ORG/REPO[@REVISION]/FILE`);
  if (!isHubId(text)) throw bad(`not a hub id (no "${PREFIX}" prefix)`);
  const [org, name, ...rest] = text.slice(PREFIX.length).split("/");
  if (name === undefined) throw bad("no repo name");
  const at = name.indexOf("@"), repoName = at < 0 ? name : name.slice(0, at);
  let revision = "main";
  if (at >= 0) {
    try {
      revision = decodeURIComponent(name.slice(at + 1));
    } catch {
      throw bad(`the revision ${JSON.stringify(name.slice(at + 1))} is not valid percent-encoding`);
    }
    if (!revision) throw bad("an empty revision after @");
  }
  for (const part of [org, repoName]) if (!NAME.test(part)) throw bad(`${JSON.stringify(part)} is not a valid owner or repo name`);
  const file = rest.join("/");
  if (rest.length && (!file || rest.some((p) => p === "" || p === "." || p === ".."))) throw bad(`${JSON.stringify(file)} is not a file path in the repo`);
  return { text, repo: `${org}/${repoName}`, revision, ...(file ? { file } : {}) };
}
