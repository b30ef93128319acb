// Addresses in a kernel instance's linear memory, typed apart from counts: the kernels'
// `usize` parameters take a Ptr (runtime/kernel-exports.ts), which only the allocator hands
// out (Kernels.allocBytes, allocF32, put) and `offset` moves, so an address and a count
// passed in each other's place do not type-check. At run time a Ptr is a plain number; the
// brand is a property no number has, spelled so that no other type is likely to carry it.

/** A byte address in a kernel instance's linear memory (a plain number at run time). */
export type Ptr = number & { readonly "bitnet-wasm/ptr": true };

/** The address `bytes` bytes past `ptr`. */
export function offset(ptr: Ptr, bytes: number): Ptr {
  return (ptr + bytes) as Ptr;
}

/** A number known to be an address (one read back from memory or computed outside the allocator) as a Ptr. */
export function asPtr(address: number): Ptr {
  return address as Ptr;
}

/** Address 0: no buffer (an argument a kernel ignores, a buffer a configuration does not need). */
export const NULL_PTR = 0 as Ptr;
