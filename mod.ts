/**
 * bitnet-wasm: 1-bit / ternary LLM inference in pure WebAssembly SIMD.
 *
 * ```ts
 * import { loadBitNet } from "jsr:@bitnet/wasm";
 * const model = await loadBitNet("bitllama-3M.bin", { tokenizer: "tok512.bin" });
 * for await (const { text } of model.generate("Once upon a time", { maxTokens: 64 })) console.log(text);
 * ```
 * @module
 */
export { loadBitNet, readCheckpoint, type LoadOptions } from "./model/load.ts";
export { BitNetModel } from "./model/model.ts";
export type { ModelConfig } from "./formats/config.ts";
export type { Checkpoint, LayerTensors, LinearTensor, Span } from "./formats/checkpoint.ts";
export type { FinishReason, GenerateOptions, GeneratedToken, GenerationResult } from "./text/generate.ts";
export { Session, type SessionOptions } from "./model/session.ts";
export { Sampler, Xorshift64Star, argmax, type SamplingOptions } from "./text/sampler.ts";
export { BOS, EOS, Llama2cTokenizer, type Tokenizer } from "./text/tokenizer/llama2c.ts";
export { BpeTokenizer, type BpeVocabulary } from "./text/tokenizer/bpe.ts";
export { type ResolvedTokenizer, resolveTokenizer, TOKENIZER_FILES, tokenizerFromBytes, type TokenizerOption } from "./text/tokenizer/resolve.ts";
export { renderChat, type ChatMessage } from "./text/chat.ts";
export { BitNetError, FormatError, NonFiniteError, OptionError, ShapeError } from "./core/errors.ts";
export { evaluationTokens, DOCUMENT_SEPARATOR, type PerplexityOptions, type PerplexityResult } from "./model/perplexity.ts";
export { runSweep, splitVariants, sweepChart, type SweepOptions, type SweepResult, sweepTable } from "./eval/sweep.ts";
export { Kernels, loadKernels, compileKernels, kernelUrl, resolveSimdLevel, type KernelExports, type KernelOptions, type SimdLevel } from "./runtime/kernels.ts";
export { hasRelaxedSimd, relaxedSimdPays } from "./runtime/features.ts";
export { type ActivationSpec, ActivationQuantizer, paddedCols, type Int8Input } from "./quant/activations.ts";
export { type ActivationPlan, parseVariant, PRESETS, SITES, type Site, type VariantPlan, WEIGHT_TERNARIZERS, type WeightTernarizer } from "./quant/variants.ts";
export { BitLinear, type BitWeights, type GroupScales } from "./quant/bitlinear.ts";
export { F32Linear, type Linear, type PreparedInput } from "./quant/linear.ts";
export type { ByteSource, Progress, ReadOptions } from "./runtime/files.ts";
export { checkpointToGguf, checkpointToHf, GGUF_TARGETS, type GgufTarget, hfTokenizerFiles } from "./tools/convert.ts";
export { readHfBitNet } from "./formats/huggingface.ts";
export { readGguf, GgmlType, GgufType, type GgufEntry, type GgufFile, type GgufTensorInfo } from "./formats/gguf.ts";
export { writeGguf, type GgufTensorData } from "./formats/gguf-writer.ts";
export { readSafetensors, readSafetensorsIndex, writeSafetensors, type SafetensorsFile, type SafetensorsTensor } from "./formats/safetensors.ts";
export { BITNET_2B4T_SHAPE, synthesizeBitNet, type SynthShape, type SynthWeights } from "./tools/synth.ts";
export { Transformer } from "./model/transformer.ts";
// Types the API above refers to.
export type { Activation } from "./formats/config.ts";
export type { TransformerOptions } from "./model/transformer.ts";
export type { KVBits, KVCache } from "./model/kv-cache.ts";
export type { RandomAccessFile } from "./runtime/files.ts";
export type { F32Input } from "./quant/linear.ts";
export type { GgufVocabularySource, HfTarget } from "./tools/convert.ts";
export type { GgufValue } from "./formats/gguf.ts";
export type { SafetensorsDtype } from "./formats/safetensors.ts";
export type { LinearName, SynthModel, SynthOptions } from "./tools/synth.ts";
