// Entry point of the kernel module: every export here is callable from the host (the
// production builds). The scalar twins the tests compare the SIMD kernels with are in
// testing.ts, the second entry of the test builds (asconfig.test.json) only.
export { heapBase, scratchBytes, setScratch } from "./memory";
export { addInPlace, gemmF32, gemvF32 } from "./float";
export { nonZeroRowGroups, packTernary, sumGroups, ternaryGemm, ternaryGemmGrouped, ternaryGemmRowGroups, ternaryMaxCols, ternaryPackedBytes } from "./ternary";
export { binarizeFBI, binarizeSign, packSign, signGemm, signGemmGrouped, signPackedBytes } from "./binary";
// Stored formats of ternary matrices: one decode / encode pair each, all of one shape:
// decodeX(src, count, codes, scales) and encodeX(codes, count, scales, dst), returning how
// many codes or values were invalid (formats/tensor-types.ts says what each writes to `scales`).
export { decodeSM2, decodeSM2Lsb, encodeSM2, encodeSM2Lsb } from "./formats/bitllama";
export { decodeI2S, encodeI2S } from "./formats/i2s";
export { decodeTQ1, encodeTQ1 } from "./formats/tq1";
export { decodeTQ2, encodeTQ2 } from "./formats/tq2";
export { decodeHfPacked, encodeHfPacked } from "./formats/hf-packed";
export { convertBF16ToF32, convertF16ToF32, f16ToF32, f32ToF16 } from "./formats/fp16";
export { countNonFiniteF32, countNonFiniteHalf, gemmHalf, gemmI8, prepareHalfInput } from "./head";
export { quantizeAbsmaxI8, quantizeAbsmeanI4 } from "./quantize";
export { rescaleL2, sparsifyTopK } from "./sparsify";
export { nonZeroColumns, packTernaryColumns, ternaryColumnsBytes, ternaryGemvSparse } from "./sparse";
export { hadamardBlocks } from "./hadamard";
export { countNonZeroI8, int8ToBF16, int8ToF32, quantizeGroups, ternarizeAbsmean, ternarizeMedian } from "./ternarize";
export { l2Norm, layerNorm, rmsNorm } from "./norm";
export { rope } from "./rope";
export { attention, attentionCodes, softmax } from "./attention";
export { kvHeadBytes, quantizeKV } from "./kv-quant";
export { attentionDelta, deltaEncodeKeys, deltaRecordBytes, deltaReference } from "./delta-attention";
export { relu, relu2glu, swiglu } from "./activation";
export { negLogLikelihood } from "./loss";
export { streamRead } from "./bandwidth";
