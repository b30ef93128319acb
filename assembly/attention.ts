// Causal multi-head attention with grouped-query heads over a KV cache.
import { axpy, dot } from "./float";
import { f32At } from "./memory";

/** In-place softmax of x[0..n). */
export function softmax(x: usize, n: i32): void {
  let m = load<f32>(x);
  for (let k = 1; k < n; k++) m = max(m, load<f32>(f32At(x, k)));
  let sum: f32 = 0;
  for (let k = 0; k < n; k++) {
    const e = Mathf.exp(load<f32>(f32At(x, k)) - m);
    store<f32>(f32At(x, k), e);
    sum += e;
  }
  for (let k = 0; k < n; k++) store<f32>(f32At(x, k), load<f32>(f32At(x, k)) / sum);
}

function attentionImpl(
  out: usize,
  q: usize,
  kCache: usize,
  vCache: usize,
  scores: usize,
  heads: i32,
  kvHeads: i32,
  headSize: i32,
  tokens: i32,
  pos: i32,
  simd: bool,
): void {
  const dim = heads * headSize, kvDim = kvHeads * headSize, group = heads / kvHeads;
  const invSqrt = <f32> 1 / Mathf.sqrt(<f32> headSize);
  for (let t = 0; t < tokens; t++) {
    const len = pos + t + 1; // token t sees positions 0..pos+t
    for (let h = 0; h < heads; h++) {
      const qh = f32At(q, t * dim + h * headSize), kvOffset = (h / group) * headSize;
      for (let p = 0; p < len; p++) {
        store<f32>(f32At(scores, p), dot(qh, f32At(kCache, p * kvDim + kvOffset), headSize, simd) * invSqrt);
      }
      softmax(scores, len);
      const oh = f32At(out, t * dim + h * headSize);
      memory.fill(oh, 0, <usize> headSize << 2);
      for (let p = 0; p < len; p++) axpy(oh, load<f32>(f32At(scores, p)), f32At(vCache, p * kvDim + kvOffset), headSize, simd);
    }
  }
}

/**
 * out[t] = attention of query row q[t] (position pos + t) over cache rows 0..pos+t.
 * q, out: [tokens, heads * headSize]; caches: [positions, kvHeads * headSize] of one layer;
 * scores: scratch of at least pos + tokens floats.
 */
export function attention(out: usize, q: usize, kCache: usize, vCache: usize, scores: usize, heads: i32, kvHeads: i32, headSize: i32, tokens: i32, pos: i32): void {
  attentionImpl(out, q, kCache, vCache, scores, heads, kvHeads, headSize, tokens, pos, true);
}
/** Scalar twin of attention. */
export function attentionScalar(out: usize, q: usize, kCache: usize, vCache: usize, scores: usize, heads: i32, kvHeads: i32, headSize: i32, tokens: i32, pos: i32): void {
  attentionImpl(out, q, kCache, vCache, scores, heads, kvHeads, headSize, tokens, pos, false);
}
