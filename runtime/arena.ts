// A bump allocator over a kernel instance's linear memory. A model allocates its
// weights and buffers once and frees them all together with the instance, so a
// stack discipline (mark / release for load-time scratch) is all we need.
import { BitNetError } from "../model/errors.ts";

const PAGE = 65536;
const MAX_BYTES = 4 * 1024 * 1024 * 1024; // wasm32 address space

export class Arena {
  #top: number;
  constructor(readonly memory: WebAssembly.Memory, base: number) {
    this.#top = 0;
    this.alloc(base, 1); // the kernels' static data and scratch sit below `base`
  }

  /** Reserves `bytes` (zeroed on first use of fresh memory) aligned to `align`; returns the address. */
  alloc(bytes: number, align = 64): number {
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
    this.#top = end;
    return start;
  }

  /** The current top, to release everything allocated after it. */
  mark(): number {
    return this.#top;
  }

  /** Frees everything allocated since `mark` (its bytes are zeroed for reuse). */
  release(mark: number): void {
    new Uint8Array(this.memory.buffer, mark, this.#top - mark).fill(0);
    this.#top = mark;
  }

  get bytesUsed(): number {
    return this.#top;
  }
}
