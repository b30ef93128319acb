// Gated feed-forward activations, in place on gate: gate = act(gate) * up.
import { f32At } from "./memory";

/** SwiGLU (Llama): silu(g) * u, with silu(g) = g / (1 + e^-g). */
export function swiglu(gate: usize, up: usize, n: i32): void {
  for (let k = 0; k < n; k++) {
    const g = load<f32>(f32At(gate, k));
    store<f32>(f32At(gate, k), g * (<f32>1 / (<f32>1 + Mathf.exp(-g))) * load<f32>(f32At(up, k)));
  }
}

/** ReLU^2-GLU (BitNet b1.58 2B4T): relu(g)^2 * u. */
export function relu2glu(gate: usize, up: usize, n: i32): void {
  for (let k = 0; k < n; k++) {
    const r = max(load<f32>(f32At(gate, k)), <f32>0);
    store<f32>(f32At(gate, k), r * r * load<f32>(f32At(up, k)));
  }
}
