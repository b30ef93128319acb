// DeltaLLM (arXiv 2507.19608) on the keys: "a delta matrix construction strategy that
// introduces temporal sparsity, and a context-aware hybrid attention mechanism that combines
// full attention in a local context window with delta approximation outside it".
//
// Keys are encoded per KV head against a running reference r: d = k_p - r, and only the
// entries with |d| > threshold are kept (delta_p), r += delta_p; position 0 is kept whole (the
// attention sink), so r after position p is the approximated key k^_p = sum of delta_0..p.
// A query's score against k^_j is then a running sum, R_j = R_(j-1) + q . delta_j, which costs
// only the kept entries; positions 0 and the last `window` ones get the exact q . k_j.
//
// Records: per position and KV head, RECORD(headSize) bytes: the count of kept entries (i32),
// their values (f32) and their indices (u8), in index order.
import { dot } from "./float";
import { f32At, scratch } from "./memory";
import { weighValues } from "./attention";

/** Bytes of one position's delta record of one KV head (heads of at most 256 values). */
export function deltaRecordBytes(headSize: i32): i32 {
  return 4 + (headSize << 2) + ((headSize + 3) & ~3);
}

function recordAt(deltas: usize, p: i32, h: i32, kvHeads: i32, headSize: i32): usize {
  return deltas + <usize> (p * kvHeads + h) * deltaRecordBytes(headSize);
}

/**
 * Encodes key rows [tokens, kvHeads * headSize] of positions pos.. into delta records (one
 * layer's, [positions][kvHeads]), given the reference keys kRef f32 [kvHeads * headSize] as
 * they stand after position pos - 1, and leaves kRef at the last position's. Returns how many
 * entries were kept.
 */
export function deltaEncodeKeys(keys: usize, tokens: i32, kvHeads: i32, headSize: i32, pos: i32, threshold: f32, deltas: usize, kRef: usize): i32 {
  let kept = 0;
  for (let t = 0; t < tokens; t++) {
    const p = pos + t;
    for (let h = 0; h < kvHeads; h++) {
      const k = f32At(keys, (t * kvHeads + h) * headSize), ref = f32At(kRef, h * headSize);
      const rec = recordAt(deltas, p, h, kvHeads, headSize), values = rec + 4, indices = values + (<usize> headSize << 2);
      let n = 0;
      for (let i = 0; i < headSize; i++) {
        const v = load<f32>(f32At(k, i)), d = p == 0 ? v : v - load<f32>(f32At(ref, i));
        if (p != 0 && !(abs(d) > threshold)) continue;
        store<f32>(f32At(values, n), d);
        store<u8>(indices + n, <u8> i);
        store<f32>(f32At(ref, i), p == 0 ? d : load<f32>(f32At(ref, i)) + d);
        n++;
      }
      store<i32>(rec, n);
      kept += n;
    }
  }
  return kept;
}

/** Rebuilds kRef [kvHeads * headSize] as it stands after position pos - 1 from the records of positions 0..pos-1 (a cache rewound to pos). */
export function deltaReference(deltas: usize, kvHeads: i32, headSize: i32, pos: i32, kRef: usize): void {
  memory.fill(kRef, 0, <usize> (kvHeads * headSize) << 2);
  for (let p = 0; p < pos; p++) {
    for (let h = 0; h < kvHeads; h++) {
      const rec = recordAt(deltas, p, h, kvHeads, headSize), n = load<i32>(rec), values = rec + 4, indices = values + (<usize> headSize << 2);
      const ref = f32At(kRef, h * headSize);
      for (let e = 0; e < n; e++) {
        const at = f32At(ref, <i32> load<u8>(indices + e));
        store<f32>(at, p == 0 ? load<f32>(f32At(values, e)) : load<f32>(at) + load<f32>(f32At(values, e)));
      }
    }
  }
}

