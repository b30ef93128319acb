// Keys and values of every position seen so far, per layer: f32 rows [length][kvDim], or
// codes packed per token and head (8, 4 or 3 bits: assembly/kv-quant.ts) with f32 absmax
// scales [length][kvHeads]. With `bosBits`, position 0 (where the [BOS] token goes) keeps
// codes of more bits than the rest: BitNet v2 keeps its heads at 8 bits, a4.8 at 4 in a
// 3-bit cache. With `deltaKeys`, the keys are also held as DeltaLLM's delta records
// (assembly/delta-attention.ts), with the running reference of each layer. A new sequence simply writes from
// position 0 again: positions past the current one are never read (attention is causal),
// so there is nothing to clear. Each session owns one; dispose() returns its memory to the
// arena for the next.
import { BitNetError, NonFiniteError, OptionError } from "../core/errors.ts";
import type { Kernels } from "../runtime/kernels.ts";
import { NULL_PTR, offset, type Ptr } from "../runtime/ptr.ts";
import type { MovableBlock } from "../runtime/arena.ts";
import type { ModelConfig } from "../formats/config.ts";

/** Precision of cached keys and values: f32, or 8-, 4- or 3-bit codes. */
export type KVBits = 32 | 8 | 4 | 3;

/** How a cache holds keys and values: their bits, and those of position 0's. */
export interface KVPrecision {
  /** f32 (32) or codes of 8, 4 or 3 bits. */
  bits: KVBits;
  /** Bits of position 0's codes (the [BOS] token's heads) where more than `bits`. */
  bosBits?: 8 | 4;
  /** Also hold the keys as DeltaLLM's delta records (f32 caches only: assembly/delta-attention.ts). */
  deltaKeys?: boolean;
}

/** Bits of position 0's codes where they differ from the others', else 0. */
function bosBitsOf({ bits, bosBits }: KVPrecision): number {
  return bits !== 32 && bosBits !== undefined && bosBits > bits ? bosBits : 0;
}

/** Bytes of one layer's keys (or values) and of their scales, for `length` positions. */
function layerBytes(config: ModelConfig, precision: KVPrecision, length: number): { codes: number; scales: number } {
  const { kvDim, nKvHeads } = config, { bits } = precision;
  if (bits === 32) return { codes: length * kvDim * 4, scales: 0 };
  const first = (kvDim * (bosBitsOf(precision) || bits)) / 8;
  return { codes: first + ((length - 1) * kvDim * bits) / 8, scales: length * nKvHeads * 4 };
}

/** Bytes of one position's DeltaLLM record of one KV head: as deltaRecordBytes in assembly/delta-attention.ts (tested equal). */
export function deltaRecordBytes(headSize: number): number {
  return 4 + headSize * 4 + Math.ceil(headSize / 4) * 4;
}

/** Throws an OptionError when the model's heads cannot be packed at `bits`. */
export function checkKVBits(config: ModelConfig, bits: KVBits): void {
  const unit = bits === 3 ? 8 : bits === 4 ? 2 : 1;
  if (config.headSize % unit !== 0) {
    throw new OptionError("variant", `kv=${bits}: heads of ${config.headSize} values do not pack into ${bits}-bit codes (a multiple of ${unit} is needed)`);
  }
}

/** One session's keys and values, in kernel memory. */
export class KVCache {
  /** Keys, values, key scales and value scales, back to back in one block the arena may move (so read its address at each use). */
  #block: MovableBlock | null;
  readonly #parts: { values: number; keyScales: number; valueScales: number; deltas: number; references: number };
  /** Per layer, the position the delta reference keys stand before (deltaKeys). */
  readonly #referencePos: number[];
  readonly #deltaLayer: number;
  readonly #layer: { codes: number; scales: number };
  /** Bits of the codes, or 32 for f32. */
  readonly bits: KVBits;
  /** Bits of position 0's codes where they differ from the others', else 0 (as the kernels take it). */
  readonly bosBits: number;

