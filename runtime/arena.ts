// A bump allocator over a kernel instance's linear memory. A model allocates its
// weights and buffers once and frees them all together with the instance (a stack
// discipline, mark / release, serves load-time scratch). Sessions come and go: their KV
// caches are movable blocks, freed one by one into a free list that later allocations reuse
// first. Caches of mixed lengths leave gaps that a larger one does not fit; rather than grow
// the memory past what is in use, the arena then slides the movable blocks down over the
// gaps (their owners read the address afresh at each use; nothing runs during an alloc).
import { BitNetError } from "../core/errors.ts";
import type { Ptr } from "./ptr.ts";

const PAGE = 65536;
const MAX_BYTES = 4 * 1024 * 1024 * 1024; // wasm32 address space

/** A block the arena may move when it compacts: read `ptr` at each use, never keep it. */
export interface MovableBlock {
  /** The block's current address. */
  readonly ptr: Ptr;
  /** Its size in bytes. */
  readonly bytes: number;
}

/** Allocator of a kernel instance's linear memory: bump, mark / release, and movable blocks with a free list for KV caches. */
export class Arena {
  /** Movable blocks by address. */
  readonly #movable = new Map<number, { ptr: Ptr; bytes: number }>();
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
    const below = this.#top;
    this.#top = end;
    if (start > below) this.free(below, start - below); // the alignment padding: free, so the top comes back down past it
    this.#highWater = Math.max(this.#highWater, end);
    return start as Ptr;
  }

  /** Reserves `bytes` (not zeroed) as a block the arena may move; compacts first when only growing the memory would fit it otherwise. */
  allocMovable(bytes: number): MovableBlock {
    const fits = this.#free.some(([from, to]) => Math.ceil(from / 64) * 64 + bytes <= to);
    if (!fits && this.#free.length > 0 && Math.ceil(this.#top / 64) * 64 + bytes > this.memory.buffer.byteLength) this.#compact();
    const block = { ptr: this.alloc(bytes, 64, false), bytes };
    this.#movable.set(block.ptr, block);
    return block;
  }

  /** Returns a movable block for reuse. */
  freeMovable(block: MovableBlock): void {
    if (this.#movable.get(block.ptr) !== block) throw new BitNetError(`a block at ${block.ptr} was freed twice or is not the arena's`);
    this.#movable.delete(block.ptr);
    this.free(block.ptr, block.bytes);
  }

  /** Slides every movable block above the lowest gap down over the gaps (fixed blocks stay where they are), then lowers the top. */
  #compact(): void {
    const low = this.#free[0][0], memory = new Uint8Array(this.memory.buffer);
    const regions = [
      ...this.#free.map(([start, end]) => ({ start, end, block: undefined })),
      ...[...this.#movable.values()].filter((b) => b.ptr > low).map((block) => ({ start: block.ptr as number, end: block.ptr + block.bytes, block })),
    ].sort((x, y) => x.start - y.start);
    const gaps: Array<[number, number]> = [];
    let dst = low, cursor = low; // dst: where the next movable block goes; cursor: the end of what was walked
    for (const { start, end, block } of regions) {
      if (start > cursor) { // a fixed allocation [cursor, start): blocks cannot pass it
        if (dst < cursor) gaps.push([dst, cursor]);
        dst = start;
      }
      if (block) {
        const to = Math.ceil(dst / 64) * 64;
        if (to > dst) gaps.push([dst, to]);
        if (to !== block.ptr) {
          memory.copyWithin(to, block.ptr, block.ptr + block.bytes);
          this.#movable.delete(block.ptr);
          block.ptr = to as Ptr;
          this.#movable.set(to, block);
        }
        dst = to + block.bytes;
      }
      cursor = end;
    }
    if (cursor < this.#top) {
      if (dst < cursor) gaps.push([dst, cursor]);
      dst = this.#top;
    }
    this.#top = dst;
    this.#free = gaps.reduce<Array<[number, number]>>((merged, [a, b]) => {
      const last = merged[merged.length - 1];
      if (last && last[1] === a) last[1] = b;
      else merged.push([a, b]);
      return merged;
    }, []);
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
