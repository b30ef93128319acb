// The kernel memory allocator: movable blocks (KV caches) slide down over the gaps that
// blocks of mixed sizes leave, instead of the memory growing past what is in use; their bytes
// travel with them, fixed blocks never move, nothing overlaps. Checked against a model of the
// live blocks over seeded random sequences, and end to end on a session whose cache moves.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { Arena, type MovableBlock } from "../runtime/arena.ts";
import { loadBitNet } from "../model/load.ts";
import { drain } from "../text/generate.ts";
import { dataPath, rng, withData } from "./helpers.ts";

const test = suite("arena");
const PAGE = 65536, BASE = 1000;

/** Random allocations and frees; `fixedEvery` > 0 mixes in fixed (never freed) blocks. */
function exercise(seed: number, fixedEvery: number): void {
  const memory = new WebAssembly.Memory({ initial: 1 }), arena = new Arena(memory, BASE), next = rng(seed);
  const live: { block: MovableBlock; fill: number }[] = [], fixed: [number, number][] = [];
  const bytesOf = (ptr: number, n: number) => new Uint8Array(memory.buffer, ptr, n);
  for (let op = 0; op < 400; op++) {
    if (fixedEvery && op % fixedEvery === fixedEvery - 1) {
      const n = 64 * (1 + Math.floor(next() * 4));
      fixed.push([arena.alloc(n), n]);
      bytesOf(fixed[fixed.length - 1][0], n).fill(0xee);
    } else if (live.length && next() < 0.45) {
      const [gone] = live.splice(Math.floor(next() * live.length), 1);
      arena.freeMovable(gone.block);
    } else {
      const before = memory.buffer.byteLength, liveBytes = live.reduce((s, l) => s + l.block.bytes, 0);
      const n = 64 * (1 + Math.floor(next() * 64)), fill = 1 + (op % 200);
      const block = arena.allocMovable(n);
      bytesOf(block.ptr, n).fill(fill);
      live.push({ block, fill });
      if (!fixedEvery) {
        // Movable blocks only: the memory grows only when everything live would not fit it packed.
        const packed = Math.ceil(BASE / 64) * 64 + liveBytes + n;
        assert.ok(memory.buffer.byteLength <= Math.max(before, Math.ceil(packed / PAGE) * PAGE), `op ${op}: grew to ${memory.buffer.byteLength} with ${packed} bytes packed`);
      }
    }
    for (const { block, fill } of live) assert.ok(bytesOf(block.ptr, block.bytes).every((b) => b === fill), `op ${op}: the block at ${block.ptr} kept its bytes`);
    for (const [ptr, n] of fixed) assert.ok(bytesOf(ptr, n).every((b) => b === 0xee), `op ${op}: the fixed block at ${ptr} stayed`);
    const spans = [...live.map(({ block }) => [block.ptr, block.ptr + block.bytes]), ...fixed.map(([p, n]) => [p, p + n])].sort((a, b) => a[0] - b[0]);
    spans.forEach(([a, b], i) => {
      assert.ok(a >= BASE && b <= arena.bytesUsed, `op ${op}: [${a}, ${b}) within [base, top)`);
      if (i > 0) assert.ok(spans[i - 1][1] <= a, `op ${op}: [${spans[i - 1]}] and [${a}, ${b}] do not overlap`);
    });
  }
  for (const { block } of live.splice(0)) arena.freeMovable(block);
  if (!fixedEvery) assert.is(arena.bytesUsed, BASE, "everything freed: the top is back at the base");
}

test("movable blocks only: contents kept, no overlap, no growth beyond the live bytes packed, top back at the base", () => {
  for (let seed = 1; seed <= 5; seed++) exercise(seed, 0);
});

test("movable blocks among fixed ones: fixed blocks stay, contents kept, no overlap", () => {
  for (let seed = 11; seed <= 15; seed++) exercise(seed, 7);
});

test("a block freed twice is an error", () => {
  const arena = new Arena(new WebAssembly.Memory({ initial: 1 }), BASE), block = arena.allocMovable(64);
  arena.freeMovable(block);
  assert.throws(() => arena.freeMovable(block), /freed twice/);
});

withData(test, "a session whose KV cache moves (compaction) continues exactly as one that did not", ["models/bitllama-1M.bin", "models/tok512.bin"], async () => {
  const load = () => loadBitNet(dataPath("models/bitllama-1M.bin"), { tokenizer: dataPath("models/tok512.bin"), simd: "strict" });
  const turn = async (s: ReturnType<Awaited<ReturnType<typeof load>>["createSession"]>, prompt: string) =>
    (await drain(s.generate(prompt, { temperature: 0, maxTokens: 8 }))).tokens;
  const reference = await load(), plain = reference.createSession({ contextLength: 512 });
  const want = [await turn(plain, "Once upon a time"), await turn(plain, " The dog")];
  const model = await load();
  const below = model.createSession({ contextLength: 256 }), moved = model.createSession({ contextLength: 512 });
  const first = await turn(moved, "Once upon a time");
  below.dispose(); // a 256-position gap under `moved`: a 512-position cache does not fit it
  const top = model.memoryBytes;
  const big = model.createSession({ contextLength: 512 });
  assert.ok(model.memoryBytes - top < 2 * 8 * 512 * 64 * 4, `the new cache reused the gap: the top rose ${model.memoryBytes - top} bytes`);
  assert.equal([first, await turn(moved, " The dog")], want, "the moved cache's keys and values came along");
  big.dispose(), moved.dispose(), plain.dispose();
  model.dispose(), reference.dispose();
});

test.run();
