// The load step every BitLinear shares: decode a matrix as int8 into scratch, pack it into
// its kernel layout in new kernel memory, free the scratch.
import { FormatError, ShapeError } from "../core/errors.ts";
import type { Kernels } from "../runtime/kernels.ts";
import type { Ptr } from "../runtime/ptr.ts";

export interface Packing {
  /** Bytes of the packed [rows, cols] matrix. */
  bytes: (rows: number, cols: number) => number;
  /** Packs int8 src into dst; returns how many values were invalid. */
  pack: (src: Ptr, rows: number, cols: number, dst: Ptr) => number;
  /** What the valid values are, for the error message. */
  values: string;
}

/**
 * `decode` writes the matrix [rows, cols] as int8 at the scratch address it is given and
 * returns its scale; returns the packed matrix's address and that scale. `what` names the
 * tensor in errors.
 */
export async function packInt8(
  kernels: Kernels,
  packing: Packing,
  rows: number,
  cols: number,
  what: string,
  decode: (int8: Ptr) => Promise<number>,
): Promise<{ packed: Ptr; scale: number }> {
  if (cols > kernels.k.ternaryMaxCols()) {
    throw new ShapeError(`${what}: ${cols} input columns, the ternary kernels take at most ${kernels.k.ternaryMaxCols()}`);
  }
  const packed = kernels.allocBytes(packing.bytes(rows, cols));
  const mark = kernels.arena.mark();
  try {
    const int8 = kernels.allocBytes(rows * cols);
    const scale = await decode(int8);
    const bad = packing.pack(int8, rows, cols, packed);
    if (bad > 0) throw new FormatError(what, `${bad} weights are not ${packing.values}`);
    return { packed, scale };
  } finally {
    kernels.arena.release(mark);
  }
}