  /** Room for `length` positions (at most the model's context). */
  constructor(readonly kernels: Kernels, readonly config: ModelConfig, readonly precision: KVPrecision = { bits: 32 }, readonly length: number = config.seqLen) {
    checkKVBits(config, precision.bits);
    this.bits = precision.bits;
    this.bosBits = bosBitsOf(precision);
    this.#layer = layerBytes(config, precision, length);
    // Whole 64-byte lines per part.
    const line = (n: number) => Math.ceil(n / 64) * 64;
    const valueBytes = line(config.nLayers * this.#layer.codes), scaleBytes = line(config.nLayers * this.#layer.scales);
    this.#deltaLayer = precision.deltaKeys ? length * config.nKvHeads * deltaRecordBytes(config.headSize) : 0;
    const deltas = 2 * valueBytes + 2 * scaleBytes, references = deltas + line(config.nLayers * this.#deltaLayer);
    this.#parts = { values: valueBytes, keyScales: 2 * valueBytes, valueScales: 2 * valueBytes + scaleBytes, deltas, references };
    this.#referencePos = new Array(config.nLayers).fill(-1);
    try {
      // Positions are written before they are read.
      this.#block = kernels.arena.allocMovable(references + (precision.deltaKeys ? line(config.nLayers * config.kvDim * 4) : 0));
    } catch (e) {
      const mib = (n: number) => (n / 2 ** 20).toFixed(0);
      throw new BitNetError(
        `a KV cache for ${length} tokens needs ${mib(KVCache.bytes(config, precision, length))} MiB of WebAssembly memory and ${mib(kernels.arena.bytesUsed)} MiB are in use ` +
          `(4 GiB at most): dispose other sessions or ask for a smaller contextLength`,
        { cause: e },
      );
    }
  }

  /** Bytes a cache of `length` positions takes. */
  static bytes(config: ModelConfig, precision: KVPrecision, length = config.seqLen): number {
    const { codes, scales } = layerBytes(config, precision, length);
    const deltas = precision.deltaKeys ? length * config.nKvHeads * deltaRecordBytes(config.headSize) + config.kvDim * 4 : 0;
    return config.nLayers * (2 * (codes + scales) + deltas);
  }

  /** Bytes this cache takes. */
  get bytes(): number {
    return KVCache.bytes(this.config, this.precision, this.length);
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

  /** Address of layer l's keys (f32 [length, kvDim], or packed codes when quantized). */
  keys(layer: number): Ptr {
    return offset(this.#at(0), layer * this.#layer.codes);
  }

  /** Address of layer l's values, laid out as its keys. */
  values(layer: number): Ptr {
    return offset(this.#at(this.#parts.values), layer * this.#layer.codes);
  }

  /** Address of layer l's key scales [length, kvHeads] (quantized caches). */
  keyScales(layer: number): Ptr {
    return offset(this.quantized ? this.#at(this.#parts.keyScales) : NULL_PTR, layer * this.#layer.scales); // f32 caches have none
  }

  /** Address of layer l's value scales [length, kvHeads]. */
  valueScales(layer: number): Ptr {
    return offset(this.quantized ? this.#at(this.#parts.valueScales) : NULL_PTR, layer * this.#layer.scales);
  }

  /** Address of layer l's delta records of the keys [length][kvHeads] (deltaKeys). */
  deltas(layer: number): Ptr {
    return offset(this.#at(this.#parts.deltas), layer * this.#deltaLayer);
  }

  /**
   * Encodes layer l's f32 key rows [tokens, kvDim] of positions pos.. as delta records against
   * the running reference (rebuilt first when the cache was rewound); returns the entries kept.
   */
  encodeDeltas(layer: number, pos: number, tokens: number, keys: Ptr, threshold: number): number {
    const { nKvHeads, headSize, kvDim } = this.config, k = this.kernels.k, reference = offset(this.#at(this.#parts.references), layer * kvDim * 4);
    if (this.#referencePos[layer] !== pos) k.deltaReference(this.deltas(layer), nKvHeads, headSize, pos, reference);
    this.#referencePos[layer] = pos + tokens;
    return k.deltaEncodeKeys(keys, tokens, nKvHeads, headSize, pos, threshold, this.deltas(layer), reference);
  }

  /** Bits of position `pos`'s codes. */
  #bitsAt(pos: number): number {
    return pos === 0 && this.bosBits ? this.bosBits : this.bits;
  }

  /** Byte offset of position `pos`'s row in a layer's codes. */
  #rowOffset(pos: number): number {
    const kvDim = this.config.kvDim;
    return pos === 0 ? 0 : (kvDim * this.#bitsAt(0)) / 8 + ((pos - 1) * kvDim * this.bits) / 8;
  }

  /** Quantizes f32 key and value rows [tokens, kvDim] into positions pos.. of layer l. */
  store(layer: number, pos: number, tokens: number, keys: Ptr, values: Ptr): void {
    const { kvDim, nKvHeads, headSize } = this.config, k = this.kernels.k;
    let bad = 0;
    // Position 0 on its own when its codes are wider, then the rest at the cache's bits.
    for (let done = 0; done < tokens;) {
      const p = pos + done, count = p === 0 && this.bosBits ? 1 : tokens - done, bits = this.#bitsAt(p);
      const at = this.#rowOffset(p), scales = p * nKvHeads * 4, src = done * kvDim * 4;
      bad += k.quantizeKV(offset(keys, src), count, nKvHeads, headSize, bits, offset(this.keys(layer), at), offset(this.keyScales(layer), scales)) +
        k.quantizeKV(offset(values, src), count, nKvHeads, headSize, bits, offset(this.values(layer), at), offset(this.valueScales(layer), scales));
      done += count;
    }
    if (bad > 0) throw new NonFiniteError(`KV cache: ${bad} key or value rows hold NaN or infinity`);
  }
}
