// Normalisations over rows of length n, `tokens` rows at a time.
import { dot } from "./float";
import { f32At } from "./memory";

// out = x * factor, element-wise.
function scaleRow(out: usize, x: usize, factor: f32, n: i32): void {
  for (let k = 0; k < n; k++) store<f32>(f32At(out, k), load<f32>(f32At(x, k)) * factor);
}

function rmsNormImpl(out: usize, x: usize, weight: usize, n: i32, tokens: i32, eps: f32, simd: bool): void {
  for (let t = 0; t < tokens; t++) {
    const xt = f32At(x, t * n), ot = f32At(out, t * n);
    const inv = <f32> 1 / Mathf.sqrt(dot(xt, xt, n, simd) / <f32> n + eps);
    // as llama2.c: weight * (inv * x)
    for (let k = 0; k < n; k++) store<f32>(f32At(ot, k), load<f32>(f32At(weight, k)) * (inv * load<f32>(f32At(xt, k))));
  }
}

/** RMSNorm with weight: out = w * x / sqrt(mean(x^2) + eps). out may alias x. */
export function rmsNorm(out: usize, x: usize, weight: usize, n: i32, tokens: i32, eps: f32): void {
  rmsNormImpl(out, x, weight, n, tokens, eps, true);
}
/** Scalar twin of rmsNorm. */
export function rmsNormScalar(out: usize, x: usize, weight: usize, n: i32, tokens: i32, eps: f32): void {
  rmsNormImpl(out, x, weight, n, tokens, eps, false);
}

function l2NormImpl(out: usize, x: usize, n: i32, tokens: i32, simd: bool): void {
  for (let t = 0; t < tokens; t++) {
    const xt = f32At(x, t * n);
    const norm = Mathf.sqrt(dot(xt, xt, n, simd));
    scaleRow(f32At(out, t * n), xt, norm > 0 ? <f32> 1 / (norm * Mathf.sqrt(<f32> n)) : 0, n);
  }
}

/**
 * The bitllama BitLinear input norm, parameter-free: out = x / (||x||_2 * sqrt(n)),
 * i.e. F.normalize(x) * n^-0.5 as bitllama2.c trains it (an all-zero row stays zero).
 * Only the output scale depends on it: absmax quantization is scale-invariant.
 */
export function l2Norm(out: usize, x: usize, n: i32, tokens: i32): void {
  l2NormImpl(out, x, n, tokens, true);
}
/** Scalar twin of l2Norm. */
export function l2NormScalar(out: usize, x: usize, n: i32, tokens: i32): void {
  l2NormImpl(out, x, n, tokens, false);
}

/**
 * LayerNorm without affine parameters, as the b1.58 Reloaded reference code normalises each
 * BitLinear input: out = (x - mean x) / sqrt(var x + eps), var the biased variance. out may alias x.
 */
export function layerNorm(out: usize, x: usize, n: i32, tokens: i32, eps: f32): void {
  for (let t = 0; t < tokens; t++) {
    const xt = f32At(x, t * n), ot = f32At(out, t * n);
    let sum: f32 = 0;
    for (let k = 0; k < n; k++) sum += load<f32>(f32At(xt, k));
    const mean = sum / <f32> n;
    let squares: f32 = 0;
    for (let k = 0; k < n; k++) {
      const d = load<f32>(f32At(xt, k)) - mean;
      squares += d * d;
    }
    const inv = <f32> 1 / Mathf.sqrt(squares / <f32> n + eps);
    for (let k = 0; k < n; k++) store<f32>(f32At(ot, k), (load<f32>(f32At(xt, k)) - mean) * inv);
  }
}
