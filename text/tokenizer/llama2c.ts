// The llama2.c tokenizer (tokenizer.bin from llama2.c's tokenizer.py): a SentencePiece
// vocabulary of byte strings with merge scores. Encoding follows run.c's encode():
// a dummy leading space, one token per UTF-8 character (or <0xXX> byte tokens when the
// character is not in the vocabulary), then greedy merges of the best-scoring adjacent pair.
// Pieces are kept as "binary strings" (one char per byte) so merges work on raw bytes.
import { FormatError } from "../../core/errors.ts";

/** Beginning-of-sequence token id of llama2.c vocabularies. */
export const BOS = 1;
/** End-of-sequence token id of llama2.c vocabularies. */
export const EOS = 2;
const BYTE_TOKEN_OFFSET = 3; // <0x00> is token 3 in llama2.c vocabularies

// TextDecoder("latin1") is windows-1252 in the Encoding standard (Deno, Bun, browsers),
// which remaps bytes 0x80-0x9f: build the one-char-per-byte string by hand instead.
function binaryString(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i += 4096) s += String.fromCharCode(...bytes.subarray(i, i + 4096));
  return s;
}
const utf8 = new TextEncoder();

/** Text to token ids and back. */
export interface Tokenizer {
  /** Tokens in the vocabulary. */
  readonly vocabSize: number;
  /** Beginning-of-sequence id. */
  readonly bos: number;
  /** End-of-sequence id. */
  readonly eos: number;
  /** Tokens that end a generation (BOS and EOS for llama2.c; end-of-text and end-of-turn for Llama 3). */
  readonly stopTokens: ReadonlySet<number>;
  /** The checkpoint's chat template (Jinja), when it has one. */
  readonly chatTemplate?: string;
  /** Token ids of a text, with BOS first (default) and EOS last (not by default). */
  encode(text: string, options?: { bos?: boolean; eos?: boolean }): number[];
  /** The bytes that `token` prints when it follows `prev` (run.c's decode()). */
  decodeBytes(prev: number, token: number): Uint8Array;
  /** The text of a whole token sequence (BOS and EOS print nothing). */
  decode(tokens: ArrayLike<number>): string;
}

function bytesOf(piece: string): Uint8Array {
  const out = new Uint8Array(piece.length);
  for (let i = 0; i < piece.length; i++) out[i] = piece.charCodeAt(i);
  return out;
}

// SentencePiece vocabularies in GGUF write a space as U+2581.
const SPIECE_SPACE = /\u2581/g;

/** llama2.c's SentencePiece-style tokenizer (tokenizer.bin, or a GGUF llama vocabulary). */
export class Llama2cTokenizer implements Tokenizer {
  /** Beginning-of-sequence id (1). */
  readonly bos: number = BOS;
  /** End-of-sequence id (2). */
  readonly eos: number = EOS;
  readonly stopTokens: ReadonlySet<number> = new Set([BOS, EOS]); // as llama2.c: BOS ends the text
  readonly #ids = new Map<string, number>();

