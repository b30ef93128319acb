// One seeded generator (mulberry32) for everything that must be reproducible in every runtime:
// synthesized weights, fuzz cases, soak workloads, test data.

/** A deterministic stream of u32 from a 32-bit seed. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}

/** Deterministic uniform numbers in [0, 1) from a 32-bit seed. */
export function uniform(seed: number): () => number {
  const next = mulberry32(seed);
  return () => next() / 4294967296;
}
