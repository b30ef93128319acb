// Raw-memory helpers shared by the kernels. The host owns the heap: it bumps
// allocations up from `heapBase()` (see runtime/arena.ts), so kernels never allocate.

/** First byte the host may use for its own allocations. */
export function heapBase(): usize {
  return __heap_base;
}

// Vector constants live in static data: Binaryen can hoist `v128.const` masks
// badly inside hot loops, while one `v128.load` before the loop stays put.
export const LOW2_MASK: usize = memory.data<u8>([3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3], 16);

@inline export function f32At(base: usize, index: i32): usize {
  return base + (<usize>index << 2);
}
