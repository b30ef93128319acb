// Feature detection for the kernel binaries.

// The smallest module whose one function runs i32x4.relaxed_dot_i8x16_i7x16_add_s
// (opcode 0xfd 0x113) on three zero vectors: valid only where relaxed SIMD is.
const zeroVector = [0xfd, 0x0c, ...new Array(16).fill(0)]; // v128.const 0
const body = [0x00, ...zeroVector, ...zeroVector, ...zeroVector, 0xfd, 0x93, 0x02, 0x0b]; // no locals; relaxed dot; end
const RELAXED_DOT_PROBE = new Uint8Array([
  0x00,
  0x61,
  0x73,
  0x6d,
  0x01,
  0x00,
  0x00,
  0x00, // magic, version
  0x01,
  0x05,
  0x01,
  0x60,
  0x00,
  0x01,
  0x7b, // type section: () -> v128
  0x03,
  0x02,
  0x01,
  0x00, // function section: one function of type 0
  0x0a,
  body.length + 2,
  0x01,
  body.length,
  ...body, // code section
]);

/** Whether this runtime's WebAssembly has relaxed SIMD (Node 22+, Deno, Chromium; not Node 20). */
export function hasRelaxedSimd(): boolean {
  try {
    return WebAssembly.validate(RELAXED_DOT_PROBE);
  } catch {
    return false;
  }
}

/**
 * Whether the relaxed build is the faster one in this runtime, which "auto" then takes. Its
 * kernels lean on the relaxed integer dot product, one instruction on V8 13+ (Node 24,
 * Deno 2, Chromium 130+: ~2x the strict build's ternary GEMV); V8 12.4 (Node 22) and Bun's
 * JavaScriptCore run it slower than the strict build (0.87x, 0.93x; docs/benchmarks.md).
 */
export function relaxedSimdPays(): boolean {
  if (!hasRelaxedSimd()) return false;
  const g = globalThis as {
    Bun?: unknown;
    Deno?: { version?: { v8?: string } };
    process?: { versions?: { v8?: string } };
    navigator?: { userAgent?: string };
  };
  if (g.Bun !== undefined) return false; // Bun reports a V8 version but runs JavaScriptCore
  const v8 = g.Deno?.version?.v8 ?? g.process?.versions?.v8;
  if (v8) return Number(v8.split(".")[0]) >= 13;
  const chrome = /Chrome\/(\d+)/.exec(g.navigator?.userAgent ?? ""); // Chromium N ships V8 N/10
  return chrome ? Number(chrome[1]) >= 130 : true;
}
