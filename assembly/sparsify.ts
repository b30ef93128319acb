// Top-K activation sparsity (Q-Sparse): per row, the `zeroCount` entries of smallest |x|
// become 0 (equal magnitudes: the lower index is zeroed first), the rest pass unchanged;
// optionally rescaled to the row's L2 norm before sparsification.
import { dot } from "./float";
import { f32At } from "./memory";
import { magnitudeKey, selectedTies, selectMagnitude } from "./select";

/** Writes x [tokens, n] with the zeroCount smallest-magnitude entries of each row zeroed to out (may be x). */
export function sparsifyTopK(x: usize, n: i32, tokens: i32, zeroCount: i32, out: usize): void {
  for (let t = 0; t < tokens; t++) {
    const row = f32At(x, t * n), dst = f32At(out, t * n);
    if (zeroCount <= 0) {
      memory.copy(dst, row, <usize> n << 2);
      continue;
    }
    const threshold = selectMagnitude(row, n, min(zeroCount, n)), ties = selectedTies;
    let tiesZeroed = 0;
    for (let k = 0; k < n; k++) {
      const key = magnitudeKey(row, k);
      const zero = key < threshold || (key == threshold && tiesZeroed++ < ties);
      store<f32>(f32At(dst, k), zero ? 0 : load<f32>(f32At(row, k)));
    }
  }
}

/**
 * Scales each row of sparse [tokens, n] (top-K of x) by ||x||_2 / ||sparse||_2, so it keeps
 * x's L2 norm: one reading of Q-Sparse's "re-scale the tensor by its L2 norm after performing
 * the top-K sparsity function" that leaves a model not trained with it at its scale. An
 * all-zero row stays zero.
 */
export function rescaleL2(x: usize, sparse: usize, n: i32, tokens: i32): void {
  for (let t = 0; t < tokens; t++) {
    const row = f32At(x, t * n), dst = f32At(sparse, t * n);
    const kept = dot(dst, dst, n, true);
    if (kept == 0) continue;
    const factor = Mathf.sqrt(dot(row, row, n, true) / kept);
    for (let k = 0; k < n; k++) store<f32>(f32At(dst, k), load<f32>(f32At(dst, k)) * factor);
  }
}
