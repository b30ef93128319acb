// Entry point of the kernel module: every export here is callable from the host.
export { heapBase } from "./memory";
export { gemvF32, gemmF32, gemmF32Scalar, addInPlace } from "./float";
export { ternaryPackedBytes, ternaryMaxCols, packTernary, ternaryAt, ternaryGemv, ternaryGemm, ternaryGemmScalar, decodeSignMagnitude2 } from "./ternary";
export { quantizeAbsmaxI8, quantizeAbsmaxI8Scalar } from "./quantize";
export { rmsNorm, rmsNormScalar, l2Norm, l2NormScalar } from "./norm";
export { rope } from "./rope";
export { softmax, attention, attentionScalar } from "./attention";
export { swiglu, relu2glu } from "./activation";
export { negLogLikelihood } from "./loss";
export { streamRead } from "./bandwidth";
