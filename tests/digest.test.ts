// Logits bit for bit against digests stored before a refactor (tests/digests.json): every
// shared model, every format each converts to, the 2B4T architecture at its full widths,
// the research variants and the int8 head. A change that moves one bit of one logit fails
// here, whatever else its tests say. `WRITE_DIGESTS=1` rewrites the file (only on purpose).
import { suite } from "uvu";
import * as assert from "uvu/assert";
import process from "node:process";
import { readFileSync, writeFileSync } from "node:fs";
import { checkpointToGguf, checkpointToHf } from "../tools/convert.ts";
import type { Checkpoint } from "../formats/checkpoint.ts";
import { readHfBitNet } from "../formats/huggingface.ts";
import { synthesizeBitNet } from "../tools/synth.ts";
import type { TransformerOptions } from "../model/transformer.ts";
import { memoryFile } from "../runtime/files.ts";
import { loadKernels } from "../runtime/kernels.ts";
import { checkpointOf, modelOf, needs, sharedData } from "./helpers.ts";

const test = suite("digest");
const FILE = new URL("./digests.json", import.meta.url);
const WRITE = process.env.WRITE_DIGESTS === "1";
const stored: Record<string, string> = WRITE ? {} : JSON.parse(readFileSync(FILE, "utf8"));
const computed: Record<string, string> = {};

/** The model's options, and the kernels' threads. */
type DigestOptions = TransformerOptions & { threads?: number };

/** SHA-256 of the logits of a 10-token prefill and 3 single-token steps after it. */
async function logitsDigest(ckpt: Checkpoint, options: DigestOptions = {}): Promise<string> {
  const kx = await loadKernels({ simd: "strict", threads: options.threads });
  const model = await modelOf(kx, ckpt, options);
  try {
    const vocab = model.config.vocabSize;
    const tokens = Array.from({ length: 13 }, (_, i) => (i * 37 + 1) % vocab);
    const rows = model.logits(tokens.slice(0, 10));
    for (let p = 10; p < 13; p++) rows.push(model.step(tokens[p], p));
    const all = new Float32Array(rows.length * vocab);
    rows.forEach((r, i) => all.set(r, i * vocab));
    const hash = new Uint8Array(await crypto.subtle.digest("SHA-256", all));
    return Array.from(hash, (b) => b.toString(16).padStart(2, "0")).join("");
  } finally {
    model.dispose();
    kx.dispose();
  }
}

const cases: [string, () => Promise<Checkpoint | null>, DigestOptions?][] = []; // a shared file's name comes first
const shared = (file: string, bitOrder?: "lsb") => async () => {
  const bytes = sharedData(`models/${file}`);
  return bytes && (await checkpointOf(bytes, file, { bitOrder }));
};
const gguf = async (ckpt: Checkpoint | null, target: "gguf-f32" | "gguf-i2s" | "gguf-tq1" | "gguf-tq2") => {
  if (!ckpt) return null;
  const kx = await loadKernels({ simd: "strict" });
  try {
    return checkpointOf(await checkpointToGguf(kx, ckpt, null, target), `${ckpt.file}.${target}`);
  } finally {
    kx.dispose();
  }
};
const hf = async (ckpt: Checkpoint, target: "hf" | "hf-bf16") => {
  const kx = await loadKernels({ simd: "strict" });
  try {
    const { configJson, weights } = await checkpointToHf(kx, ckpt, target);
    return readHfBitNet(configJson, [memoryFile(weights, "model.safetensors")], `${ckpt.file} ${target}`);
  } finally {
    kx.dispose();
  }
};

for (const file of ["stories260K.bin", "bitllama-1M.bin", "bitllama-3M.bin"]) cases.push([file, shared(file)]);
cases.push(["bitllama-3M-lsb.bin", shared("bitllama-3M-lsb.bin", "lsb")]);
cases.push(["stories260K.bin gguf-f32", async () => gguf(await shared("stories260K.bin")(), "gguf-f32")]);
for (const target of ["gguf-i2s", "gguf-tq1", "gguf-tq2"] as const) {
  cases.push([`bitllama-3M.bin ${target}`, async () => gguf(await shared("bitllama-3M.bin")(), target)]);
}
for (
  const variant of [
    "a4.8,kv=f32",
    "a4.8",
    "v2-a8",
    "v2-a4",
    "v2-a4:64,form=native,kv=3",
    "bitnet",
    "q-sparse",
    "reloaded",
    "reloaded,form=native",
    "all=topk:0.5:32:l2+int8",
    "weights=median:group:128,qkv=int4,o=h+topk:0.5+int8,kv=4",
  ]
) {
  cases.push([`bitllama-1M.bin variant ${variant}`, shared("bitllama-1M.bin"), { variant }]);
}
cases.push(["stories260K.bin variant b1.58", shared("stories260K.bin"), { variant: "b1.58" }]);
cases.push(["bitllama-3M.bin lmHead int8", shared("bitllama-3M.bin"), { lmHead: "int8" }]);
cases.push(["bitllama-3M.bin 2 threads", shared("bitllama-3M.bin"), { threads: 2 }]);

// The 2B4T architecture at its real widths (2560 / 6912, 20 / 5 heads), one layer, a small vocabulary.
const WIDE = { dim: 2560, hiddenDim: 6912, nLayers: 1, nHeads: 20, nKvHeads: 5, vocabSize: 2048, seqLen: 64 };
const wide = () => synthesizeBitNet(WIDE, { seed: 7 }).then((m) => m.checkpoint);
cases.push(["2B4T widths i2s", wide]);
for (const target of ["gguf-tq1", "gguf-tq2"] as const) cases.push([`2B4T widths ${target}`, async () => gguf(await wide(), target)]);
for (const target of ["hf", "hf-bf16"] as const) cases.push([`2B4T widths ${target}`, async () => hf(await wide(), target)]);
const small = { dim: 256, hiddenDim: 512, nLayers: 2, nHeads: 4, nKvHeads: 2, vocabSize: 300, seqLen: 64 };
cases.push(["synth llama gguf-tq2", async () => gguf((await synthesizeBitNet(small, { arch: "llama", embedding: "f32" })).checkpoint, "gguf-tq2")]);
cases.push(["synth bitnet bf16 embedding gguf-i2s", async () => gguf((await synthesizeBitNet(small, { embedding: "bf16" })).checkpoint, "gguf-i2s")]);

for (const [name, make, options] of cases) {
  const file = name.split(" ")[0];
  needs(test, name, { files: file.endsWith(".bin") ? [`models/${file}`] : [] }, async () => {
    const ckpt = await make();
    computed[name] = await logitsDigest(ckpt!, options);
    if (!WRITE) assert.is(computed[name], stored[name], `${name}: logits differ from the stored digest`);
  });
}

test.after(() => {
  if (WRITE) writeFileSync(FILE, JSON.stringify(computed, null, 2) + "\n");
});

test.run();
