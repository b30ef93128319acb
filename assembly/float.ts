// f32 kernels. Every reduction goes through `dot`, which sums in four lanes and
// folds them as ((l0 + l1) + l2) + l3 before the scalar tail: the SIMD and the
// scalar twin (simd = false) therefore round identically and agree bit for bit.
import { f32At } from "./memory";

export function dot(a: usize, b: usize, n: i32, simd: bool): f32 {
  let k = 0;
  let l0: f32 = 0, l1: f32 = 0, l2: f32 = 0, l3: f32 = 0;
  if (simd) {
    let acc = f32x4.splat(0);
    for (; k + 4 <= n; k += 4) {
      acc = f32x4.add(acc, f32x4.mul(v128.load(f32At(a, k)), v128.load(f32At(b, k))));
    }
    l0 = f32x4.extract_lane(acc, 0);
    l1 = f32x4.extract_lane(acc, 1);
    l2 = f32x4.extract_lane(acc, 2);
    l3 = f32x4.extract_lane(acc, 3);
  } else {
    for (; k + 4 <= n; k += 4) {
      l0 += load<f32>(f32At(a, k)) * load<f32>(f32At(b, k));
      l1 += load<f32>(f32At(a, k + 1)) * load<f32>(f32At(b, k + 1));
      l2 += load<f32>(f32At(a, k + 2)) * load<f32>(f32At(b, k + 2));
      l3 += load<f32>(f32At(a, k + 3)) * load<f32>(f32At(b, k + 3));
    }
  }
  let s = l0 + l1 + l2 + l3;
  for (; k < n; k++) s += load<f32>(f32At(a, k)) * load<f32>(f32At(b, k));
  return s;
}

/** y[k] += a * x[k]. Element-wise, so SIMD and scalar give the same bits. */
export function axpy(y: usize, a: f32, x: usize, n: i32, simd: bool): void {
  let k = 0;
  if (simd) {
    const va = f32x4.splat(a);
    for (; k + 4 <= n; k += 4) {
      v128.store(f32At(y, k), f32x4.add(v128.load(f32At(y, k)), f32x4.mul(va, v128.load(f32At(x, k)))));
    }
  }
  for (; k < n; k++) store<f32>(f32At(y, k), load<f32>(f32At(y, k)) + a * load<f32>(f32At(x, k)));
}

// Y[t, r] = sum_k W[r, k] * X[t, k]; W is [rows, cols] row-major, X is [tokens, cols].
// Rows outside, tokens inside: one weight row stays in cache while every token uses it.
function gemmF32Impl(w: usize, rows: i32, cols: i32, x: usize, tokens: i32, y: usize, simd: bool): void {
  for (let r = 0; r < rows; r++) {
    const wr = f32At(w, r * cols);
    for (let t = 0; t < tokens; t++) {
      store<f32>(f32At(y, t * rows + r), dot(wr, f32At(x, t * cols), cols, simd));
    }
  }
}

/** y = W x for f32 weights W [rows, cols] and one token x [cols]: y f32 [rows]. */
export function gemvF32(w: usize, rows: i32, cols: i32, x: usize, y: usize): void {
  gemmF32Impl(w, rows, cols, x, 1, y, true);
}
/** Y = X W^T for f32 weights W [rows, cols] and `tokens` tokens X [tokens, cols]: Y f32 [tokens, rows]. */
export function gemmF32(w: usize, rows: i32, cols: i32, x: usize, tokens: i32, y: usize): void {
  gemmF32Impl(w, rows, cols, x, tokens, y, true);
}
/** Scalar twin of gemmF32 (the same summation order). */
export function gemmF32Scalar(w: usize, rows: i32, cols: i32, x: usize, tokens: i32, y: usize): void {
  gemmF32Impl(w, rows, cols, x, tokens, y, false);
}

/** x[i] += y[i] (the residual connection). */
export function addInPlace(x: usize, y: usize, n: i32): void {
  axpy(x, 1, y, n, true);
}
