// The forward pass, one token block at a time, readable top to bottom. One function
// serves every architecture: the differences (pre-norms or none, f32 or BitLinear
// projections, RoPE pairing, gate activation) are data chosen when the model is built.
import { AbsmaxInt8Quantizer } from "../quant/absmax-int8.ts";
import { F32Linear, type Linear } from "../quant/linear.ts";
import { TernaryLinear } from "../quant/ternary.ts";
import type { Kernels } from "../runtime/kernels.ts";
import type { Checkpoint, LinearTensor, Span } from "./checkpoint.ts";
import type { ModelConfig } from "./config.ts";
import { ShapeError } from "./errors.ts";
import { decodeTernary, uploadFloat } from "./weights.ts";
import { KVCache } from "./kv-cache.ts";

interface Layer {
  /** RMSNorm weights before attention / FFN (llama, 2B4T); absent in bitllama, whose BitLinears normalise. */
  attnNorm?: number;
  ffnNorm?: number;
  /** RMSNorm weights of the attention output and of the gated FFN activation (2B4T). */
  attnSubNorm?: number;
  ffnSubNorm?: number;
  q: Linear; k: Linear; v: Linear; o: Linear;
  gate: Linear; up: Linear; down: Linear;
}

/** Tokens processed together in prefill (bounds the activation buffers). */
export const MAX_BLOCK = 32;

export class Transformer {
  readonly config: ModelConfig;
  readonly cache: KVCache;
  readonly #k: Kernels;
  readonly #embedding: number;
  readonly #finalNorm: number;
  readonly #classifier: Linear;
  readonly #layers: Layer[];
  readonly #ropeCos: number;
  readonly #ropeSin: number;
  // Activations [MAX_BLOCK, width]
  readonly #x: number; readonly #xn: number; readonly #q: number; readonly #att: number;
  readonly #proj: number; readonly #gate: number; readonly #up: number; readonly #logits: number;
  readonly #scores: number;

