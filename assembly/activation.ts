// Gated feed-forward activations, in place on gate: gate = act(gate) * up.
import { f32At } from "./memory";

/** SwiGLU (Llama): silu(g) * u, with silu(g) = g / (1 + e^-g). */
export function swiglu(gate: usize, up: usize, n: i32): void {
  for (let k = 0; k < n; k++) {
    const g = load<f32>(f32At(gate, k));
    store<f32>(f32At(gate, k), g * (<f32> 1 / (<f32> 1 + Mathf.exp(-g))) * load<f32>(f32At(up, k)));
  }
}

/** ReLU^2-GLU (BitNet b1.58 2B4T): relu(g)^2 * u (four lanes at a time, the same operations per value). */
export function relu2glu(gate: usize, up: usize, n: i32): void {
  const zero = f32x4.splat(0);
  let k = 0;
  for (; k + 4 <= n; k += 4) {
    const r = f32x4.max(v128.load(f32At(gate, k)), zero);
    v128.store(f32At(gate, k), f32x4.mul(f32x4.mul(r, r), v128.load(f32At(up, k))));
  }
  for (; k < n; k++) {
    const r = max(load<f32>(f32At(gate, k)), <f32> 0);
    store<f32>(f32At(gate, k), r * r * load<f32>(f32At(up, k)));
  }
}

/** ReLU in place: x = max(x, 0) (the zeros of a ReLU^2 gate, found before the up projection). */
export function relu(x: usize, n: i32): void {
  const zero = f32x4.splat(0);
  let k = 0;
  for (; k + 4 <= n; k += 4) v128.store(f32At(x, k), f32x4.max(v128.load(f32At(x, k)), zero));
  for (; k < n; k++) store<f32>(f32At(x, k), max(load<f32>(f32At(x, k)), <f32> 0));
}
