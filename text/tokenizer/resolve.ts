// The one tokenizer lookup, shared by loadBitNet and the command line (generate, ppl, sweep,
// convert, synth). In this order:
// 1. the `tokenizer` option: a Tokenizer, or a tokenizer.json / llama2.c tokenizer.bin as a
//    path, URL or bytes (told by content; a tokenizer.json path or URL also picks up the
//    tokenizer_config.json beside it, for BOS / EOS and the chat template), or a folder holding
//    one; "none" means no tokenizer (token ids only);
// 2. the file's own vocabulary (GGUF tokenizer.ggml.*);
// 3. beside the model (inside it, for a Hugging Face folder): tokenizer.json (with
//    tokenizer_config.json), tok512.bin, tokenizer.bin, for paths, folders and http(s) / file:
//    URLs alike (a URL's siblings are fetched; HTTP 404 means absent). A llama2.c file there
//    whose vocabulary is not the model's size is passed over for the next.
// Nothing found is an error naming the model and every place looked in.
import { type ByteSource, isDirectory, readBytes, readIfPresent, sourceName } from "../../runtime/files.ts";
import type { Checkpoint } from "../../formats/checkpoint.ts";
import { FormatError } from "../../core/errors.ts";
import { BpeTokenizer } from "./bpe.ts";
import { Llama2cTokenizer, type Tokenizer } from "./llama2c.ts";

/** What the `tokenizer` option takes: a Tokenizer, a tokenizer file (path, URL, bytes), or "none" (token ids only). */
export type TokenizerOption = ByteSource | Tokenizer | "none";

/** The files looked for beside a model, in order. */
export const TOKENIZER_FILES = ["tokenizer.json", "tok512.bin", "tokenizer.bin"] as const;

/** A tokenizer, where it came from, and the bytes it was read from (so converters can carry them on). */
export interface ResolvedTokenizer {
  /** The tokenizer; null only for `tokenizer: "none"`. */
  tokenizer: Tokenizer | null;
  /** Where it came from: a path or URL, "the tokenizer option", the file's own vocabulary, or "none". */
  from: string;
  /** The tokenizer.json bytes, when it was read from one. */
  json?: Uint8Array;
  /** The tokenizer_config.json bytes read with that tokenizer.json. */
  config?: Uint8Array;
  /** The llama2.c tokenizer.bin bytes, when it was read from one. */
  bin?: Uint8Array;
}

const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
const isJson = (bytes: Uint8Array) => bytes.find((b) => b !== 0x20 && b !== 0x0a && b !== 0x0d && b !== 0x09) === 0x7b;

/** A tokenizer file, told by content: a tokenizer.json (Hugging Face, with its tokenizer_config.json text) or a llama2.c tokenizer.bin. */
export function tokenizerFromBytes(bytes: Uint8Array, vocabSize: number, name: string, configJson?: string): Tokenizer {
  if (isJson(bytes)) return BpeTokenizer.fromJson(decode(bytes), configJson, name);
  return Llama2cTokenizer.fromBin(bytes, vocabSize, name);
}

/** How to name a file beside `source` (inside it, for a folder), or null when it has no location (bytes, streams, data: URLs). */
async function siblingsOf(source: ByteSource | null): Promise<((name: string) => string) | null> {
  if (source instanceof URL || (typeof source === "string" && /^(https?|file|data|blob):/i.test(source))) {
    const url = new URL(source);
    return url.protocol === "http:" || url.protocol === "https:" || url.protocol === "file:" ? (name) => new URL(name, url).href : null;
  }
  if (typeof source !== "string") return null;
  if (await isDirectory(source)) return (name) => `${source.replace(/[\\/]+$/, "")}/${name}`;
  const cut = Math.max(source.lastIndexOf("/"), source.lastIndexOf("\\"));
  return (name) => source.slice(0, cut + 1) + name;
}

function checkSize(tokenizer: Tokenizer, ckpt: Pick<Checkpoint, "file" | "config">, from: string): void {
  if (tokenizer.vocabSize !== ckpt.config.vocabSize) {
    throw new FormatError(ckpt.file, `tokenizer has ${tokenizer.vocabSize} tokens, the model ${ckpt.config.vocabSize} (tokenizer from ${from})`);
  }
}

/** A tokenizer.json and the tokenizer_config.json beside it (when `beside` can name it). */
async function fromJsonFile(bytes: Uint8Array, name: string, beside: ((name: string) => string) | null, signal?: AbortSignal): Promise<ResolvedTokenizer> {
  const config = beside ? (await readIfPresent(beside("tokenizer_config.json"), { signal })).bytes ?? undefined : undefined;
  return { tokenizer: BpeTokenizer.fromJson(decode(bytes), config && decode(config), name), from: name, json: bytes, ...(config ? { config } : {}) };
}

