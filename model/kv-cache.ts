// Keys and values of every position seen so far, [layers][length][kvDim] each: f32, or
// quantized per token and head (8, 4 or 3 bits as codes of one byte, with f32 absmax
// scales [layers][length][kvHeads]: assembly/kv-quant.ts). A new sequence simply writes
// from position 0 again: positions past the current one are never read (attention is
// causal), so there is nothing to clear. Each session owns one; dispose() returns its
// memory to the arena for the next.
import { BitNetError, NonFiniteError } from "../core/errors.ts";
import type { Kernels } from "../runtime/kernels.ts";
import { NULL_PTR, offset, type Ptr } from "../runtime/ptr.ts";
import type { MovableBlock } from "../runtime/arena.ts";
import type { ModelConfig } from "../formats/config.ts";

/** Precision of cached keys and values: f32, or 8-, 4- or 3-bit codes. */
export type KVBits = 32 | 8 | 4 | 3;

/** One session's keys and values, in kernel memory. */
export class KVCache {
  /** Keys, values, key scales and value scales, back to back in one block the arena may move (so read its address at each use). */
  #block: MovableBlock | null;
  readonly #parts: { values: number; keyScales: number; valueScales: number };
  readonly #layerValues: number;
  readonly #layerScales: number;

  /** Room for `length` positions (at most the model's context). */
  constructor(readonly kernels: Kernels, readonly config: ModelConfig, readonly bits: KVBits = 32, readonly length: number = config.seqLen) {
    this.#layerValues = length * config.kvDim;
    this.#layerScales = length * config.nKvHeads;
    // Whole 64-byte lines per part.
    const line = (n: number) => Math.ceil(n / 64) * 64;
    const valueBytes = line(config.nLayers * this.#layerValues * (bits === 32 ? 4 : 1)), scaleBytes = bits === 32 ? 0 : line(config.nLayers * this.#layerScales * 4);
    this.#parts = { values: valueBytes, keyScales: 2 * valueBytes, valueScales: 2 * valueBytes + scaleBytes };
    try {
      this.#block = kernels.arena.allocMovable(2 * valueBytes + 2 * scaleBytes); // positions are written before they are read
    } catch (e) {
      const mib = (n: number) => (n / 2 ** 20).toFixed(0);
      throw new BitNetError(
        `a KV cache for ${length} tokens needs ${mib(KVCache.bytes(config, bits, length))} MiB of WebAssembly memory and ${mib(kernels.arena.bytesUsed)} MiB are in use ` +
          `(4 GiB at most): dispose other sessions or ask for a smaller contextLength`,
        { cause: e },
      );
    }
  }

  /** Bytes a cache of `length` positions takes. */
  static bytes(config: ModelConfig, bits: KVBits, length = config.seqLen): number {
    return 2 * config.nLayers * length * (config.kvDim * (bits === 32 ? 4 : 1) + (bits === 32 ? 0 : config.nKvHeads * 4));
  }

  /** Bytes this cache takes. */
  get bytes(): number {
    return KVCache.bytes(this.config, this.bits, this.length);
  }

  /** Returns the memory to the arena; the cache must not be used afterwards. */
  dispose(): void {
    if (this.#block) this.kernels.arena.freeMovable(this.#block);
    this.#block = null;
  }

  /** Address of a part of the block (where the arena has it now). */
  #at(part: number): Ptr {
    if (!this.#block) throw new BitNetError("KV cache: used after dispose()");
    return offset(this.#block.ptr, part);
  }

  /** Whether keys and values are held as codes with scales. */
  get quantized(): boolean {
    return this.bits !== 32;
  }

  /** Address of layer l's keys [length, kvDim] (f32, or int8 codes when quantized). */
  keys(layer: number): Ptr {
    return offset(this.#at(0), layer * this.#layerValues * (this.quantized ? 1 : 4));
  }

  /** Address of layer l's values [length, kvDim]. */
  values(layer: number): Ptr {
    return offset(this.#at(this.#parts.values), layer * this.#layerValues * (this.quantized ? 1 : 4));
  }

  /** Address of layer l's key / value scales [length, kvHeads] (quantized caches). */
  keyScales(layer: number): Ptr {
    return offset(this.quantized ? this.#at(this.#parts.keyScales) : NULL_PTR, layer * this.#layerScales * 4); // f32 caches have none
  }

  /** Address of layer l's value scales [length, kvHeads]. */
  valueScales(layer: number): Ptr {
    return offset(this.quantized ? this.#at(this.#parts.valueScales) : NULL_PTR, layer * this.#layerScales * 4);
  }

  /** Quantizes f32 key and value rows [tokens, kvDim] into positions pos.. of layer l. */
  store(layer: number, pos: number, tokens: number, keys: Ptr, values: Ptr): void {
    const { kvDim, nKvHeads, headSize } = this.config, k = this.kernels.k;
    const bad = k.quantizeKV(keys, tokens, nKvHeads, headSize, this.bits, offset(this.keys(layer), pos * kvDim), offset(this.keyScales(layer), pos * nKvHeads * 4)) +
      k.quantizeKV(values, tokens, nKvHeads, headSize, this.bits, offset(this.values(layer), pos * kvDim), offset(this.valueScales(layer), pos * nKvHeads * 4));
    if (bad > 0) throw new NonFiniteError(`KV cache: ${bad} key or value rows hold NaN or infinity`);
  }
}
