// The one place that touches a file system. Paths and file: URLs go through node:fs
// (Node, Deno and Bun all provide it); everything else goes through fetch, which every
// runtime has. Browsers and Workers never reach the node:fs branch.
import { BitNetError } from "../model/errors.ts";

/** A file path, a file: / http(s): URL, or bytes already in memory. */
export type ByteSource = string | URL | Uint8Array | ArrayBuffer;

function isUrlString(s: string): boolean {
  return /^(https?|file|data|blob):/i.test(s);
}

/** Reads a whole source into memory. */
export async function readBytes(source: ByteSource): Promise<Uint8Array> {
  if (source instanceof Uint8Array) return source;
  if (source instanceof ArrayBuffer) return new Uint8Array(source);
  const url = source instanceof URL ? source : isUrlString(source) ? new URL(source) : null;
  if (url === null || url.protocol === "file:") {
    const fs = await import("node:fs/promises");
    try {
      return new Uint8Array(await fs.readFile(url ?? (source as string)));
    } catch (e) {
      throw new BitNetError(`cannot read ${String(source)}: ${(e as Error).message}`, { cause: e });
    }
  }
  const response = await fetch(url);
  if (!response.ok) throw new BitNetError(`cannot fetch ${url.href}: HTTP ${response.status}`);
  return new Uint8Array(await response.arrayBuffer());
}

/** Writes bytes to a file path (Node, Deno, Bun). */
export async function writeBytes(path: string, bytes: Uint8Array): Promise<void> {
  const fs = await import("node:fs/promises");
  try {
    await fs.writeFile(path, bytes);
  } catch (e) {
    throw new BitNetError(`cannot write ${path}: ${(e as Error).message}`, { cause: e });
  }
}

/** Whether a path is a directory (false where there is no file system). */
export async function isDirectory(path: ByteSource): Promise<boolean> {
  if (typeof path !== "string" || /^[a-z]+:/i.test(path)) return false;
  try {
    const fs = await import("node:fs/promises");
    return (await fs.stat(path)).isDirectory();
  } catch {
    return false;
  }
}

/** Whether a file exists (false where there is no file system). */
export async function fileExists(path: string): Promise<boolean> {
  try {
    const fs = await import("node:fs/promises");
    return (await fs.stat(path)).isFile();
  } catch {
    return false;
  }
}

/** A human name for a source, for error messages. */
export function sourceName(source: ByteSource): string {
  if (source instanceof Uint8Array || source instanceof ArrayBuffer) return `<${source.byteLength} bytes in memory>`;
  return String(source);
}