// The running sums R_j of four query heads (lanes) over the records of positions 0..count-1,
// each lane's R_j * invSqrt stored as that head's score of j (j >= 1; j = 0 is scored exactly).
// qT: the group's queries transposed, [headSize][lanes] with `lanes` a multiple of 4.
function runningScores(
  deltas: usize,
  kvh: i32,
  kvHeads: i32,
  headSize: i32,
  count: i32,
  qT: usize,
  lanes: i32,
  g0: i32,
  group: i32,
  scores: usize,
  len: i32,
  invSqrt: f32,
  simd: bool,
): i32 {
  let acc = f32x4.splat(0), s0: f32 = 0, s1: f32 = 0, s2: f32 = 0, s3: f32 = 0, work = 0;
  for (let j = 0; j < count; j++) {
    const rec = recordAt(deltas, j, kvh, kvHeads, headSize), n = load<i32>(rec), values = rec + 4, indices = values + (<usize> headSize << 2);
    for (let e = 0; e < n; e++) {
      const d = load<f32>(f32At(values, e)), qc = f32At(qT, <i32> load<u8>(indices + e) * lanes + g0);
      if (simd) acc = f32x4.add(acc, f32x4.mul(v128.load(qc), f32x4.splat(d)));
      else {
        s0 += load<f32>(qc) * d;
        s1 += load<f32>(qc, 4) * d;
        s2 += load<f32>(qc, 8) * d;
        s3 += load<f32>(qc, 12) * d;
      }
    }
    work += n;
    if (j == 0) continue;
    if (simd) {
      s0 = f32x4.extract_lane(acc, 0);
      s1 = f32x4.extract_lane(acc, 1);
      s2 = f32x4.extract_lane(acc, 2);
      s3 = f32x4.extract_lane(acc, 3);
    }
    store<f32>(f32At(scores, g0 * len + j), s0 * invSqrt);
    if (g0 + 1 < group) store<f32>(f32At(scores, (g0 + 1) * len + j), s1 * invSqrt);
    if (g0 + 2 < group) store<f32>(f32At(scores, (g0 + 2) * len + j), s2 * invSqrt);
    if (g0 + 3 < group) store<f32>(f32At(scores, (g0 + 3) * len + j), s3 * invSqrt);
  }
  return work * min(4, group - g0);
}

function attentionDeltaImpl(
  out: usize,
  q: usize,
  kCache: usize,
  vCache: usize,
  deltas: usize,
  scores: usize,
  heads: i32,
  kvHeads: i32,
  headSize: i32,
  tokens: i32,
  pos: i32,
  window: i32,
  simd: bool,
): i32 {
  const dim = heads * headSize, kvDim = kvHeads * headSize, group = heads / kvHeads, lanes = (group + 3) & ~3;
  const invSqrt = <f32> 1 / Mathf.sqrt(<f32> headSize), qT = scratch;
  let work = 0;
  for (let t = 0; t < tokens; t++) {
    const i = pos + t, len = i + 1, exactFrom = max(1, len - window); // positions exactFrom..i are exact, and 0
    for (let kvh = 0; kvh < kvHeads; kvh++) {
      const q0 = f32At(q, t * dim + kvh * group * headSize), out0 = f32At(out, t * dim + kvh * group * headSize);
      if (exactFrom > 1) {
        // Outside the window: four query heads at a time over each kept entry (delta_0 is k_0 whole).
        for (let c = 0; c < headSize; c++) {
          for (let g = 0; g < lanes; g++) store<f32>(f32At(qT, c * lanes + g), g < group ? load<f32>(f32At(q0, g * headSize + c)) : 0);
        }
        for (let g0 = 0; g0 < group; g0 += 4) work += runningScores(deltas, kvh, kvHeads, headSize, exactFrom, qT, lanes, g0, group, scores, len, invSqrt, simd);
      }
      for (let j = 0; j < len; j = j == 0 ? exactFrom : j + 1) {
        const key = f32At(kCache, j * kvDim + kvh * headSize);
        for (let g = 0; g < group; g++) store<f32>(f32At(scores, g * len + j), dot(f32At(q0, g * headSize), key, headSize, simd) * invSqrt);
        work += headSize * group;
      }
      weighValues(out0, scores, len, group, vCache, 0, kvh, kvHeads, headSize, 32, 0, simd);
    }
  }
  return work;
}

/**
 * As attention (attention.ts, f32 caches) with DeltaLLM's hybrid scores: exact against
 * position 0 and the last `window` positions of each query, the running delta sums against the
 * others. deltas: the layer's records (deltaEncodeKeys). Returns the multiply-adds the scores
 * took (the dense scores take (pos + t + 1) * headSize per query head and token).
 */
export function attentionDelta(
  out: usize,
  q: usize,
  kCache: usize,
  vCache: usize,
  deltas: usize,
  scores: usize,
  heads: i32,
  kvHeads: i32,
  headSize: i32,
  tokens: i32,
  pos: i32,
  window: i32,
): i32 {
  return attentionDeltaImpl(out, q, kCache, vCache, deltas, scores, heads, kvHeads, headSize, tokens, pos, window, true);
}
/** Scalar twin of attentionDelta. */
export function attentionDeltaScalar(
  out: usize,
  q: usize,
  kCache: usize,
  vCache: usize,
  deltas: usize,
  scores: usize,
  heads: i32,
  kvHeads: i32,
  headSize: i32,
  tokens: i32,
  pos: i32,
  window: i32,
): i32 {
  return attentionDeltaImpl(out, q, kCache, vCache, deltas, scores, heads, kvHeads, headSize, tokens, pos, window, false);
}
