// Entry point of the kernel module: every export here is callable from the host.
export { heapBase, setScratch, scratchBytes } from "./memory";
export { gemvF32, gemmF32, gemmF32Scalar, addInPlace } from "./float";
export { ternaryPackedBytes, ternaryMaxCols, packTernary, ternaryAt, ternaryGemm, ternaryGemmScalar, ternaryGemmGrouped, ternaryGemmGroupedScalar, sumGroups } from "./ternary";
export { signPackedBytes, packSign, binarizeSign, signGemm, signGemmScalar, signGemmGrouped, signGemmGroupedScalar } from "./binary";
// Stored formats of ternary matrices: one decode / encode pair each.
export { decodeSignMagnitude2, encodeSignMagnitude2 } from "./formats/bitllama";
export { i2sBytes, decodeI2S, encodeI2S } from "./formats/i2s";
export { decodeTQ1, encodeTQ1 } from "./formats/tq1";
export { decodeTQ2, encodeTQ2 } from "./formats/tq2";
export { decodeHfPacked, encodeHfPacked } from "./formats/hf-packed";
export { f16ToF32, f32ToF16, convertF16ToF32, convertBF16ToF32 } from "./formats/fp16";
export { prepareHalfInput, gemmHalf, gemmHalfScalar, gemmI8, gemmI8Scalar, countNonFiniteHalf } from "./head";
export { quantizeAbsmaxI8, quantizeAbsmaxI8Scalar, quantizeAbsmeanI4, quantizeAbsmeanI4Scalar } from "./quantize";
export { sparsifyTopK } from "./sparsify";
export { ternaryColumnsBytes, packTernaryColumns, ternaryGemvSparse, ternaryGemvSparseScalar, nonZeroColumns } from "./sparse";
export { hadamardBlocks, hadamardBlocksScalar } from "./hadamard";
export { ternarizeAbsmean, ternarizeMedian, quantizeGroups, int8ToF32, int8ToBF16, countNonZeroI8 } from "./ternarize";
export { rmsNorm, rmsNormScalar, l2Norm, l2NormScalar } from "./norm";
export { rope } from "./rope";
export { softmax, attention, attentionScalar } from "./attention";
export { quantizeKV, attentionCodes, attentionCodesScalar } from "./kv-quant";
export { swiglu, relu2glu } from "./activation";
export { negLogLikelihood } from "./loss";
export { streamRead } from "./bandwidth";
