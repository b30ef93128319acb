// Rotary position embedding, in place, on `tokens` rows of `heads` heads each.
// cos/sin tables are [positions, headSize / 2], computed once per model by the host.
// interleaved (llama2.c, Meta's llama): pairs (2i, 2i + 1);
// neox (Hugging Face rotate_half, bitnet.cpp): pairs (i, i + headSize / 2).
import { f32At } from "./memory";

/**
 * Rotary position embedding in place: `heads` heads of headSize at the start of each row of
 * v [tokens, rowStride], at positions pos..pos + tokens - 1; interleaved pairs, or halves with `neox`.
 */
export function rope(v: usize, heads: i32, headSize: i32, tokens: i32, rowStride: i32, pos: i32, cos: usize, sin: usize, neox: bool): void {
  const half = headSize >> 1;
  for (let t = 0; t < tokens; t++) {
    const table = (pos + t) * half;
    for (let h = 0; h < heads; h++) {
      const head = f32At(v, t * rowStride + h * headSize);
      for (let i = 0; i < half; i++) {
        const c = load<f32>(f32At(cos, table + i)), s = load<f32>(f32At(sin, table + i));
        const pa = f32At(head, neox ? i : i << 1), pb = f32At(head, neox ? i + half : (i << 1) + 1);
        const a = load<f32>(pa), b = load<f32>(pb);
        store<f32>(pa, a * c - b * s);
        store<f32>(pb, a * s + b * c);
      }
    }
  }
}
