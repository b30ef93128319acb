// Top-K activation sparsity (Q-Sparse): per row, the `zeroCount` entries of smallest |x|
// become 0 (equal magnitudes: the lower index is zeroed first), the rest pass unchanged.
// The threshold is found by a radix select over the bits of |x| (for non-negative floats
// the bit patterns order like the values): four passes of 256-bin histograms, O(n).
import { f32At, SCRATCH } from "./memory";

@inline function keyAt(x: usize, k: i32): u32 {
  return reinterpret<u32>(load<f32>(f32At(x, k))) & 0x7fffffff;
}

/** Writes x [tokens, n] with the zeroCount smallest-magnitude entries of each row zeroed to out (may be x). */
export function sparsifyTopK(x: usize, n: i32, tokens: i32, zeroCount: i32, out: usize): void {
  const hist = SCRATCH; // 256 u32 bins
  for (let t = 0; t < tokens; t++) {
    const row = f32At(x, t * n), dst = f32At(out, t * n);
    if (zeroCount <= 0) {
      memory.copy(dst, row, <usize>n << 2);
      continue;
    }
    // The zeroCount-th smallest key, and how many keys equal to it are zeroed.
    let prefix: u32 = 0, remaining = min(zeroCount, n);
    for (let shift = 24; shift >= 0; shift -= 8) {
      memory.fill(hist, 0, 1024);
      for (let k = 0; k < n; k++) {
        const key = keyAt(row, k);
        if (shift < 24 && (key >> (shift + 8)) != prefix) continue; // outside the bins chosen so far
        const bin = hist + ((key >> shift) & 255) * 4;
        store<u32>(bin, load<u32>(bin) + 1);
      }
      let b: u32 = 0;
      for (; b < 255; b++) {
        const c = <i32>load<u32>(hist + b * 4);
        if (c >= remaining) break;
        remaining -= c;
      }
      prefix = (prefix << 8) | b;
    }
    const threshold = prefix;
    let equalZeroed = 0;
    for (let k = 0; k < n; k++) {
      const key = keyAt(row, k);
      const zero = key < threshold || (key == threshold && equalZeroed++ < remaining);
      store<f32>(f32At(dst, k), zero ? 0 : load<f32>(f32At(row, k)));
    }
  }
}
