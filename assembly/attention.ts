// Causal multi-head attention with grouped-query heads over a KV cache of f32 rows or of
// packed codes (kv-quant.ts). One implementation serves both: the query heads that share a
// KV head are taken together, so each cached head row is read (and unpacked) once per
// group; scores and outputs go through dot / axpy (float.ts), hence the SIMD path and the
// scalar twin agree bit for bit whatever the precision.
import { axpy, dot } from "./float";
import { f32At, scratch } from "./memory";
import { kvHeadBytes, unpackKVHead } from "./kv-quant";

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

// Bytes of one head row at `bits` (32: f32).
function headBytes(headSize: i32, bits: i32): i32 {
  return bits == 32 ? headSize << 2 : kvHeadBytes(headSize, bits);
}

// Bits of position p's codes: position 0's at bosBits when given (0: as the others).
function bitsAt(p: i32, bits: i32, bosBits: i32): i32 {
  return p == 0 && bosBits != 0 ? bosBits : bits;
}

// Head kvh of position p: rows of kvHeads heads each, position 0's row at its own width.
function headAt(cache: usize, p: i32, kvh: i32, kvHeads: i32, headSize: i32, bits: i32, bosBits: i32): usize {
  const first = kvHeads * headBytes(headSize, bitsAt(0, bits, bosBits));
  if (p == 0) return cache + <usize> kvh * (first / kvHeads);
  return cache + <usize> first + <usize> ((p - 1) * kvHeads + kvh) * headBytes(headSize, bits);
}

// A head row as f32: f32 rows in place, codes unpacked into the kernel scratch.
function headValues(cache: usize, p: i32, kvh: i32, kvHeads: i32, headSize: i32, bits: i32, bosBits: i32, simd: bool): usize {
  const head = headAt(cache, p, kvh, kvHeads, headSize, bits, bosBits);
  if (bits == 32) return head;
  unpackKVHead(head, headSize, bitsAt(p, bits, bosBits), scratch, simd);
  return scratch;
}

function attentionImpl(
  out: usize,
  q: usize,
  kCache: usize,
  kScales: usize,
  vCache: usize,
  vScales: usize,
  scores: usize,
  heads: i32,
  kvHeads: i32,
  headSize: i32,
  tokens: i32,
  pos: i32,
  bits: i32,
  bosBits: i32,
  simd: bool,
): void {
  const dim = heads * headSize, group = heads / kvHeads;
  const invSqrt = <f32> 1 / Mathf.sqrt(<f32> headSize);
  for (let t = 0; t < tokens; t++) {
    const len = pos + t + 1; // token t sees positions 0..pos+t
    for (let kvh = 0; kvh < kvHeads; kvh++) {
      const q0 = f32At(q, t * dim + kvh * group * headSize), out0 = f32At(out, t * dim + kvh * group * headSize);
      for (let p = 0; p < len; p++) {
        const key = headValues(kCache, p, kvh, kvHeads, headSize, bits, bosBits, simd);
        const scale: f32 = bits == 32 ? 1 : load<f32>(f32At(kScales, p * kvHeads + kvh));
        for (let g = 0; g < group; g++) {
          store<f32>(f32At(scores, g * len + p), dot(f32At(q0, g * headSize), key, headSize, simd) * scale * invSqrt);
        }
      }
      weighValues(out0, scores, len, group, vCache, vScales, kvh, kvHeads, headSize, bits, bosBits, simd);
    }
  }
}

/**
 * The outputs of the `group` query heads sharing KV head kvh: each head's scores [len] (rows
 * of `scores`) through softmax, then the weighted sum of the cached values into out0
 * [group, headSize]. Shared with DeltaLLM's attention (f32 values: bits 32).
 */
export function weighValues(
  out0: usize,
  scores: usize,
  len: i32,
  group: i32,
  vCache: usize,
  vScales: usize,
  kvh: i32,
  kvHeads: i32,
  headSize: i32,
  bits: i32,
  bosBits: i32,
  simd: bool,
): void {
  for (let g = 0; g < group; g++) softmax(f32At(scores, g * len), len);
  memory.fill(out0, 0, <usize> (group * headSize) << 2);
  for (let p = 0; p < len; p++) {
    const value = headValues(vCache, p, kvh, kvHeads, headSize, bits, bosBits, simd);
    const scale: f32 = bits == 32 ? 1 : load<f32>(f32At(vScales, p * kvHeads + kvh));
    for (let g = 0; g < group; g++) axpy(f32At(out0, g * headSize), load<f32>(f32At(scores, g * len + p)) * scale, value, headSize, simd);
  }
}

/**
 * out[t] = attention of query row q[t] (position pos + t) over cache rows 0..pos+t.
 * q, out: [tokens, heads * headSize]; caches: f32 [positions, kvHeads * headSize] of one
 * layer; scores: scratch of at least (heads / kvHeads) * (pos + tokens) floats.
 */
export function attention(out: usize, q: usize, kCache: usize, vCache: usize, scores: usize, heads: i32, kvHeads: i32, headSize: i32, tokens: i32, pos: i32): void {
  attentionImpl(out, q, kCache, 0, vCache, 0, scores, heads, kvHeads, headSize, tokens, pos, 32, 0, true);
}
/** Scalar twin of attention. */
export function attentionScalar(out: usize, q: usize, kCache: usize, vCache: usize, scores: usize, heads: i32, kvHeads: i32, headSize: i32, tokens: i32, pos: i32): void {
  attentionImpl(out, q, kCache, 0, vCache, 0, scores, heads, kvHeads, headSize, tokens, pos, 32, 0, false);
}

/**
 * As attention, over packed codes (kv-quant.ts) with scales [positions, kvHeads]: rows of
 * `bits`-bit codes (8, 4 or 3), but position 0's of `bosBits` when it is not 0 (the [BOS]
 * token's heads kept at a higher precision).
 */
export function attentionCodes(
  out: usize,
  q: usize,
  kCodes: usize,
  kScales: usize,
  vCodes: usize,
  vScales: usize,
  scores: usize,
  heads: i32,
  kvHeads: i32,
  headSize: i32,
  tokens: i32,
  pos: i32,
  bits: i32,
  bosBits: i32,
): void {
  attentionImpl(out, q, kCodes, kScales, vCodes, vScales, scores, heads, kvHeads, headSize, tokens, pos, bits, bosBits, true);
}
/** Scalar twin of attentionCodes. */
export function attentionCodesScalar(
  out: usize,
  q: usize,
  kCodes: usize,
  kScales: usize,
  vCodes: usize,
  vScales: usize,
  scores: usize,
  heads: i32,
  kvHeads: i32,
  headSize: i32,
  tokens: i32,
  pos: i32,
  bits: i32,
  bosBits: i32,
): void {
  attentionImpl(out, q, kCodes, kScales, vCodes, vScales, scores, heads, kvHeads, headSize, tokens, pos, bits, bosBits, false);
}
