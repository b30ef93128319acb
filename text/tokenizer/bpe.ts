// Byte-level BPE tokenizers (Llama 3, and so BitNet b1.58 2B4T), on @huggingface/tokenizers
// (pure JavaScript: runs in every runtime). One implementation, fed either from a
// tokenizer.json or from GGUF metadata (tokenizer.ggml.*, pre-tokenizer "llama-bpe"),
// which is turned into the equivalent tokenizer.json.
import { Tokenizer as HfTokenizer } from "@huggingface/tokenizers";
import { FormatError } from "../../core/errors.ts";
import type { Tokenizer } from "./llama2c.ts";
import type { BpeVocabulary } from "../../formats/checkpoint.ts";
export type { BpeVocabulary };

// Llama 3's pre-tokenizer, as its tokenizer.json and llama.cpp's "llama-bpe" define it.
const LLAMA3_SPLIT = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const LLAMA3_PRE_TOKENIZER = {
  type: "Sequence",
  pretokenizers: [
    { type: "Split", pattern: { Regex: LLAMA3_SPLIT }, behavior: "Isolated", invert: false },
    { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: false },
  ],
};
const GGUF_PRE_TOKENIZERS: Record<string, object> = { "llama-bpe": LLAMA3_PRE_TOKENIZER, llama3: LLAMA3_PRE_TOKENIZER };

