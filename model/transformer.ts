// The forward pass, one token block at a time, readable top to bottom. One function
// serves every architecture: the differences (pre-norms or none, f32 or BitLinear
// projections, RoPE pairing, gate activation) are data chosen when the model is built.
import { ActivationQuantizer, type ActivationSpec, hadamardBlock, INT8_ABSMAX, type Int8Input, paddedCols } from "../quant/activations.ts";
import { type DeltaAttention, parseVariant, type Site, type VariantPlan, type WeightQuantizer } from "../quant/variants.ts";
import { Int8RowsLinear } from "../quant/int8-rows.ts";
import { F32Linear, HalfLinear, type Linear, type PreparedInput } from "../quant/linear.ts";
import { SPARSE_KERNEL_MIN_SPARSITY, SparseTernaryLinear } from "../quant/sparse-ternary.ts";
import { BitLinear, type GroupScales } from "../quant/bitlinear.ts";
import type { Kernels } from "../runtime/kernels.ts";
import { NULL_PTR, offset, type Ptr } from "../runtime/ptr.ts";
import type { Checkpoint, LinearTensor, Span, TernaryTensor } from "../formats/checkpoint.ts";
import type { ModelConfig } from "../formats/config.ts";
import { ARCHITECTURES } from "../formats/architectures.ts";
import { FormatError, NonFiniteError, OptionError, ShapeError } from "../core/errors.ts";
import { checkFinite, decodeTernary, fbiWeights, floatBytes, readSpan, reternarize, uploadFloat, widen } from "../quant/weights.ts";
import { checkKVBits, KVCache, type KVPrecision } from "./kv-cache.ts";
import { yieldToEventLoop } from "../runtime/yield.ts";

interface Layer {
  /** RMSNorm weights before attention / FFN (llama, 2B4T); absent in bitllama, whose BitLinears normalise. */
  attnNorm?: Ptr;
  ffnNorm?: Ptr;
  /** RMSNorm weights of the attention output and of the gated FFN activation (2B4T). */
  attnSubNorm?: Ptr;
  ffnSubNorm?: Ptr;
  q: Linear;
  k: Linear;
  v: Linear;
  o: Linear;
  gate: Linear;
  up: Linear;
  down: Linear;
  /** ReLU^2 gate sparsity as a kernel: the up projection on the non-zero gates' row groups only (BitNet a4.8). */
  sparseFfn?: { gateZeros: number };
}

/** Tokens processed together in prefill (bounds the activation buffers). */
export const MAX_BLOCK = 32;

/** One sequence's decoding step: its cache, the token fed and its position. */
export interface DecodeStep {
  /** The sequence's KV cache. */
  cache: KVCache;
  /** The token fed at this step. */
  token: number;
  /** Its position in the sequence (the cache holds positions 0..pos-1). */
  pos: number;
}

/** Rows [row, row + count) of a block: one sequence's tokens at positions pos.. of its cache. */
interface Segment {
  cache: KVCache;
  pos: number;
  row: number;
  count: number;
}

function checkPositions(cache: KVCache, pos: number, count: number): void {
  if (pos < 0 || pos + count > cache.length) throw new ShapeError(`forward: positions ${pos}..${pos + count - 1} exceed the context of ${cache.length} tokens`);
}

/** Options of Transformer.load. */
export interface TransformerOptions {
  /** Activation variant of the BitLinear inputs: a preset ("b1.58" default, "a4.8", "q-sparse:S") or a spec (quant/variants.ts). */
  variant?: string;
  /** The LM head: the table in its stored precision ("stored", default) or int8 rows with absmax scales ("int8"). */
  lmHead?: "stored" | "int8";
  /** Context length to allocate KV caches for: at most the model's; default the model's up to DEFAULT_CONTEXT (a header's context is not backed by any bytes, so it alone never sizes an allocation). */
  contextLength?: number;
  /** Called as each layer's weights are ready. */
  onLayer?: (done: number) => void;
  /** Load float weights that hold NaN or infinity (for research on damaged checkpoints); by default such a tensor is a FormatError naming it. */
  allowNonFinite?: boolean;
}

/** The token embedding table as stored: its address and value type. */
interface Table {
  ptr: Ptr;
  dtype: "f32" | "f16" | "bf16";
}

