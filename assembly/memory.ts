// Raw-memory helpers shared by the kernels. The host owns the heap: it bumps
// allocations up from `heapBase()` (see runtime/arena.ts), so kernels never allocate.

// Kernel scratch: a fixed region between static data and the host's heap, for
// per-call temporaries (re-laid-out activations). Its size bounds no model dimension
// on its own: kernels that use it work through their inputs in pieces that fit.
export const SCRATCH: usize = (__heap_base + 63) & ~63;
export const SCRATCH_BYTES: i32 = 1 << 17;

/** First byte the host may use for its own allocations (memory below it must exist). */
export function heapBase(): usize {
  return SCRATCH + SCRATCH_BYTES;
}

// Vector constants live in static data: Binaryen can hoist `v128.const` masks
// badly inside hot loops, while one `v128.load` before the loop stays put.
export const LOW2_MASK: usize = memory.data<u8>([3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3], 16);
export const MID2_MASK: usize = memory.data<u8>([12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12], 16);
// The low 2, 4, 6 and 8 bits of each i16 lane.
export const I16_CUMULATIVE_MASKS: usize = memory.data<u16>([
  3, 3, 3, 3, 3, 3, 3, 3, 15, 15, 15, 15, 15, 15, 15, 15,
  63, 63, 63, 63, 63, 63, 63, 63, 255, 255, 255, 255, 255, 255, 255, 255,
], 16);

@inline export function f32At(base: usize, index: i32): usize {
  return base + (<usize>index << 2);
}
