// A quantized KV cache (BitNet a4.8: 8-, 4- and 3-bit keys and values): each token's key
// and value rows are stored per head as signed codes in -L..L, L = 2^(bits-1) - 1, with one
// absmax scale (max|x| / L), one code per byte. Attention reads the codes directly: scores
// are sum_i q_i * code_i times the key's scale; outputs add prob * scale * code.
// Sums run in four lanes folded as ((l0 + l1) + l2) + l3, as float.ts, so the SIMD path and
// the scalar twin agree bit for bit.
import { softmax } from "./attention";
import { f32At } from "./memory";

/** Quantizes rows [tokens, heads * headSize] into codes (int8, same layout) and scales [tokens, heads]. */
export function quantizeKV(src: usize, tokens: i32, heads: i32, headSize: i32, bits: i32, codes: usize, scales: usize): i32 {
  const levels = <f32> ((1 << (bits - 1)) - 1);
  let bad = 0;
  for (let t = 0; t < tokens; t++) {
    for (let h = 0; h < heads; h++) {
      const row = (t * heads + h) * headSize, x = f32At(src, row);
      let m: f32 = 0;
      for (let i = 0; i < headSize; i++) m = max(m, abs(load<f32>(f32At(x, i))));
      if (m != m || m == Infinity) bad++;
      const inv: f32 = m > 0 ? levels / m : 0;
      store<f32>(f32At(scales, t * heads + h), m / levels);
      for (let i = 0; i < headSize; i++) {
        const q = nearest(load<f32>(f32At(x, i)) * inv);
        store<i8>(codes + row + i, <i8> (q > levels ? levels : q < -levels ? -levels : q));
      }
    }
  }
  return bad;
}

function codes4(c: usize): v128 {
  return f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(i16x8.extend_low_i8x16_s(v128.load32_zero(c))));
}

function dotCodes(q: usize, c: usize, n: i32, simd: bool): f32 {
  let k = 0;
  let l0: f32 = 0, l1: f32 = 0, l2: f32 = 0, l3: f32 = 0;
  if (simd) {
    let acc = f32x4.splat(0);
    for (; k + 4 <= n; k += 4) acc = f32x4.add(acc, f32x4.mul(v128.load(f32At(q, k)), codes4(c + k)));
    l0 = f32x4.extract_lane(acc, 0);
    l1 = f32x4.extract_lane(acc, 1);
    l2 = f32x4.extract_lane(acc, 2);
    l3 = f32x4.extract_lane(acc, 3);
  } else {
    for (; k + 4 <= n; k += 4) {
      l0 += load<f32>(f32At(q, k)) * <f32> load<i8>(c + k);
      l1 += load<f32>(f32At(q, k + 1)) * <f32> load<i8>(c + k + 1);
      l2 += load<f32>(f32At(q, k + 2)) * <f32> load<i8>(c + k + 2);
      l3 += load<f32>(f32At(q, k + 3)) * <f32> load<i8>(c + k + 3);
    }
  }
  let s = l0 + l1 + l2 + l3;
  for (; k < n; k++) s += load<f32>(f32At(q, k)) * <f32> load<i8>(c + k);
  return s;
}

/** y[k] += a * code[k]: element-wise, so SIMD and scalar give the same bits. */
function axpyCodes(y: usize, a: f32, c: usize, n: i32, simd: bool): void {
  let k = 0;
  if (simd) {
    const va = f32x4.splat(a);
    for (; k + 4 <= n; k += 4) v128.store(f32At(y, k), f32x4.add(v128.load(f32At(y, k)), f32x4.mul(va, codes4(c + k))));
  }
  for (; k < n; k++) store<f32>(f32At(y, k), load<f32>(f32At(y, k)) + a * <f32> load<i8>(c + k));
}

function attentionCodesImpl(
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
  simd: bool,
): void {
  const dim = heads * headSize, kvDim = kvHeads * headSize, group = heads / kvHeads;
  const invSqrt = <f32> 1 / Mathf.sqrt(<f32> headSize);
  for (let t = 0; t < tokens; t++) {
    const len = pos + t + 1;
    for (let h = 0; h < heads; h++) {
      const qh = f32At(q, t * dim + h * headSize), kvh = h / group, kvOffset = kvh * headSize;
      for (let p = 0; p < len; p++) {
        const d = dotCodes(qh, kCodes + p * kvDim + kvOffset, headSize, simd);
        store<f32>(f32At(scores, p), d * load<f32>(f32At(kScales, p * kvHeads + kvh)) * invSqrt);
      }
      softmax(scores, len);
      const oh = f32At(out, t * dim + h * headSize);
      memory.fill(oh, 0, <usize> headSize << 2);
      for (let p = 0; p < len; p++) {
        const a = load<f32>(f32At(scores, p)) * load<f32>(f32At(vScales, p * kvHeads + kvh));
        axpyCodes(oh, a, vCodes + p * kvDim + kvOffset, headSize, simd);
      }
    }
  }
}

/** As attention (attention.ts), over quantized keys and values: codes [positions, kvDim], scales [positions, kvHeads]. */
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
): void {
  attentionCodesImpl(out, q, kCodes, kScales, vCodes, vScales, scores, heads, kvHeads, headSize, tokens, pos, true);
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
): void {
  attentionCodesImpl(out, q, kCodes, kScales, vCodes, vScales, scores, heads, kvHeads, headSize, tokens, pos, false);
}
