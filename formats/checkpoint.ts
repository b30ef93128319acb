// What a format reader hands to the model builder: the config and, for every tensor,
// where its bytes sit in the file. Nothing is read until the builder uploads it.
import type { RandomAccessFile } from "../runtime/files.ts";
import type { ModelConfig } from "./config.ts";
import type { TernaryTypeName } from "./tensor-types.ts";

/** A byte range of the source file; float tensors stored as f16 or bf16 say so (default f32). */
export interface Span {
  /** Byte offset in the checkpoint's file. */
  offset: number;
  /** Length in bytes. */
  length: number;
  /** Half-precision storage (absent: f32). */
  dtype?: "f16" | "bf16";
}

/** A linear layer's weight [rows = out, cols = in]; `name` is the tensor's name in its file
 *  (for messages). Float weights are used as they are ("f32": llama2.c's fp32 models) or
 *  ternarized at load with absmean ("absmean": BitNet b1.58 master weights in f32 / f16 /
 *  bf16); ternary ones are stored in a type of formats/tensor-types.ts, with `scale` when the
 *  format keeps it outside the data (bitllama's header, Hugging Face's weight_scale) and
 *  `outputScale` when a separate one-value tensor multiplies the output (llama.cpp's
 *  `*.scale`, bitnet.cpp's `*.weight_scale`). */
export type LinearTensor =
  & { name: string; rows: number; cols: number; data: Span }
  & (
    | { encoding: "f32" }
    | { encoding: "absmean" }
    | { encoding: TernaryTypeName; scale?: number; outputScale?: Span }
  );

/** The tensors that load as ternary codes (absmean masters and the ternary types). */
export type TernaryTensor = Exclude<LinearTensor, { encoding: "f32" }>;

/** One transformer block's tensors. */
export interface LayerTensors {
  /** RMSNorm weight before attention (absent in bitllama). */
  attnNorm?: Span;
  /** RMSNorm weight before the feed-forward block (absent in bitllama). */
  ffnNorm?: Span;
  /** RMSNorm weights [dim] of the attention output and [hiddenDim] of the gated FFN (2B4T). */
  attnSubNorm?: Span;
  /** BitNet 2B4T's norm before the down projection. */
  ffnSubNorm?: Span;
  /** Query projection. */
  q: LinearTensor;
  /** Key projection. */
  k: LinearTensor;
  /** Value projection. */
  v: LinearTensor;
  /** Attention output projection. */
  o: LinearTensor;
  /** Feed-forward gate projection. */
  gate: LinearTensor;
  /** Feed-forward up projection. */
  up: LinearTensor;
  /** Feed-forward down projection. */
  down: LinearTensor;
}

/** A byte-level BPE vocabulary as GGUF stores it. */
export interface BpeVocabulary {
  /** Token strings (byte-level encoded), by id. */
  tokens: string[];
  /** Jinja chat template, if any. */
  chatTemplate?: string;
  /** Merge rules, highest priority first. */
  merges: string[];
  /** GGUF token types: 1 normal, 3 control, 4 user defined. */
  tokenTypes: number[];
  /** Beginning-of-sequence id. */
  bos: number;
  /** End-of-sequence id. */
  eos: number;
  /** Pre-tokenizer name (llama-bpe for Llama 3). */
  pre: string;
}

/** A parsed checkpoint: its config and where each tensor lies in its file (nothing loaded yet). */
export interface Checkpoint {
  /** Name of the source, for messages. */
  file: string;
  /** The file the spans point into (shards of a sharded checkpoint appear back to back). */
  source: RandomAccessFile;
  /** Architecture and sizes. */
  config: ModelConfig;
  /** Float [vocab, dim]. */
  embedding: Span;
  /** Float [dim]. */
  finalNorm: Span;
  /** Float [vocab, dim]; absent when the classifier is the embedding table. */
  classifier?: Span;
  /** The blocks' tensors, in order. */
  layers: LayerTensors[];
  /** A vocabulary stored in the file (GGUF), used when no tokenizer is given: SentencePiece
   *  ("llama": token texts and merge scores) or byte-level BPE ("gpt2"). */
  vocabulary?: { kind: "spm"; tokens: string[]; scores: number[] } | ({ kind: "bpe" } & BpeVocabulary);
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
