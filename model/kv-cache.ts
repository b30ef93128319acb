// Keys and values of every position seen so far, [layers][seqLen][kvDim] each: f32, or
// quantized per token and head (8, 4 or 3 bits as codes of one byte, with f32 absmax
// scales [layers][seqLen][kvHeads]: assembly/kv-quant.ts). A new sequence simply writes
// from position 0 again: positions past the current one are never read (attention is
// causal), so there is nothing to clear.
import { NonFiniteError } from "./errors.ts";
import type { Kernels } from "../runtime/kernels.ts";
import type { ModelConfig } from "./config.ts";

export type KVBits = 32 | 8 | 4 | 3;

export class KVCache {
  readonly #keys: number;
  readonly #values: number;
  readonly #keyScales: number;
  readonly #valueScales: number;
  readonly #layerValues: number;
  readonly #layerScales: number;

  constructor(readonly kernels: Kernels, readonly config: ModelConfig, readonly bits: KVBits = 32) {
    this.#layerValues = config.seqLen * config.kvDim;
    this.#layerScales = config.seqLen * config.nKvHeads;
    const bytes = bits === 32 ? 4 : 1;
    this.#keys = kernels.allocBytes(config.nLayers * this.#layerValues * bytes);
    this.#values = kernels.allocBytes(config.nLayers * this.#layerValues * bytes);
    this.#keyScales = bits === 32 ? 0 : kernels.allocF32(config.nLayers * this.#layerScales);
    this.#valueScales = bits === 32 ? 0 : kernels.allocF32(config.nLayers * this.#layerScales);
  }

  get quantized(): boolean {
    return this.bits !== 32;
  }

  /** Address of layer l's keys [seqLen, kvDim] (f32, or int8 codes when quantized). */
  keys(layer: number): number {
    return this.#keys + layer * this.#layerValues * (this.quantized ? 1 : 4);
  }

  values(layer: number): number {
    return this.#values + layer * this.#layerValues * (this.quantized ? 1 : 4);
  }

  /** Address of layer l's key / value scales [seqLen, kvHeads] (quantized caches). */
  keyScales(layer: number): number {
    return this.#keyScales + layer * this.#layerScales * 4;
  }

  valueScales(layer: number): number {
    return this.#valueScales + layer * this.#layerScales * 4;
  }

  /** Quantizes f32 key and value rows [tokens, kvDim] into positions pos.. of layer l. */
  store(layer: number, pos: number, tokens: number, keys: number, values: number): void {
    const { kvDim, nKvHeads, headSize } = this.config, k = this.kernels.k;
    const bad = k.quantizeKV(keys, tokens, nKvHeads, headSize, this.bits, this.keys(layer) + pos * kvDim, this.keyScales(layer) + pos * nKvHeads * 4) +
      k.quantizeKV(values, tokens, nKvHeads, headSize, this.bits, this.values(layer) + pos * kvDim, this.valueScales(layer) + pos * nKvHeads * 4);
    if (bad > 0) throw new NonFiniteError(`KV cache: ${bad} key or value rows hold NaN or infinity`);
  }
}
