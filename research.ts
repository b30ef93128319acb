/**
 * bitnet-wasm research and format tools (`bitnet-wasm/research`, `jsr:@bitnet/wasm/research`):
 * the kernels and their layers, quantization variants and sweeps, checkpoints, GGUF and
 * safetensors readers and writers, converters and the synthetic 2B4T-shaped model. Lower level
 * than the main entry and less stable: `Transformer.forward` and the kernels deal in addresses
 * of WebAssembly memory. Runtime-neutral (nothing from node:): file paths work once the main
 * entry ("bitnet-wasm", "jsr:@bitnet/wasm"), which installs node:fs, has been imported.
 *
 * ```ts
 * import { loadBitNet } from "jsr:@bitnet/wasm";
 * import { openFile, readGguf } from "jsr:@bitnet/wasm/research";
 * const file = await openFile("model.gguf");
 * console.log((await readGguf(file)).metadata);
 * await file.close();
 * ```
 * @module
 */
export { readCheckpoint } from "./model/load.ts";
export type { Checkpoint, LayerTensors, LinearTensor, Span } from "./formats/checkpoint.ts";
export { argmax, Sampler, Xorshift64Star } from "./text/sampler.ts";
export { BOS, EOS, Llama2cTokenizer } from "./text/tokenizer/llama2c.ts";
export { BpeTokenizer, type BpeVocabulary } from "./text/tokenizer/bpe.ts";
export { type ResolvedTokenizer, resolveTokenizer, TOKENIZER_FILES, tokenizerFromBytes } from "./text/tokenizer/resolve.ts";
export { DOCUMENT_SEPARATOR, evaluationTokens } from "./model/perplexity.ts";
export { runSweep, splitVariants, sweepChart, type SweepOptions, type SweepResult, sweepTable } from "./eval/sweep.ts";
export { compileKernels, type KernelExports, Kernels, kernelUrl, loadKernels, resolveSimdLevel } from "./runtime/kernels.ts";
export { relaxedSimdPays } from "./runtime/features.ts";
export { ActivationQuantizer, type ActivationSpec, type Int8Input, paddedCols } from "./quant/activations.ts";
export {
  type ActivationPlan,
  DELTA_DEFAULTS,
  type DeltaAttention,
  parseVariant,
  type Preset,
  PRESETS,
  type Site,
  SITES,
  type VariantPlan,
  WEIGHT_TERNARIZERS,
  type WeightQuantizer,
  type WeightTernarizer,
} from "./quant/variants.ts";
export { BitLinear, type BitWeights, type GroupScales } from "./quant/bitlinear.ts";
export { type F32Input, F32Linear, type Linear, type PreparedInput } from "./quant/linear.ts";
export { concatFiles, memoryFile, openFile } from "./runtime/files.ts";
export { checkpointToGguf, checkpointToHf, GGUF_TARGETS, type GgufTarget, type GgufVocabularySource, HF_TARGETS, type HfTarget, hfTokenizerFiles } from "./tools/convert.ts";
export { readHfBitNet } from "./formats/huggingface.ts";
export { GgmlType, type GgufEntry, type GgufFile, type GgufScalar, type GgufTensorInfo, GgufType, type GgufValue, readGguf } from "./formats/gguf.ts";
export { type GgufTensorData, writeGguf } from "./formats/gguf-writer.ts";
export {
  readSafetensors,
  readSafetensorsIndex,
  SAFETENSORS_DTYPES,
  type SafetensorsDtype,
  type SafetensorsFile,
  type SafetensorsTensor,
  writeSafetensors,
} from "./formats/safetensors.ts";
export {
  BITNET_2B4T_SHAPE,
  type LinearName,
  SYNTH_ARCHITECTURES,
  type SynthArch,
  synthesizeBitNet,
  type SynthModel,
  type SynthOptions,
  type SynthShape,
  type SynthWeights,
} from "./tools/synth.ts";
export { type DecodeStep, Transformer, type TransformerOptions } from "./model/transformer.ts";
export {
  type CodecName,
  type GgmlName,
  ggmlTensorType,
  isTernary,
  scaleCount,
  type ScaleLayout,
  TENSOR_TYPES,
  tensorBytes,
  type TensorType,
  type TensorTypeName,
  type TernaryTypeName,
} from "./formats/tensor-types.ts";
export {
  type Architecture,
  ARCHITECTURES,
  type ArchName,
  FILE_ORDER,
  type FileFormat,
  GGUF_ARCHITECTURES,
  type LayerRole,
  layerRoles,
  LINEAR_ROLES,
  NORM_ROLES,
  roleShape,
  TENSOR_NAMES,
  type TensorNames,
} from "./formats/architectures.ts";
export { asPtr, NULL_PTR, offset, type Ptr } from "./runtime/ptr.ts";
export type { Arena, MovableBlock } from "./runtime/arena.ts";
export type { ThreadPool } from "./runtime/threads.ts";
export type { KVBits, KVCache, KVPrecision } from "./model/kv-cache.ts";
// Types of the main entry that the API above refers to (the same types, for reference here).
export type { LoadOptions } from "./model/load.ts";
export type { Activation, ModelConfig } from "./formats/config.ts";
export type { Tokenizer } from "./text/tokenizer/llama2c.ts";
export type { TokenizerOption } from "./text/tokenizer/resolve.ts";
export type { ByteSource, Progress, RandomAccessFile, ReadOptions } from "./runtime/files.ts";
export type { KernelOptions, SimdLevel } from "./runtime/kernels.ts";
