// A bump allocator over a kernel instance's linear memory. A model allocates its
// weights and buffers once and frees them all together with the instance (a stack
// discipline, mark / release, serves load-time scratch). Sessions come and go: their KV
// caches are freed one by one into a free list that later allocations reuse first
// (they are all of a few sizes, so first fit wastes little).
import { BitNetError } from "../core/errors.ts";
import type { Ptr } from "./ptr.ts";

const PAGE = 65536;
const MAX_BYTES = 4 * 1024 * 1024 * 1024; // wasm32 address space

/** Allocator of a kernel instance's linear memory: bump, mark / release, and a free list for KV caches. */
export class Arena {
  #top: number;
  /** Freed blocks [start, end), sorted by address and never adjacent (merged on free). */
  #free: Array<[number, number]> = [];
  /** The highest top so far: memory above it is fresh (zero). */
  #highWater = 0;
  /** An allocator of `memory` above `base`, below which the kernels keep their static data. */
  constructor(readonly memory: WebAssembly.Memory, base: number) {
    this.#top = 0;
    this.alloc(base, 1); // the kernels' static data and scratch sit below `base`
  }

  /** Reserves `bytes` aligned to `align`, zeroed (unless `zero` is false: a reused block keeps old bytes); returns the address. */
  alloc(bytes: number, align = 64, zero = true): Ptr {
    for (let i = 0; i < this.#free.length; i++) {
      const [from, to] = this.#free[i];
      const start = Math.ceil(from / align) * align;
      if (start + bytes > to) continue;
      this.#free.splice(i, 1, ...([[from, start], [start + bytes, to]] as Array<[number, number]>).filter(([a, b]) => b > a));
      if (zero) new Uint8Array(this.memory.buffer, start, bytes).fill(0);
      return start as Ptr;
    }
    const start = Math.ceil(this.#top / align) * align;
    const end = start + bytes;
    if (!Number.isSafeInteger(end) || end > MAX_BYTES) {
      throw new BitNetError(`out of WebAssembly memory: ${bytes} bytes requested, 4 GiB address space`);
    }
    const have = this.memory.buffer.byteLength;
    if (end > have) {
      try {
        this.memory.grow(Math.ceil((end - have) / PAGE));
      } catch (e) {
        throw new BitNetError(`cannot grow WebAssembly memory to ${end} bytes`, { cause: e });
      }
    }
    if (zero && start < this.#highWater) new Uint8Array(this.memory.buffer, start, Math.min(end, this.#highWater) - start).fill(0);
    this.#top = end;
    this.#highWater = Math.max(this.#highWater, end);
    return start as Ptr;
  }

  /** Returns a block from alloc (its address and size) for reuse. */
  free(start: number, bytes: number): void {
    let from = start, to = start + bytes;
    const kept: Array<[number, number]> = [];
    for (const [a, b] of this.#free) {
      if (b === from) from = a;
      else if (a === to) to = b;
      else kept.push([a, b]);
    }
    if (to >= this.#top) this.#top = from; // the topmost block lowers the top instead
    else kept.push([from, to]);
    this.#free = kept.sort((x, y) => x[0] - y[0]);
  }

  /** Bytes in freed blocks below the top, ready for reuse. */
  get bytesFree(): number {
    return this.#free.reduce((sum, [a, b]) => sum + b - a, 0);
  }

  /** The current top, to release everything allocated after it. */
  mark(): number {
    return this.#top;
  }

  /** Frees everything allocated since `mark` (zeroed again when reallocated). */
  release(mark: number): void {
    this.#top = mark;
    this.#free = this.#free.filter(([, b]) => b <= mark);
  }

  /** Bytes below the top: reserved, or freed into the free list. */
  get bytesUsed(): number {
    return this.#top;
  }
}