/** The forward pass over weights in kernel memory (one instance per model). */
export class Transformer {
  /** Architecture and sizes (seqLen: the longest context a KV cache may have). */
  readonly config: ModelConfig;
  /** Precision of the KV caches this model's sessions get (f32, or 8-, 4- or 3-bit codes). */
  readonly kvPrecision: KVPrecision;
  readonly #k: Kernels;
  readonly #embedding: Table;
  readonly #finalNorm: Ptr;
  readonly #classifier: Linear;
  readonly #layers: Layer[];
  readonly #ropeCos: Ptr;
  readonly #ropeSin: Ptr;
  // Activations [MAX_BLOCK, width]
  readonly #x: Ptr;
  readonly #xn: Ptr;
  readonly #q: Ptr;
  readonly #att: Ptr;
  readonly #proj: Ptr;
  readonly #gate: Ptr;
  readonly #up: Ptr;
  readonly #logits: Ptr;
  readonly #scores: Ptr;

  readonly #kStage: Ptr;
  readonly #vStage: Ptr;
  /** i32 row-group indices of the non-zero gates (sparse FFNs). */
  readonly #rowGroups: Ptr;
  /** Sparse FFNs: the up projections' row groups (4 rows each) met so far, and how many of them were computed. */
  readonly ffnRowGroups = { total: 0, computed: 0 };
  /** The BitLinears' weight-activation products so far, and how many met a non-zero activation (Q-Sparse's model-level count). */
  readonly activeProducts = { total: 0, active: 0 };
  /** What loading decided that the caller did not ask for (a preset run in its post-training form by default). */
  readonly notices: readonly string[];
  /** DeltaLLM: the multiply-adds of the attention scores so far, dense and as done. */
  readonly attentionWork = { dense: 0, done: 0 };
  readonly #delta: DeltaAttention | undefined;

