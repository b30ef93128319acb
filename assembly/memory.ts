// Raw-memory helpers shared by the kernels. The host owns the heap: it bumps
// allocations up from `heapBase()` (see runtime/arena.ts), so kernels never allocate.

// Kernel scratch: a region of SCRATCH_BYTES for per-call temporaries (re-laid-out
// activations). Its size bounds no model dimension on its own: kernels that use it work
// through their inputs in pieces that fit. By default it sits between static data and the
// host's heap; each thread of a threaded build gets its own (setScratch), since globals
// are per instance while memory is shared.
export const SCRATCH_BYTES: i32 = 1 << 17;
export let scratch: usize = (__heap_base + 63) & ~63;

/** First byte the host may use for its own allocations (memory below it must exist). */
export function heapBase(): usize {
  return ((__heap_base + 63) & ~63) + SCRATCH_BYTES;
}

/** Moves this instance's scratch to SCRATCH_BYTES at `ptr` (a worker thread's own region). */
export function setScratch(ptr: usize): void {
  scratch = ptr;
}

/** Bytes of scratch each thread needs. */
export function scratchBytes(): i32 {
  return SCRATCH_BYTES;
}

// Vector constants live in static data: Binaryen can hoist `v128.const` masks
// badly inside hot loops, while one `v128.load` before the loop stays put.
export const LOW2_MASK: usize = memory.data<u8>([3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3], 16);
export const MID2_MASK: usize = memory.data<u8>([12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12], 16);
// The low 2, 4, 6 and 8 bits of each i16 lane.
export const I16_CUMULATIVE_MASKS: usize = memory.data<u16>([
  3,
  3,
  3,
  3,
  3,
  3,
  3,
  3,
  15,
  15,
  15,
  15,
  15,
  15,
  15,
  15,
  63,
  63,
  63,
  63,
  63,
  63,
  63,
  63,
  255,
  255,
  255,
  255,
  255,
  255,
  255,
  255,
], 16);

export function f32At(base: usize, index: i32): usize {
  return base + (<usize> index << 2);
}