  /** pieces: byte strings (one char per byte) with spaces as " "; scores: merge priorities. */
  constructor(readonly pieces: string[], readonly scores: Float32Array) {
    pieces.forEach((piece, i) => {
      if (!this.#ids.has(piece)) this.#ids.set(piece, i);
    });
  }

  /** Parses llama2.c's tokenizer.bin for a model of `vocabSize` tokens; the file must hold exactly that many. */
  static fromBin(bytes: Uint8Array, vocabSize: number, file = "tokenizer"): Llama2cTokenizer {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (bytes.length < 4) throw new FormatError(file, `truncated: ${bytes.length} bytes, expected a 4-byte max_token_length first`);
    const pieces: string[] = new Array(vocabSize);
    const scores = new Float32Array(vocabSize);
    let at = 4;
    for (let i = 0; i < vocabSize; i++) {
      if (at + 8 > bytes.length) {
        throw new FormatError(file, `holds ${i} tokens, the model's vocabulary has ${vocabSize} (wrong tokenizer for this model?)`);
      }
      scores[i] = view.getFloat32(at, true);
      const len = view.getInt32(at + 4, true);
      at += 8;
      if (len < 0 || at + len > bytes.length) throw new FormatError(file, `token ${i} has length ${len}, past the end of the file`);
      pieces[i] = binaryString(bytes.subarray(at, at + len));
      at += len;
    }
    if (at !== bytes.length) {
      throw new FormatError(
        file,
        `has ${bytes.length - at} bytes after ${vocabSize} tokens: its vocabulary is larger than the model's ${vocabSize} (wrong tokenizer for this model?)`,
      );
    }
    return new Llama2cTokenizer(pieces, scores);
  }

  /** How many tokens a llama2.c tokenizer.bin holds, or null when its records do not end exactly at its end. */
  static countTokens(bytes: Uint8Array): number | null {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    let at = 4, count = 0;
    while (at + 8 <= bytes.length) {
      const len = view.getInt32(at + 4, true);
      if (len < 0 || at + 8 + len > bytes.length) return null;
      at += 8 + len;
      count++;
    }
    return bytes.length >= 4 && at === bytes.length ? count : null;
  }

  /** The vocabulary as llama2.c's tokenizer.bin (inverse of fromBin). */
  toBin(): Uint8Array {
    const size = 4 + this.pieces.reduce((n, p) => n + 8 + p.length, 0);
    const out = new Uint8Array(size), view = new DataView(out.buffer);
    view.setInt32(0, this.pieces.reduce((m, p) => Math.max(m, p.length), 0), true);
    let at = 4;
    this.pieces.forEach((piece, i) => {
      view.setFloat32(at, this.scores[i], true);
      view.setInt32(at + 4, piece.length, true);
      out.set(bytesOf(piece), at + 8);
      at += 8 + piece.length;
    });
    return out;
  }

  /** From GGUF metadata of a SentencePiece ("llama") vocabulary: token texts and scores. */
  static fromGguf(tokens: string[], scores: number[]): Llama2cTokenizer {
    return new Llama2cTokenizer(tokens.map((t) => binaryString(utf8.encode(t.replace(SPIECE_SPACE, " ")))), Float32Array.from(scores));
  }

  /** Token texts as GGUF stores them (UTF-8, spaces as U+2581); inverse of fromGguf. */
  ggufTokens(): string[] {
    const decoder = new TextDecoder("utf-8", { fatal: true });
    return this.pieces.map((p) => decoder.decode(bytesOf(p)).replace(/ /g, "\u2581"));
  }

  /** Tokens in the vocabulary. */
  get vocabSize(): number {
    return this.pieces.length;
  }

  /** Token ids of a text, merged as run.c merges them. */
  encode(text: string, { bos = true, eos = false }: { bos?: boolean; eos?: boolean } = {}): number[] {
    const tokens: number[] = [];
    if (bos) tokens.push(BOS);
    const bytes = utf8.encode(text);
    if (bytes.length > 0) {
      const space = this.#ids.get(" ");
      if (space !== undefined) tokens.push(space);
    }
    // One token per UTF-8 character: a lead byte and up to 3 continuation bytes.
    for (let i = 0; i < bytes.length;) {
      let end = i + 1;
      while (end < bytes.length && (bytes[end] & 0xc0) === 0x80 && end - i < 4) end++;
      const id = this.#ids.get(binaryString(bytes.subarray(i, end)));
      if (id !== undefined) tokens.push(id);
      else for (let b = i; b < end; b++) tokens.push(bytes[b] + BYTE_TOKEN_OFFSET);
      i = end;
    }
    const merged = this.#merge(tokens);
    if (eos) merged.push(EOS);
    return merged;
  }

  // run.c merges, over and over, the adjacent pair whose concatenation has the highest
  // score (the leftmost among equals). That loop is quadratic; this gives the same result
  // in O(n log n) with a heap of candidate pairs over a linked list of tokens.
  #merge(tokens: number[]): number[] {
    const n = tokens.length;
    const id = Int32Array.from(tokens);
    const next = new Int32Array(n).map((_, i) => i + 1);
    const prev = new Int32Array(n).map((_, i) => i - 1);
    const heap = new PairHeap();
    const consider = (left: number) => {
      const right = next[left];
      if (left < 0 || right >= n) return;
      const m = this.#ids.get(this.pieces[id[left]] + this.pieces[id[right]]);
      if (m !== undefined) heap.push(this.scores[m], left, id[left], id[right], m);
    };
    for (let i = 0; i + 1 < n; i++) consider(i);
    for (let top = heap.pop(); top; top = heap.pop()) {
      const { left, leftId, rightId, merged } = top;
      const right = next[left];
      // Stale: one side was merged away or changed since this pair was queued.
      if (id[left] !== leftId || right >= n || id[right] !== rightId) continue;
      id[left] = merged;
      id[right] = -1;
      next[left] = next[right];
      if (next[right] < n) prev[next[right]] = left;
      consider(prev[left]);
      consider(left);
    }
    const out: number[] = [];
    for (let i = 0; i < n; i = next[i]) out.push(id[i]);
    return out;
  }

  decodeBytes(prev: number, token: number): Uint8Array {
    let piece = this.pieces[token] ?? "";
    if (prev === BOS && piece.startsWith(" ")) piece = piece.slice(1);
    const byte = /^<0x([0-9A-Fa-f]{2})>$/.exec(piece);
    return byte ? new Uint8Array([parseInt(byte[1], 16)]) : bytesOf(piece);
  }

  decode(tokens: ArrayLike<number>): string {
    const decoder = new TextDecoder();
    let out = "";
    for (let i = 0; i < tokens.length; i++) {
      if (tokens[i] === BOS || tokens[i] === EOS) continue; // control tokens print nothing
      out += decoder.decode(this.decodeBytes(i > 0 ? tokens[i - 1] : -1, tokens[i]), { stream: true });
    }
    return out + decoder.decode();
  }
}

interface Pair {
  score: number;
  left: number;
  leftId: number;
  rightId: number;
  merged: number;
}

// Max-heap on score, then min on position: the order run.c's scan would pick pairs in.
class PairHeap {
  readonly #items: Pair[] = [];
  #before(a: Pair, b: Pair): boolean {
    return a.score > b.score || (a.score === b.score && a.left < b.left);
  }
  push(score: number, left: number, leftId: number, rightId: number, merged: number): void {
    const items = this.#items;
    items.push({ score, left, leftId, rightId, merged });
    for (let i = items.length - 1; i > 0;) {
      const parent = (i - 1) >> 1;
      if (!this.#before(items[i], items[parent])) break;
      [items[i], items[parent]] = [items[parent], items[i]];
      i = parent;
    }
  }
  pop(): Pair | undefined {
    const items = this.#items;
    const top = items[0];
    const last = items.pop();
    if (items.length > 0 && last) {
      items[0] = last;
      for (let i = 0;;) {
        const l = 2 * i + 1, r = l + 1;
        let best = i;
        if (l < items.length && this.#before(items[l], items[best])) best = l;
        if (r < items.length && this.#before(items[r], items[best])) best = r;
        if (best === i) break;
        [items[i], items[best]] = [items[best], items[i]];
        i = best;
      }
    }
    return top;
  }
}