  private constructor(
    kernels: Kernels,
    config: ModelConfig,
    weights: { embedding: Table; finalNorm: Ptr; classifier: Linear; layers: Layer[] },
    kvPrecision: KVPrecision,
    readonly allowNonFinite = false,
    delta?: DeltaAttention,
    notices: string[] = [],
  ) {
    this.#delta = delta;
    this.notices = notices;
    const c = (this.config = config);
    this.#k = kernels;
    this.#embedding = weights.embedding;
    this.#finalNorm = weights.finalNorm;
    this.#classifier = weights.classifier;
    this.#layers = weights.layers;
    [this.#ropeCos, this.#ropeSin] = ropeTables(kernels, c);
    this.kvPrecision = kvPrecision;
    const block = (width: number) => kernels.allocF32(MAX_BLOCK * width);
    // Keys and values go through f32 staging rows into a quantized cache, or into several caches.
    this.#kStage = block(c.kvDim);
    this.#vStage = block(c.kvDim);
    this.#x = block(c.dim);
    this.#xn = block(c.dim);
    this.#q = block(c.dim);
    this.#att = block(c.dim);
    this.#proj = block(c.dim);
    this.#gate = block(c.hiddenDim);
    this.#up = block(c.hiddenDim);
    this.#logits = block(c.vocabSize);
    this.#rowGroups = kernels.allocBytes(Math.ceil(c.hiddenDim / 4) * 4);
    this.#scores = kernels.allocF32((c.nHeads / c.nKvHeads) * c.seqLen); // one row per query head of a KV group
  }

  /** Reads the checkpoint's weights into kernel memory, tensor by tensor, after checking they fit. */
  static async load(kernels: Kernels, ckpt: Checkpoint, options: TransformerOptions = {}): Promise<Transformer> {
    const lmHead = options.lmHead ?? "stored";
    if (lmHead !== "stored" && lmHead !== "int8") throw new OptionError("lmHead", `expected "stored" or "int8", got ${JSON.stringify(lmHead)}`);
    const config = withContext(ckpt.config, options.contextLength);
    checkFits(kernels, ckpt, config, lmHead);
    const c = config;
    const plan = parseVariant(options.variant ?? "b1.58");
    const kv: KVPrecision = { bits: plan.kvBits ?? 32, bosBits: plan.kvBosBits };
    checkKVBits(config, kv.bits);
    if (plan.sparseFfn && config.activation !== "relu2") {
      throw new OptionError("variant", `ffn=sparse: ${ckpt.file}'s feed-forward gate is ${config.activation}, which leaves no exact zeros (a ReLU^2 gate does)`);
    }
    const sparseFfn = plan.sparseFfn ? { gateZeros: plan.gateSparsity ?? 0 } : undefined;
    if (plan.delta && (kv.bits !== 32 || config.headSize > 256)) {
      throw new OptionError("variant", `delta=: DeltaLLM reads an f32 KV cache of heads of at most 256 values (${ckpt.file}: kv=${kv.bits}, heads of ${config.headSize})`);
    }
    kv.deltaKeys = plan.delta !== undefined;
    // A named variant turns fp32 layers into BitLinears (post-training), absmean unless told otherwise.
    const ternarizer = options.variant === undefined ? undefined : plan.weights ?? (ckpt.layers.some((l) => l.q.encoding === "f32") ? "absmean" : undefined);
    const width = Math.max(c.dim, c.hiddenDim);
    const quantizers = new Map<string, ActivationQuantizer>();
    const quantizerFor = (spec: ActivationSpec) => {
      const key = JSON.stringify(spec);
      if (!quantizers.has(key)) quantizers.set(key, new ActivationQuantizer(kernels, MAX_BLOCK, width, spec));
      return quantizers.get(key)!;
    };
    const quantizer = quantizerFor(INT8_ABSMAX);
    const finite = (ptr: Ptr, n: number, what: string) => options.allowNonFinite || checkFinite(kernels, ptr, n, ckpt.file, what);
    const upload = async (span: Span, what: string) => {
      const ptr = await uploadFloat(kernels, ckpt, span);
      finite(ptr, span.dtype ? span.length / 2 : span.length / 4, what);
      return ptr;
    };
    const embedding = await uploadTable(kernels, ckpt, ckpt.embedding, "embedding", finite);
    const finalNorm = await upload(ckpt.finalNorm, "final norm");
    const classifier = ckpt.classifier ? await uploadTable(kernels, ckpt, ckpt.classifier, "classifier", finite) : embedding;
    const head = headLinear(kernels, quantizer, classifier, c, lmHead, ckpt.file);
    const linear = (t: LinearTensor, site: Site) => {
      // H-BitLinear after training without it rotates the weights to match the rotated input, so they are ternarized again.
      const h = plan[site].hadamard, block = h ? hadamardBlock(h, t.cols) : 0;
      const rotation = block && plan.rotate !== "activations" ? { ternarizer: ternarizer ?? plan.weights ?? "absmean", block } : undefined;
      // The down input of a sparse FFN is as sparse as its gates: the kernel reads its non-zero columns.
      const sparse = plan[site].sparsity >= SPARSE_KERNEL_MIN_SPARSITY[kernels.level] || (site === "down" && sparseFfn !== undefined);
      return buildLinear(kernels, quantizerFor(plan[site]), ckpt, t, ARCHITECTURES[c.arch].bitLinearNorm, finite, ternarizer, rotation, plan.weightScales ?? "tensor", sparse);
    };
    const layers: Layer[] = [];
    for (const [i, l] of ckpt.layers.entries()) {
      const norm = (span: Span | undefined, role: string) => span && upload(span, `layer ${i} ${role}`);
      layers.push({
        attnNorm: await norm(l.attnNorm, "attention norm"),
        ffnNorm: await norm(l.ffnNorm, "feed-forward norm"),
        attnSubNorm: await norm(l.attnSubNorm, "attention sub-norm"),
        ffnSubNorm: await norm(l.ffnSubNorm, "feed-forward sub-norm"),
        q: await linear(l.q, "qkv"),
        k: await linear(l.k, "qkv"),
        v: await linear(l.v, "qkv"),
        o: await linear(l.o, "o"),
        gate: await linear(l.gate, "gateUp"),
        up: await linear(l.up, "gateUp"),
        down: await linear(l.down, "down"),
        sparseFfn,
      });
      options.onLayer?.(layers.length);
      await yieldToEventLoop(); // a page stays responsive while a large model loads
    }
    // No format we read records that a checkpoint was trained with a variant, so its native form is never the default.
    const notices = (plan.ptqByDefault ?? []).map((name) =>
      `${ckpt.file}: ${name} runs in its post-training form (the checkpoint does not say it was trained with ${name}); add form=native for one that was`
    );
    return new Transformer(kernels, config, { embedding, finalNorm, classifier: head, layers }, kv, options.allowNonFinite, plan.delta, notices);
  }

  /** A KV cache for `length` positions (default: the whole context), in this model's precision. */
  newCache(length = this.config.seqLen): KVCache {
    return new KVCache(this.#k, this.config, this.kvPrecision, length);
  }

  /**
   * Runs `tokens` at positions pos, pos+1, ... through the model, filling `cache`.
   * Returns the logits of the last token (f32 [vocab], valid until the next call); with
   * `onLogits`, also hands over every token's logits (block by block). Blocks share
   * nothing but the cache, so callers may yield between blocks of MAX_BLOCK tokens.
   */
  forward(cache: KVCache, tokens: ArrayLike<number>, pos: number, onLogits?: (logits: Ptr, index: number) => void): Ptr {
    if (tokens.length === 0) throw new ShapeError("forward: no tokens");
    checkPositions(cache, pos, tokens.length);
    let last = NULL_PTR;
    for (let start = 0; start < tokens.length; start += MAX_BLOCK) {
      const block = Array.prototype.slice.call(tokens, start, start + MAX_BLOCK) as number[];
      const at = [{ cache, pos: pos + start, row: 0, count: block.length }];
      last = this.#forwardBlock(block, at, onLogits ? (p, i) => onLogits(p, start + i) : undefined, tokens.length);
    }
    return last;
  }

  /**
   * One decoding step of several sequences at once (at most MAX_BLOCK): step i feeds its token
   * at its position of its own cache. The weights are read once for all of them, and every row
   * is computed as forward() computes it alone. Returns the logits [steps.length, vocab]
   * (valid until the next call).
   */
  decode(steps: readonly DecodeStep[]): Ptr {
    if (steps.length === 0 || steps.length > MAX_BLOCK) throw new ShapeError(`decode: ${steps.length} steps, expected 1..${MAX_BLOCK}`);
    for (const { cache, pos } of steps) checkPositions(cache, pos, 1);
    const at = steps.map(({ cache, pos }, row) => ({ cache, pos, row, count: 1 }));
    let first = NULL_PTR;
    this.#forwardBlock(steps.map((s) => s.token), at, (logits, i) => i === 0 && (first = logits), 1);
    return first;
  }

  /**
   * Runs a block of tokens: `at` says which rows are which sequence's, from what position of
   * what cache; with `onLogits`, every row's logits. `promptLength`: the tokens of the call it
   * belongs to (DeltaLLM's prefill window grows with it; one token is a decoding step).
   */
  #forwardBlock(tokens: number[], at: Segment[], onLogits: ((logits: Ptr, index: number) => void) | undefined, promptLength: number): Ptr {
    const k = this.#k.k, c = this.config, T = tokens.length;
    const { dim, kvDim, hiddenDim, headSize, nHeads, nKvHeads, normEps, vocabSize } = c;
    const neox = c.rope === "neox";
    const row = (ptr: Ptr, width: number, r: number) => offset(ptr, r * width * 4);

    // Token embeddings into the residual stream x [T, dim].
    const { ptr: table, dtype } = this.#embedding;
    tokens.forEach((token, t) => {
      if (!Number.isInteger(token) || token < 0 || token >= vocabSize) throw new ShapeError(`token id ${token} outside the vocabulary 0..${vocabSize - 1}`);
      const dst = offset(this.#x, t * dim * 4);
      if (dtype === "f32") this.#k.u8(NULL_PTR, this.#k.memory.buffer.byteLength).copyWithin(dst, table + token * dim * 4, table + (token + 1) * dim * 4);
      else widen(this.#k, dtype, offset(table, token * dim * 2), dim, dst);
    });

    // One f32 cache takes its block's keys and values in place; otherwise they are staged and stored.
    const inPlace = at.length === 1 && !at[0].cache.quantized;
    this.#layers.forEach((layer, l) => {
      // Attention: (RMSNorm) -> q, k, v -> RoPE -> causal GQA over the cache -> (sub-norm) -> o -> residual.
      const attnIn = this.#normed(this.#x, layer.attnNorm, dim, T, normEps);
      const h = layer.q.prepare(attnIn, T);
      this.#countActive(h, layer.q.rows + layer.k.rows + layer.v.rows);
      const kRows = inPlace ? row(at[0].cache.keys(l), kvDim, at[0].pos) : this.#kStage, vRows = inPlace ? row(at[0].cache.values(l), kvDim, at[0].pos) : this.#vStage;
      this.#k.together(() => {
        layer.q.apply(h, this.#q);
        layer.k.apply(h, kRows);
        layer.v.apply(h, vRows);
      });
      for (const { cache, pos, row: r, count } of at) {
        const q = row(this.#q, dim, r), keys = row(kRows, kvDim, r), values = row(vRows, kvDim, r), att = row(this.#att, dim, r);
        k.rope(q, nHeads, headSize, count, dim, pos, this.#ropeCos, this.#ropeSin, neox);
        k.rope(keys, nKvHeads, headSize, count, kvDim, pos, this.#ropeCos, this.#ropeSin, neox);
        const kCache = cache.keys(l), vCache = cache.values(l);
        if (cache.quantized) {
          cache.store(l, pos, count, keys, values);
          k.attentionCodes(att, q, kCache, cache.keyScales(l), vCache, cache.valueScales(l), this.#scores, nHeads, nKvHeads, headSize, count, pos, cache.bits, cache.bosBits);
        } else {
          if (!inPlace) {
            const memory = this.#k.u8(NULL_PTR, this.#k.memory.buffer.byteLength), bytes = count * kvDim * 4;
            memory.copyWithin(row(kCache, kvDim, pos), keys, keys + bytes);
            memory.copyWithin(row(vCache, kvDim, pos), values, values + bytes);
          }
          if (this.#delta) this.#deltaAttention(cache, l, att, q, pos, count, promptLength);
          else k.attention(att, q, kCache, vCache, this.#scores, nHeads, nKvHeads, headSize, count, pos);
        }
      }
      if (layer.attnSubNorm !== undefined) k.rmsNorm(this.#att, this.#att, layer.attnSubNorm, dim, T, normEps);
      const o = layer.o.prepare(this.#att, T);
      this.#countActive(o, layer.o.rows);
      layer.o.apply(o, this.#proj);
      k.addInPlace(this.#x, this.#proj, T * dim);

      // Feed-forward: (RMSNorm) -> gate, up -> act(gate) * up -> (sub-norm) -> down -> residual.
      const ffnIn = this.#normed(this.#x, layer.ffnNorm, dim, T, normEps);
      const g = layer.gate.prepare(ffnIn, T);
      this.#countActive(g, layer.gate.rows + layer.up.rows);
      if (layer.sparseFfn) this.#sparseGateUp(layer, g, T);
      else {
        this.#k.together(() => {
          layer.gate.apply(g, this.#gate);
          layer.up.apply(g, this.#up);
        });
      }
      if (c.activation === "silu") k.swiglu(this.#gate, this.#up, T * hiddenDim);
      else k.relu2glu(this.#gate, this.#up, T * hiddenDim);
      if (layer.ffnSubNorm !== undefined) k.rmsNorm(this.#gate, this.#gate, layer.ffnSubNorm, hiddenDim, T, normEps);
      const d = layer.down.prepare(this.#gate, T);
      this.#countActive(d, layer.down.rows);
      layer.down.apply(d, this.#proj);
      k.addInPlace(this.#x, this.#proj, T * dim);
    });

    // Final RMSNorm and the classifier: every token's logits only when asked for.
    k.rmsNorm(this.#xn, this.#x, this.#finalNorm, dim, T, normEps);
    const pos = at[0].pos;
    if (onLogits) {
      this.#classifier.apply(this.#classifier.prepare(this.#xn, T), this.#logits);
      this.#checkLogits(T, pos);
      for (let t = 0; t < T; t++) onLogits(offset(this.#logits, t * vocabSize * 4), t);
      return offset(this.#logits, (T - 1) * vocabSize * 4);
    }
    this.#classifier.apply(this.#classifier.prepare(offset(this.#xn, (T - 1) * dim * 4), 1), this.#logits);
    this.#checkLogits(1, pos + T - 1);
    return this.#logits;
  }

  /** The down projections' input columns met so far and how many were read (non-zero), where they read only those. */
  get downColumns(): { total: number; read: number } {
    const sum = { total: 0, read: 0 };
    for (const { down } of this.#layers) {
      if (!(down instanceof SparseTernaryLinear)) continue;
      sum.total += down.columns.total;
      sum.read += down.columns.read;
    }
    return sum;
  }

  /** How the projections' weights are held: "fp32" or "fbi" (FBI-LLM's, in f32) on the F32 GEMV, "ternary" or "sign" (1-bit) BitLinears. */
  get projectionWeights(): "fp32" | "fbi" | "ternary" | "sign" {
    const q = this.#layers[0]?.q;
    return q instanceof F32Linear ? q.weights : q instanceof BitLinear ? q.weights : "ternary";
  }

  /** Counts a quantized input's products with the `rows` weight rows it meets, and how many meet a non-zero activation. */
  #countActive(input: PreparedInput, rows: number): void {
    const { q, cols, tokens } = input as Partial<Int8Input>;
    if (q === undefined) return; // f32 inputs (fp32 models, FBI) are dense
    this.activeProducts.total += rows * cols! * tokens!;
    this.activeProducts.active += rows * this.#k.k.countNonZeroI8(q, tokens! * paddedCols(cols!)); // the padding is zero
  }

  /** DeltaLLM's hybrid attention over a layer's f32 cache, whose keys of positions pos.. are in place: they are delta-encoded first. */
  #deltaAttention(cache: KVCache, l: number, att: Ptr, q: Ptr, pos: number, count: number, promptLength: number): void {
    const { threshold, gamma, decodeWindow, maxWindow } = this.#delta!, { nHeads, nKvHeads, headSize, kvDim } = this.config;
    cache.encodeDeltas(l, pos, count, offset(cache.keys(l), pos * kvDim * 4), threshold);
    const window = promptLength > 1 ? Math.min(Math.floor(gamma * promptLength), maxWindow) : decodeWindow;
    this.attentionWork.done += this.#k.k.attentionDelta(att, q, cache.keys(l), cache.values(l), cache.deltas(l), this.#scores, nHeads, nKvHeads, headSize, count, pos, window);
    this.attentionWork.dense += nHeads * headSize * (count * (pos + 1) + (count * (count - 1)) / 2);
  }

  /**
   * BitNet a4.8's FFN saving: "first computing the gate projection and then performing the
   * up projection only on the non-zero channels of the gates". ReLU^2 is applied to the gates
   * here (relu2glu leaves them as they are), so the up rows it skips meet a zero gate and
   * relu2glu gives what the dense path gives; with gateZeros, the smallest gates are zeroed too.
   */
  #sparseGateUp(layer: Layer, input: PreparedInput, T: number): void {
    const k = this.#k.k, { hiddenDim } = this.config;
    layer.gate.apply(input, this.#gate);
    k.relu(this.#gate, T * hiddenDim);
    if (layer.sparseFfn!.gateZeros > 0) k.sparsifyTopK(this.#gate, hiddenDim, T, Math.floor(layer.sparseFfn!.gateZeros * hiddenDim), this.#gate);
    const count = k.nonZeroRowGroups(this.#gate, hiddenDim, T, this.#rowGroups);
    this.ffnRowGroups.total += Math.ceil(hiddenDim / 4);
    this.ffnRowGroups.computed += count;
    if (layer.up.applyRowGroups) layer.up.applyRowGroups(input, this.#up, this.#rowGroups, count);
    else layer.up.apply(input, this.#up);
  }

  /** RMSNorm into the scratch row block when the layer has norm weights, else x itself. */
  #normed(x: Ptr, weight: Ptr | undefined, n: number, tokens: number, eps: number): Ptr {
    if (weight === undefined) return x;
    this.#k.k.rmsNorm(this.#xn, x, weight, n, tokens, eps);
    return this.#xn;
  }

  /** Weights that are finite but huge overflow somewhere on the way: such logits are an error, never a silent answer. */
  #checkLogits(rows: number, pos: number): void {
    if (this.allowNonFinite) return;
    const bad = this.#k.k.countNonFiniteF32(this.#logits, rows * this.config.vocabSize);
    if (bad > 0) throw new NonFiniteError(`logits at position ${pos}: ${bad} values are NaN or infinite (the weights overflow f32)`);
  }

  /** A copy of logits at a kernel address. */
  logitsAt(ptr: Ptr): Float32Array {
    return this.#k.f32(ptr, this.config.vocabSize).slice();
  }

  /** -log p(target) from the logits at `ptr`. */
  negLogLikelihood(ptr: Ptr, target: number): number {
    return this.#k.k.negLogLikelihood(ptr, this.config.vocabSize, target);
  }
}

async function buildLinear(
  kernels: Kernels,
  quantizer: ActivationQuantizer,
  ckpt: Checkpoint,
  t: LinearTensor,
  l2Norm: boolean,
  finite: (ptr: Ptr, n: number, what: string) => void,
  ternarizer?: WeightQuantizer,
  rotation?: { ternarizer: WeightQuantizer; block: number },
  scales: VariantPlan["weightScales"] = "tensor",
  sparse = false,
): Promise<Linear> {
  if (t.encoding === "f32" && !ternarizer && !rotation) {
    const ptr = await uploadFloat(kernels, ckpt, t.data);
    finite(ptr, t.rows * t.cols, t.name);
    return new F32Linear(kernels, ptr, t.rows, t.cols);
  }
  const method = rotation?.ternarizer ?? ternarizer;
  if (method === "fbi") return new F32Linear(kernels, await fbiWeights(kernels, ckpt, t, rotation?.block ?? 0), t.rows, t.cols, "fbi", l2Norm ? quantizer : undefined);
  const what = `${ckpt.file}: ${t.name}`;
  const groups = method && scales !== "tensor" ? groupScales(kernels, t, scales === "channel" ? t.cols : scales, what) : undefined;
  const decode = (int8: Ptr) => method ? reternarize(kernels, ckpt, t, method, int8, rotation?.block ?? 0, groups) : decodeTernary(kernels, ckpt, t as TernaryTensor, int8);
  if (sparse && !groups && method !== "sign") return SparseTernaryLinear.fromInt8(kernels, quantizer, t.rows, t.cols, l2Norm, what, decode);
  return BitLinear.fromInt8(kernels, quantizer, t.rows, t.cols, l2Norm, what, decode, { weights: method === "sign" ? "sign" : "ternary", groups });
}

/** Room for a tensor's scales per row and group of `groupCols` columns, which must divide its width. */
function groupScales(kernels: Kernels, t: LinearTensor, groupCols: number, what: string): GroupScales {
  if (t.cols % groupCols !== 0) throw new OptionError("variant", `${what}: weight groups of ${groupCols} columns do not divide its width ${t.cols}`);
  return { groupCols, scales: kernels.allocF32(t.rows * (t.cols / groupCols)) };
}

/** The embedding (or an untied classifier) in its stored precision; half tables must be finite (the head kernels need it), f32 ones unless allowed. */
async function uploadTable(kernels: Kernels, ckpt: Checkpoint, span: Span, what: string, finite: (ptr: Ptr, n: number, what: string) => void): Promise<Table> {
  const ptr = await readSpan(kernels, ckpt, span);
  if (span.dtype) {
    const bad = kernels.k.countNonFiniteHalf(ptr, span.length / 2, span.dtype === "bf16");
    if (bad > 0) throw new FormatError(ckpt.file, `${what}: ${bad} ${span.dtype} values are infinite or NaN`);
  } else finite(ptr, span.length / 4, what);
  return { ptr, dtype: span.dtype ?? "f32" };
}

function headLinear(kernels: Kernels, quantizer: ActivationQuantizer, table: Table, c: ModelConfig, lmHead: "stored" | "int8", file: string): Linear {
  const { ptr, dtype } = table, rows = c.vocabSize, cols = c.dim;
  if (lmHead === "int8") {
    return Int8RowsLinear.fromRows(kernels, quantizer, rows, cols, `${file}: LM head`, (first, count, dst) => {
      if (dtype === "f32") kernels.u8(dst, count * cols * 4).set(kernels.u8(offset(ptr, first * cols * 4), count * cols * 4));
      else widen(kernels, dtype, offset(ptr, first * cols * 2), count * cols, dst);
    });
  }
  return dtype === "f32" ? new F32Linear(kernels, ptr, rows, cols) : new HalfLinear(kernels, ptr, rows, cols, dtype, quantizer.maxTokens);
}

/** The context a model gets unless asked for more (llama.cpp's default n_ctx). */
export const DEFAULT_CONTEXT = 4096;

function withContext(config: ModelConfig, contextLength: number | undefined): ModelConfig {
  if (contextLength === undefined) return config.seqLen <= DEFAULT_CONTEXT ? config : { ...config, seqLen: DEFAULT_CONTEXT };
  if (!Number.isInteger(contextLength) || contextLength < 1 || contextLength > config.seqLen) {
    throw new OptionError("contextLength", `expected an integer in 1..${config.seqLen} (the model's context), got ${contextLength}`);
  }
  return { ...config, seqLen: contextLength };
}

const WASM_LIMIT = 4 * 1024 ** 3;

/** Fails before allocating anything when the model cannot fit in 4 GiB of WebAssembly memory. */
function checkFits(kernels: Kernels, ckpt: Checkpoint, c: ModelConfig, lmHead: "stored" | "int8"): void {
  const k = kernels.k;
  let weights = 0, largest = 0;
  for (const l of ckpt.layers) {
    for (const t of [l.q, l.k, l.v, l.o, l.gate, l.up, l.down]) {
      const n = t.rows * t.cols;
      weights += t.encoding === "f32" ? n * 4 : k.ternaryPackedBytes(t.rows, t.cols);
      largest = Math.max(largest, t.data.length + n * (t.encoding === "absmean" ? 5 : 1));
    }
    for (const s of [l.attnNorm, l.ffnNorm, l.attnSubNorm, l.ffnSubNorm]) if (s) weights += (s.length / floatBytes(s)) * 4;
  }
  const table = (s: Span) => s.length;
  weights += table(ckpt.embedding) + (ckpt.classifier ? table(ckpt.classifier) : 0) + c.dim * 4;
  if (lmHead === "int8") weights += c.vocabSize * (c.dim + 4) + (1 << 22);
  const kv = KVCache.bytes(c, { bits: 32 }); // the first session's (f32: the most a variant takes)
  const activations = MAX_BLOCK * 4 * (5 * c.dim + 2 * c.hiddenDim + c.vocabSize) + c.seqLen * (c.headSize * 4 + (c.nHeads / c.nKvHeads) * 4) +
    2 * MAX_BLOCK * Math.max(c.dim, c.hiddenDim) * 5;
  const need = kernels.arena.bytesUsed + weights + kv + activations + largest;
  if (need > WASM_LIMIT) {
    const gib = (n: number) => (n / 1024 ** 3).toFixed(2);
    throw new ShapeError(
      `${ckpt.file}: needs ${gib(need)} GiB of WebAssembly memory (weights ${gib(weights)}, KV cache ${gib(kv)} for ${c.seqLen} tokens, ` +
        `activations and load buffers ${gib(activations + largest)}); a wasm32 instance has at most 4 GiB` +
        (kv > 1024 ** 3 / 4 ? ": a smaller contextLength shrinks the KV cache" : ""),
    );
  }
}

/** cos / sin tables [seqLen, headSize / 2], computed in f32 steps as llama2.c's run.c does. */
function ropeTables(kernels: Kernels, c: ModelConfig): [Ptr, Ptr] {
  const half = c.headSize / 2, f = Math.fround;
  const cos = new Float32Array(c.seqLen * half), sin = new Float32Array(c.seqLen * half);
  for (let i = 0; i < half; i++) {
    const freq = f(1 / f(Math.pow(c.ropeTheta, f(f(2 * i) / c.headSize))));
    for (let p = 0; p < c.seqLen; p++) {
      const angle = f(p * freq);
      cos[p * half + i] = Math.cos(angle);
      sin[p * half + i] = Math.sin(angle);
    }
  }
  return [kernels.put(cos), kernels.put(sin)];
}