/**
 * The tokenizer of a model: the `tokenizer` option, else the checkpoint's own vocabulary, else
 * tokenizer.json / tok512.bin / tokenizer.bin beside `source` (the model's path, folder or URL;
 * null for a model without a location). Throws a FormatError naming the model and every place
 * it looked when there is none, unless the option is "none".
 */
export async function resolveTokenizer(
  source: ByteSource | null,
  ckpt: Pick<Checkpoint, "file" | "config" | "vocabulary">,
  option?: TokenizerOption,
  { signal }: { signal?: AbortSignal } = {},
): Promise<ResolvedTokenizer> {
  const vocabSize = ckpt.config.vocabSize;
  if (option === "none") return { tokenizer: null, from: "none" };
  if (option !== undefined) {
    if (typeof option === "object" && option !== null && typeof (option as Tokenizer).encode === "function") {
      const tokenizer = option as Tokenizer;
      checkSize(tokenizer, ckpt, "the tokenizer option");
      return { tokenizer, from: "the tokenizer option" };
    }
    const given = option as ByteSource;
    if (typeof given === "string" && (await isDirectory(given))) {
      const found = await besideLookup(given, ckpt, signal);
      if ("tokenizer" in found) return found;
      throw new FormatError(sourceName(given), `no tokenizer in this folder (looked for ${found.looked.join(", ")})`);
    }
    const name = sourceName(given), bytes = await readBytes(given, { signal });
    const resolved = isJson(bytes)
      ? await fromJsonFile(bytes, name, await siblingsOf(given), signal)
      : { tokenizer: Llama2cTokenizer.fromBin(bytes, vocabSize, name), from: name, bin: bytes };
    checkSize(resolved.tokenizer!, ckpt, name);
    return resolved;
  }
  const v = ckpt.vocabulary;
  if (v) {
    const tokenizer = v.kind === "spm" ? Llama2cTokenizer.fromGguf(v.tokens, v.scores) : BpeTokenizer.fromGguf(v, ckpt.file);
    return { tokenizer, from: `${ckpt.file} (its own vocabulary)` };
  }
  const found = source === null ? { looked: [] } : await besideLookup(source, ckpt, signal);
  if ("tokenizer" in found) return found;
  const places = found.looked.length
    ? `beside it: ${found.looked.join(", ")}`
    : `nothing beside it (${source === null ? "no model location" : `${sourceName(source)} has no location`} to look in)`;
  throw new FormatError(
    ckpt.file,
    `no tokenizer found. Looked for: the tokenizer option (not given); the file's own vocabulary (none: only GGUF metadata, tokenizer.ggml.*, carries one); ${places}. ` +
      `Pass options.tokenizer (--tokenizer F): a tokenizer.json or llama2.c tokenizer.bin as a path, URL or bytes, or a Tokenizer; or tokenizer "none" to work on token ids only`,
  );
}

/** tokenizer.json, tok512.bin, tokenizer.bin beside (or inside) `source`: the first that fits, or the places looked in with why each did not. */
async function besideLookup(source: ByteSource, ckpt: Pick<Checkpoint, "file" | "config">, signal?: AbortSignal): Promise<ResolvedTokenizer | { looked: string[] }> {
  const beside = await siblingsOf(source);
  if (!beside) return { looked: [] };
  const looked: string[] = [], vocabSize = ckpt.config.vocabSize;
  for (const file of TOKENIZER_FILES) {
    const where = beside(file);
    const found = await readIfPresent(where, { signal });
    if (!found.bytes) {
      looked.push(`${where} (${"status" in found && found.status ? `HTTP ${found.status}` : "absent"})`);
      continue;
    }
    const bytes = found.bytes;
    if (isJson(bytes)) {
      const resolved = await fromJsonFile(bytes, where, beside, signal);
      if (resolved.tokenizer!.vocabSize === vocabSize) return resolved;
      looked.push(`${where} (tokenizer has ${resolved.tokenizer!.vocabSize} tokens, the model ${vocabSize})`);
      continue;
    }
    const count = Llama2cTokenizer.countTokens(bytes);
    if (count !== null && count !== vocabSize) {
      looked.push(`${where} (tokenizer has ${count} tokens, the model ${vocabSize})`);
      continue;
    }
    return { tokenizer: Llama2cTokenizer.fromBin(bytes, vocabSize, where), from: where, bin: bytes };
  }
  return { looked };
}
