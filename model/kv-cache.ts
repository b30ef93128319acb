// Keys and values of every position seen so far, f32 [layers][seqLen][kvDim] each.
// A new sequence simply writes from position 0 again: positions past the current one
// are never read (attention is causal), so there is nothing to clear.
import type { Kernels } from "../runtime/kernels.ts";
import type { ModelConfig } from "./config.ts";

export class KVCache {
  readonly #keys: number;
  readonly #values: number;
  readonly #layerBytes: number;

  constructor(kernels: Kernels, config: ModelConfig) {
    this.#layerBytes = config.seqLen * config.kvDim * 4;
    this.#keys = kernels.allocBytes(config.nLayers * this.#layerBytes);
    this.#values = kernels.allocBytes(config.nLayers * this.#layerBytes);
  }

  /** Address of layer l's keys [seqLen, kvDim]. */
  keys(layer: number): number {
    return this.#keys + layer * this.#layerBytes;
  }

  values(layer: number): number {
    return this.#values + layer * this.#layerBytes;
  }
}
