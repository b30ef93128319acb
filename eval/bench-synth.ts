// The full BitNet b1.58 2B4T shape (random ternary weights) as a GGUF file written by `synth`,
// made once and reused by the benchmarks that read it.
import { existsSync, mkdirSync } from "node:fs";
import { type GgufTarget, writeCheckpointGguf } from "../tools/convert.ts";
import { BITNET_2B4T_SHAPE, synthesizeBitNet } from "../tools/synth.ts";
import { fileSink, writeThrough } from "../runtime/files.ts";
import { loadKernels } from "../runtime/kernels.ts";

/** The path of dir/2b4t-<type>.gguf (I2_S by default), written first if it is not there. */
export async function synth2b4tFile(dir = "/tmp/bitnet-2b4t", target: GgufTarget = "gguf-i2s"): Promise<string> {
  const path = `${dir}/2b4t-${target.slice(5)}.gguf`;
  if (existsSync(path)) return path;
  mkdirSync(dir, { recursive: true });
  console.error(`writing ${path} ...`);
  await writeThrough(await fileSink(path), async (sink) => writeCheckpointGguf(await loadKernels(), (await synthesizeBitNet(BITNET_2B4T_SHAPE)).checkpoint, null, target, sink));
  return path;
}
