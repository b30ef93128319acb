// Order statistics of |x| without sorting: a radix select over the bits of |x| (for
// non-negative floats the bit patterns order like the values), four passes of 256-bin
// histograms in scratch, O(n). Used by top-K sparsity and the median ternarizer.
import { f32At, scratch } from "./memory";

export function magnitudeKey(x: usize, k: i32): u32 {
  return reinterpret<u32>(load<f32>(f32At(x, k))) & 0x7fffffff;
}

/** After selectMagnitude: how many entries equal to the selected key complete the rank. */
export let selectedTies = 0;

/**
 * The key (bits of |x|) of rank `rank` (1-based: 1 is the smallest) among x[0..n), for
 * 1 <= rank <= n. Sets `selectedTies` to how many entries equal to it are needed, after all
 * smaller ones, to make up `rank` entries.
 */
export function selectMagnitude(x: usize, n: i32, rank: i32): u32 {
  const hist = scratch; // 256 u32 bins
  let prefix: u32 = 0, remaining = rank;
  for (let shift = 24; shift >= 0; shift -= 8) {
    memory.fill(hist, 0, 1024);
    for (let k = 0; k < n; k++) {
      const key = magnitudeKey(x, k);
      if (shift < 24 && (key >> (shift + 8)) != prefix) continue; // outside the bins chosen so far
      const bin = hist + ((key >> shift) & 255) * 4;
      store<u32>(bin, load<u32>(bin) + 1);
    }
    let b: u32 = 0;
    for (; b < 255; b++) {
      const c = <i32> load<u32>(hist + b * 4);
      if (c >= remaining) break;
      remaining -= c;
    }
    prefix = (prefix << 8) | b;
  }
  selectedTies = remaining;
  return prefix;
}