  /** Uploads the checkpoint's weights; `onLayer(done)` reports each layer as it is ready. */
  constructor(kernels: Kernels, ckpt: Checkpoint, onLayer?: (done: number) => void) {
    const c = (this.config = ckpt.config);
    this.#k = kernels;
    const upload = (span: Span) => uploadFloat(kernels, ckpt, span);
    const maxWidth = Math.max(c.dim, c.hiddenDim);
    const quantizer = new AbsmaxInt8Quantizer(kernels, MAX_BLOCK, maxWidth);
    this.#embedding = upload(ckpt.embedding);
    this.#finalNorm = upload(ckpt.finalNorm);
    this.#classifier = new F32Linear(kernels, ckpt.classifier ? upload(ckpt.classifier) : this.#embedding, c.vocabSize, c.dim);
    const linear = (t: LinearTensor) => buildLinear(kernels, quantizer, ckpt, t, c.arch === "bitllama");
    this.#layers = ckpt.layers.map((l, i) => {
      const layer = {
        attnNorm: l.attnNorm && upload(l.attnNorm),
        ffnNorm: l.ffnNorm && upload(l.ffnNorm),
        attnSubNorm: l.attnSubNorm && upload(l.attnSubNorm),
        ffnSubNorm: l.ffnSubNorm && upload(l.ffnSubNorm),
        q: linear(l.q), k: linear(l.k), v: linear(l.v), o: linear(l.o),
        gate: linear(l.gate), up: linear(l.up), down: linear(l.down),
      };
      onLayer?.(i + 1);
      return layer;
    });
    [this.#ropeCos, this.#ropeSin] = ropeTables(kernels, c);
    this.cache = new KVCache(kernels, c);
    const block = (width: number) => kernels.allocF32(MAX_BLOCK * width);
    this.#x = block(c.dim);
    this.#xn = block(c.dim);
    this.#q = block(c.dim);
    this.#att = block(c.dim);
    this.#proj = block(c.dim);
    this.#gate = block(c.hiddenDim);
    this.#up = block(c.hiddenDim);
    this.#logits = block(c.vocabSize);
    this.#scores = kernels.allocF32(c.seqLen);
  }

  /**
   * Runs `tokens` at positions pos, pos+1, ... through the model, filling the KV cache.
   * Returns the logits of the last token (f32 [vocab], valid until the next call); with
   * `onLogits`, also hands over every token's logits (block by block).
   */
  forward(tokens: ArrayLike<number>, pos: number, onLogits?: (logits: number, index: number) => void): number {
    const c = this.config;
    if (tokens.length === 0) throw new ShapeError("forward: no tokens");
    if (pos < 0 || pos + tokens.length > c.seqLen) {
      throw new ShapeError(`forward: positions ${pos}..${pos + tokens.length - 1} exceed the context of ${c.seqLen} tokens`);
    }
    let last = 0;
    for (let start = 0; start < tokens.length; start += MAX_BLOCK) {
      const block = Array.prototype.slice.call(tokens, start, start + MAX_BLOCK) as number[];
      last = this.#forwardBlock(block, pos + start, onLogits ? (p, i) => onLogits(p, start + i) : undefined);
    }
    return last;
  }

  #forwardBlock(tokens: number[], pos: number, onLogits?: (logits: number, index: number) => void): number {
    const k = this.#k.k, c = this.config, T = tokens.length;
    const { dim, kvDim, hiddenDim, headSize, nHeads, nKvHeads, normEps, vocabSize } = c;
    const neox = c.rope === "neox";

    // Token embeddings into the residual stream x [T, dim].
    const mem = this.#k.u8(0, this.#k.memory.buffer.byteLength);
    tokens.forEach((token, t) => {
      if (!Number.isInteger(token) || token < 0 || token >= vocabSize) throw new ShapeError(`token id ${token} outside the vocabulary 0..${vocabSize - 1}`);
      const row = this.#embedding + token * dim * 4;
      mem.copyWithin(this.#x + t * dim * 4, row, row + dim * 4);
    });

    this.#layers.forEach((layer, l) => {
      const kCache = this.cache.keys(l), vCache = this.cache.values(l);
      // Attention: (RMSNorm) -> q, k, v -> RoPE -> causal GQA over the cache -> (sub-norm) -> o -> residual.
      const attnIn = this.#normed(this.#x, layer.attnNorm, dim, T, normEps);
      const h = layer.q.prepare(attnIn, T);
      layer.q.apply(h, this.#q);
      layer.k.apply(h, kCache + pos * kvDim * 4); // k and v go straight into the cache rows
      layer.v.apply(h, vCache + pos * kvDim * 4);
      k.rope(this.#q, nHeads, headSize, T, dim, pos, this.#ropeCos, this.#ropeSin, neox);
      k.rope(kCache + pos * kvDim * 4, nKvHeads, headSize, T, kvDim, pos, this.#ropeCos, this.#ropeSin, neox);
      k.attention(this.#att, this.#q, kCache, vCache, this.#scores, nHeads, nKvHeads, headSize, T, pos);
      if (layer.attnSubNorm !== undefined) k.rmsNorm(this.#att, this.#att, layer.attnSubNorm, dim, T, normEps);
      layer.o.apply(layer.o.prepare(this.#att, T), this.#proj);
      k.addInPlace(this.#x, this.#proj, T * dim);

      // Feed-forward: (RMSNorm) -> gate, up -> act(gate) * up -> (sub-norm) -> down -> residual.
      const ffnIn = this.#normed(this.#x, layer.ffnNorm, dim, T, normEps);
      const g = layer.gate.prepare(ffnIn, T);
      layer.gate.apply(g, this.#gate);
      layer.up.apply(g, this.#up);
      if (c.activation === "silu") k.swiglu(this.#gate, this.#up, T * hiddenDim);
      else k.relu2glu(this.#gate, this.#up, T * hiddenDim);
      if (layer.ffnSubNorm !== undefined) k.rmsNorm(this.#gate, this.#gate, layer.ffnSubNorm, hiddenDim, T, normEps);
      layer.down.apply(layer.down.prepare(this.#gate, T), this.#proj);
      k.addInPlace(this.#x, this.#proj, T * dim);
    });

    // Final RMSNorm and the classifier: every token's logits only when asked for.
    k.rmsNorm(this.#xn, this.#x, this.#finalNorm, dim, T, normEps);
    if (onLogits) {
      this.#classifier.apply(this.#classifier.prepare(this.#xn, T), this.#logits);
      for (let t = 0; t < T; t++) onLogits(this.#logits + t * vocabSize * 4, t);
      return this.#logits + (T - 1) * vocabSize * 4;
    }
    this.#classifier.apply(this.#classifier.prepare(this.#xn + (T - 1) * dim * 4, 1), this.#logits);
    return this.#logits;
  }

  /** RMSNorm into the scratch row block when the layer has norm weights, else x itself. */
  #normed(x: number, weight: number | undefined, n: number, tokens: number, eps: number): number {
    if (weight === undefined) return x;
    this.#k.k.rmsNorm(this.#xn, x, weight, n, tokens, eps);
    return this.#xn;
  }

  /** A copy of logits at a kernel address. */
  logitsAt(ptr: number): Float32Array {
    return this.#k.f32(ptr, this.config.vocabSize).slice();
  }

  /** -log p(target) from the logits at `ptr`. */
  negLogLikelihood(ptr: number, target: number): number {
    return this.#k.k.negLogLikelihood(ptr, this.config.vocabSize, target);
  }
}

function buildLinear(kernels: Kernels, quantizer: AbsmaxInt8Quantizer, ckpt: Checkpoint, t: LinearTensor, l2Norm: boolean): Linear {
  if (t.encoding === "f32") return new F32Linear(kernels, uploadFloat(kernels, ckpt, t.data), t.rows, t.cols);
  return TernaryLinear.fromInt8(kernels, quantizer, t.rows, t.cols, l2Norm, `${ckpt.file}: ${t.name}`, (int8) => decodeTernary(kernels, ckpt, t, int8));
}

/** cos / sin tables [seqLen, headSize / 2], computed in f32 steps as llama2.c's run.c does. */
function ropeTables(kernels: Kernels, c: ModelConfig): [number, number] {
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
