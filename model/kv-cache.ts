// Keys and values of every position seen so far, [layers][length][kvDim] each: f32, or
// quantized per token and head (8, 4 or 3 bits as codes of one byte, with f32 absmax
// scales [layers][length][kvHeads]: assembly/kv-quant.ts). A new sequence simply writes
// from position 0 again: positions past the current one are never read (attention is
// causal), so there is nothing to clear. Each session owns one; dispose() returns its
// memory to the arena for the next.
import { BitNetError, NonFiniteError } from "../core/errors.ts";
import type { Kernels } from "../runtime/kernels.ts";
import { NULL_PTR, offset, type Ptr } from "../runtime/ptr.ts";
import type { ModelConfig } from "../formats/config.ts";

/** Precision of cached keys and values: f32, or 8-, 4- or 3-bit codes. */
export type KVBits = 32 | 8 | 4 | 3;

/** One session's keys and values, in kernel memory. */
export class KVCache {
  readonly #keys: Ptr;
  readonly #values: Ptr;
  readonly #keyScales: Ptr;
  readonly #valueScales: Ptr;
  readonly #layerValues: number;
  readonly #layerScales: number;
  #blocks: Array<[number, number]> = [];

  /** Room for `length` positions (at most the model's context). */
  constructor(readonly kernels: Kernels, readonly config: ModelConfig, readonly bits: KVBits = 32, readonly length: number = config.seqLen) {
    this.#layerValues = length * config.kvDim;
    this.#layerScales = length * config.nKvHeads;
    const valueBytes = config.nLayers * this.#layerValues * (bits === 32 ? 4 : 1), scaleBytes = bits === 32 ? 0 : config.nLayers * this.#layerScales * 4;
    const block = (size: number) => {
      if (size === 0) return NULL_PTR;
      // Whole 64-byte lines: a block freed at the top then takes its alignment padding with it.
      const bytes = Math.ceil(size / 64) * 64;
      const ptr = kernels.arena.alloc(bytes, 64, false); // positions are written before they are read
      this.#blocks.push([ptr, bytes]);
      return ptr;
    };
    try {
      this.#keys = block(valueBytes);
      this.#values = block(valueBytes);
      this.#keyScales = block(scaleBytes);
      this.#valueScales = block(scaleBytes);
    } catch (e) {
      this.dispose();
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
    for (const [ptr, bytes] of this.#blocks) this.kernels.arena.free(ptr, bytes);
    this.#blocks = [];
  }

  /** Whether keys and values are held as codes with scales. */
  get quantized(): boolean {
    return this.bits !== 32;
  }

  /** Address of layer l's keys [length, kvDim] (f32, or int8 codes when quantized). */
  keys(layer: number): Ptr {
    return offset(this.#keys, layer * this.#layerValues * (this.quantized ? 1 : 4));
  }

  /** Address of layer l's values [length, kvDim]. */
  values(layer: number): Ptr {
    return offset(this.#values, layer * this.#layerValues * (this.quantized ? 1 : 4));
  }

  /** Address of layer l's key / value scales [length, kvHeads] (quantized caches). */
  keyScales(layer: number): Ptr {
    return offset(this.#keyScales, layer * this.#layerScales * 4);
  }

  /** Address of layer l's value scales [length, kvHeads]. */
  valueScales(layer: number): Ptr {
    return offset(this.#valueScales, layer * this.#layerScales * 4);
  }

  /** Quantizes f32 key and value rows [tokens, kvDim] into positions pos.. of layer l. */
  store(layer: number, pos: number, tokens: number, keys: Ptr, values: Ptr): void {
    const { kvDim, nKvHeads, headSize } = this.config, k = this.kernels.k;
    const bad = k.quantizeKV(keys, tokens, nKvHeads, headSize, this.bits, offset(this.keys(layer), pos * kvDim), offset(this.keyScales(layer), pos * nKvHeads * 4)) +
      k.quantizeKV(values, tokens, nKvHeads, headSize, this.bits, offset(this.values(layer), pos * kvDim), offset(this.valueScales(layer), pos * nKvHeads * 4));
    if (bad > 0) throw new NonFiniteError(`KV cache: ${bad} key or value rows hold NaN or infinity`);
  }
}
