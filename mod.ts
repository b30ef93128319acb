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
export type { ModelConfig } from "./model/config.ts";
export type { Checkpoint, LayerTensors, LinearTensor, Span } from "./model/checkpoint.ts";
export type { FinishReason, GenerateOptions, GeneratedToken, GenerationResult } from "./model/generate.ts";
export { Session, type SessionOptions } from "./model/session.ts";
export { Sampler, Xorshift64Star, argmax, type SamplingOptions } from "./model/sampler.ts";
export { BOS, EOS, Llama2cTokenizer, type Tokenizer } from "./model/tokenizer/llama2c.ts";
export { BpeTokenizer, type BpeVocabulary } from "./model/tokenizer/bpe.ts";
export { type ResolvedTokenizer, resolveTokenizer, TOKENIZER_FILES, tokenizerFromBytes, type TokenizerOption } from "./model/tokenizer/resolve.ts";
export { renderChat, type ChatMessage } from "./model/chat.ts";
export { BitNetError, FormatError, NonFiniteError, OptionError, ShapeError } from "./model/errors.ts";
export { evaluationTokens, DOCUMENT_SEPARATOR, type PerplexityOptions, type PerplexityResult } from "./eval/perplexity.ts";
export { runSweep, splitVariants, sweepChart, type SweepOptions, type SweepResult, sweepTable } from "./eval/sweep.ts";
export { Kernels, loadKernels, compileKernels, kernelUrl, resolveSimdLevel, type KernelExports, type KernelOptions, type SimdLevel } from "./runtime/kernels.ts";
export { hasRelaxedSimd, relaxedSimdPays } from "./runtime/features.ts";
export { type ActivationSpec, ActivationQuantizer, paddedCols, type Int8Input } from "./quant/activations.ts";
export { type ActivationPlan, parseVariant, PRESETS, SITES, type Site, type VariantPlan, WEIGHT_TERNARIZERS, type WeightTernarizer } from "./quant/variants.ts";
export { BitLinear, type BitWeights, type GroupScales } from "./quant/bitlinear.ts";
export { F32Linear, type Linear, type PreparedInput } from "./quant/linear.ts";
export type { ByteSource, Progress, ReadOptions } from "./runtime/files.ts";
export { checkpointToGguf, checkpointToHf, GGUF_TARGETS, type GgufTarget, hfTokenizerFiles } from "./model/convert.ts";
export { readHfBitNet } from "./model/formats/huggingface.ts";
export { readGguf, GgmlType, GgufType, type GgufEntry, type GgufFile, type GgufTensorInfo } from "./model/formats/gguf.ts";
export { writeGguf, type GgufTensorData } from "./model/formats/gguf-writer.ts";
export { readSafetensors, readSafetensorsIndex, writeSafetensors, type SafetensorsFile, type SafetensorsTensor } from "./model/formats/safetensors.ts";
export { BITNET_2B4T_SHAPE, synthesizeBitNet, type SynthShape, type SynthWeights } from "./model/synth.ts";
export { Transformer } from "./model/transformer.ts";
// Types the API above refers to.
export type { Activation } from "./model/config.ts";
export type { TransformerOptions } from "./model/transformer.ts";
export type { KVBits, KVCache } from "./model/kv-cache.ts";
export type { RandomAccessFile } from "./runtime/files.ts";
export type { F32Input } from "./quant/linear.ts";
export type { GgufVocabularySource, HfTarget } from "./model/convert.ts";
export type { GgufValue } from "./model/formats/gguf.ts";
export type { SafetensorsDtype } from "./model/formats/safetensors.ts";
export type { LinearName, SynthModel, SynthOptions } from "./model/synth.ts";
