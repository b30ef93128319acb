// The normalised Walsh-Hadamard transform (BitNet v2's H-BitLinear), in place over
// consecutive blocks of `block` values (a power of two): O(b log b) butterflies per block,
// then a scale of 1 / sqrt(b), so H is orthonormal and symmetric (H H^T = I). Butterflies
// are element-wise adds and subtracts, so the SIMD path and the scalar twin agree bit for bit.
import { f32At } from "./memory";

function transformBlock(x: usize, b: i32, simd: bool): void {
  for (let h = 1; h < b; h <<= 1) {
    for (let i = 0; i < b; i += h << 1) {
      let j = i;
      if (simd && h >= 4) {
        for (; j + 4 <= i + h; j += 4) {
          const a = v128.load(f32At(x, j)), c = v128.load(f32At(x, j + h));
          v128.store(f32At(x, j), f32x4.add(a, c));
          v128.store(f32At(x, j + h), f32x4.sub(a, c));
        }
      }
      for (; j < i + h; j++) {
        const a = load<f32>(f32At(x, j)), c = load<f32>(f32At(x, j + h));
        store<f32>(f32At(x, j), a + c);
        store<f32>(f32At(x, j + h), a - c);
      }
    }
  }
  const norm = <f32> 1 / Mathf.sqrt(<f32> b);
  let k = 0;
  if (simd) { for (; k + 4 <= b; k += 4) v128.store(f32At(x, k), f32x4.mul(v128.load(f32At(x, k)), f32x4.splat(norm))); }
  for (; k < b; k++) store<f32>(f32At(x, k), load<f32>(f32At(x, k)) * norm);
}

function hadamardImpl(x: usize, n: i32, rows: i32, block: i32, simd: bool): void {
  for (let r = 0; r < rows; r++) {
    for (let s = 0; s < n; s += block) transformBlock(f32At(x, r * n + s), block, simd);
  }
}

/** Transforms each row of x [rows, n] in place, block by block (block a power of two dividing n). */
export function hadamardBlocks(x: usize, n: i32, rows: i32, block: i32): void {
  hadamardImpl(x, n, rows, block, true);
}
/** Scalar twin of hadamardBlocks. */
export function hadamardBlocksScalar(x: usize, n: i32, rows: i32, block: i32): void {
  hadamardImpl(x, n, rows, block, false);
}
