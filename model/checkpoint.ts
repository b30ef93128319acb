// What a format reader hands to the model builder: the config and, for every tensor,
// where its bytes sit in the file. Nothing is copied until the builder uploads it.
import type { ModelConfig } from "./config.ts";

/** A byte range of the source file. */
export interface Span {
  offset: number;
  length: number;
}

/** A linear layer's weight [rows = out, cols = in] in one of the stored encodings. */
export type LinearTensor =
  | { encoding: "f32"; rows: number; cols: number; data: Span }
  /** 2-bit sign-magnitude codes (bitllama): 00 = 0, 01 = +1, 11 = -1, times `scale`. */
  | { encoding: "ternary-sm2"; rows: number; cols: number; data: Span; scale: number; msbFirst: boolean };

export interface LayerTensors {
  attnNorm?: Span;
  ffnNorm?: Span;
  q: LinearTensor;
  k: LinearTensor;
  v: LinearTensor;
  o: LinearTensor;
  gate: LinearTensor;
  up: LinearTensor;
  down: LinearTensor;
}

export interface Checkpoint {
  /** Name of the source, for messages. */
  file: string;
  bytes: Uint8Array;
  config: ModelConfig;
  /** f32 [vocab, dim]. */
  embedding: Span;
  /** f32 [dim]. */
  finalNorm: Span;
  /** f32 [vocab, dim]; absent when the classifier is the embedding table. */
  classifier?: Span;
  layers: LayerTensors[];
}

/** Hands out consecutive spans of a file, failing with `fail` past its end. */
export class SpanCursor {
  constructor(public offset: number, readonly size: number, readonly fail: (detail: string) => Error) {}
  take(length: number, what: string): Span {
    if (this.offset + length > this.size) {
      throw this.fail(`truncated: ${what} needs bytes ${this.offset}..${this.offset + length}, file has ${this.size}`);
    }
    const span = { offset: this.offset, length };
    this.offset += length;
    return span;
  }
  f32(count: number, what: string): Span {
    return this.take(count * 4, what);
  }
}
