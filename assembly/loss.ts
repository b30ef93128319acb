// Cross-entropy of the next token, for perplexity.
import { f32At } from "./memory";

/** -log softmax(logits)[target], summed in f64 for a stable long-run mean. */
export function negLogLikelihood(logits: usize, n: i32, target: i32): f64 {
  let m = load<f32>(logits);
  for (let k = 1; k < n; k++) m = max(m, load<f32>(f32At(logits, k)));
  let sum: f64 = 0;
  for (let k = 0; k < n; k++) sum += Math.exp(<f64> (load<f32>(f32At(logits, k)) - m));
  return Math.log(sum) - <f64> (load<f32>(f32At(logits, target)) - m);
}