// GPT-2's byte <-> printable character table that byte-level BPE vocabularies are written in.
const BYTE_OF_CHAR = new Map<number, number>();
{
  let extra = 256;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
    BYTE_OF_CHAR.set(printable ? b : extra++, b);
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/**
 * The parts of a tokenizer.json this class reads, checked before any is used: a BPE model
 * whose vocabulary maps strings to ids, merges as "a b" or ["a", "b"], added tokens with an
 * id and a content. Ids are dense (below the number of entries), so no table is sized by a
 * number from the file.
 */
function checkTokenizerJson(
  json: unknown,
  file: string,
): asserts json is { model: { vocab: Record<string, number>; merges?: (string | string[])[] }; added_tokens?: { id: number; content: string; special?: boolean }[] } {
  const fail = (detail: string) => new FormatError(file, detail);
  if (!isObject(json) || !isObject(json.model)) throw fail("has no model object");
  const { type, vocab, merges } = json.model;
  if (type !== "BPE") throw fail(`model type ${JSON.stringify(type)}, expected "BPE"`);
  if (!isObject(vocab)) throw fail("model.vocab is not an object of token -> id");
  if (
    merges !== undefined && !(Array.isArray(merges) && merges.every((m) => typeof m === "string" || (Array.isArray(m) && m.length === 2 && m.every((s) => typeof s === "string"))))
  ) {
    throw fail(`model.merges is not a list of "a b" strings or ["a", "b"] pairs`);
  }
  const added = json.added_tokens ?? [];
  if (
    !Array.isArray(added) ||
    !added.every((t) => isObject(t) && typeof t.content === "string" && Number.isSafeInteger(t.id) && (t.special === undefined || typeof t.special === "boolean"))
  ) {
    throw fail("added_tokens is not a list of { id, content, special }");
  }
  const ids = [...Object.values(vocab), ...added.map((t) => t.id)], entries = ids.length;
  for (const id of ids) {
    if (!Number.isSafeInteger(id) || (id as number) < 0 || (id as number) >= entries) {
      throw fail(`token id ${JSON.stringify(id)} is not an integer in 0..${entries - 1} (ids are dense: the file has ${entries} entries)`);
    }
  }
}

/** Byte-level BPE (Llama 3, BitNet 2B4T) on @huggingface/tokenizers. */
export class BpeTokenizer implements Tokenizer {
  readonly #hf: HfTokenizer;
  readonly #tokens: string[];
  readonly #special: Set<number>;
  readonly #merges: string[];
  readonly #json: object;
  readonly stopTokens: ReadonlySet<number>;

  private constructor(
    json: { model: { vocab: Record<string, number>; merges?: (string | string[])[] }; added_tokens?: { id: number; content: string; special?: boolean }[] },
    readonly bos: number,
    readonly eos: number,
    file: string,
    readonly chatTemplate?: string,
  ) {
    this.#json = json;
    try {
      this.#hf = new HfTokenizer(json, {});
      // A field of the wrong type may only fail at the first use: use it once here.
      this.#hf.decode(this.#hf.encode("Hello, world! 123\n", { add_special_tokens: false }).ids, { skip_special_tokens: true });
    } catch (e) {
      throw new FormatError(file, `not a usable tokenizer: ${(e as Error)?.message ?? e}`, { cause: e });
    }
    this.#tokens = [];
    for (const [text, id] of Object.entries(json.model.vocab)) this.#tokens[id] = text;
    // tokenizer.json writes merges as "a b" or, in newer files, as ["a", "b"].
    this.#merges = (json.model.merges ?? []).map((m) => (Array.isArray(m) ? m.join(" ") : m));
    this.#special = new Set();
    for (const t of json.added_tokens ?? []) {
      this.#tokens[t.id] = t.content;
      if (t.special) this.#special.add(t.id);
    }
    // Llama 3 ends a turn with <|eot_id|> and a text with <|end_of_text|>: both stop.
    const stops = [eos, ...["<|eot_id|>", "<|end_of_text|>", "<|eom_id|>"].map((t) => this.#tokens.indexOf(t))];
    this.stopTokens = new Set(stops.filter((id) => id >= 0));
  }

  /** From tokenizer.json text (and tokenizer_config.json for the BOS / EOS tokens). */
  static fromJson(tokenizerJson: string, configJson: string | undefined, file = "tokenizer.json"): BpeTokenizer {
    let json, config;
    try {
      json = JSON.parse(tokenizerJson);
      config = configJson ? JSON.parse(configJson) : {};
    } catch (e) {
      throw new FormatError(file, `not valid JSON: ${(e as Error).message}`);
    }
    checkTokenizerJson(json, file);
    if (typeof config !== "object" || config === null || Array.isArray(config)) throw new FormatError(file, "its tokenizer_config.json is not a JSON object");
    const idOf = (token: unknown, fallback: string) => {
      const text = typeof token === "string" ? token : typeof (token as { content?: unknown })?.content === "string" ? (token as { content: string }).content : fallback;
      const added = (json.added_tokens ?? []).find((t: { content: string }) => t.content === text);
      return added?.id ?? (Object.hasOwn(json.model.vocab, text) ? json.model.vocab[text] : -1);
    };
    // chat_template is one template, or (newer files) a list of named ones whose "default" applies.
    const named = Array.isArray(config.chat_template) ? config.chat_template.find((t: { name?: string }) => t?.name === "default")?.template : undefined;
    const template = typeof config.chat_template === "string" ? config.chat_template : typeof named === "string" ? named : undefined;
    return new BpeTokenizer(json, idOf(config.bos_token, "<|begin_of_text|>"), idOf(config.eos_token, "<|end_of_text|>"), file, template);
  }

  /** From GGUF metadata (tokenizer.ggml.model "gpt2"). */
  static fromGguf(v: BpeVocabulary, file: string): BpeTokenizer {
    const pre = GGUF_PRE_TOKENIZERS[v.pre];
    if (!pre) throw new FormatError(file, `tokenizer.ggml.pre "${v.pre}" is not supported (supported: ${Object.keys(GGUF_PRE_TOKENIZERS).join(", ")})`);
    const vocab: Record<string, number> = {};
    const added: { id: number; content: string; special: boolean; single_word: boolean; lstrip: boolean; rstrip: boolean; normalized: boolean }[] = [];
    v.tokens.forEach((token, id) => {
      if (v.tokenTypes[id] === 3 || v.tokenTypes[id] === 4) {
        added.push({ id, content: token, special: v.tokenTypes[id] === 3, single_word: false, lstrip: false, rstrip: false, normalized: v.tokenTypes[id] === 4 });
      } else vocab[token] = id;
    });
    const json = {
      version: "1.0",
      added_tokens: added,
      normalizer: null,
      pre_tokenizer: pre,
      post_processor: null,
      decoder: { type: "ByteLevel", add_prefix_space: true, trim_offsets: true, use_regex: true },
      model: {
        type: "BPE",
        dropout: null,
        unk_token: null,
        continuing_subword_prefix: null,
        end_of_word_suffix: null,
        fuse_unk: false,
        byte_fallback: false,
        ignore_merges: true,
        vocab,
        merges: v.merges,
      },
    };
    return new BpeTokenizer(json, v.bos, v.eos, file, v.chatTemplate);
  }

  /** The vocabulary as GGUF stores it (inverse of fromGguf). */
  ggufVocabulary(): BpeVocabulary {
    return {
      tokens: this.#tokens,
      merges: this.#merges,
      tokenTypes: this.#tokens.map((_, id) => (this.#special.has(id) ? 3 : 1)),
      bos: this.bos,
      eos: this.eos,
      pre: "llama-bpe",
      chatTemplate: this.chatTemplate,
    };
  }

  /** The tokenizer as tokenizer.json text (what it was read from, or built from GGUF metadata). */
  toJson(): string {
    return JSON.stringify(this.#json);
  }

  /** Tokens in the vocabulary. */
  get vocabSize(): number {
    return this.#tokens.length;
  }

  /** Token ids of a text, with BOS first (default) and EOS last (not by default). */
  encode(text: string, { bos = true, eos = false }: { bos?: boolean; eos?: boolean } = {}): number[] {
    const ids = this.#hf.encode(text, { add_special_tokens: false }).ids;
    return [...(bos ? [this.bos] : []), ...ids, ...(eos ? [this.eos] : [])];
  }

  decodeBytes(_prev: number, token: number): Uint8Array {
    if (this.#special.has(token)) return new Uint8Array(0); // control tokens print nothing
    const text = this.#tokens[token] ?? "";
    const bytes: number[] = [];
    for (const ch of text) {
      const b = BYTE_OF_CHAR.get(ch.codePointAt(0)!);
      if (b === undefined) bytes.push(...new TextEncoder().encode(ch));
      else bytes.push(b);
    }
    return Uint8Array.from(bytes);
  }

  /** A token's text as the vocabulary spells it (special tokens included). */
  tokenText(id: number): string | undefined {
    return this.#tokens[id];
  }

  decode(tokens: ArrayLike<number>): string {
    return this.#hf.decode(Array.from(tokens), { skip_special_tokens: true, clean_up_tokenization_spaces: false });
  }
}
