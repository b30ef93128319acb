// Second entry of the test builds (asconfig.test.json: build/kernels-test*.wasm, never
// shipped): the scalar twins of the SIMD kernels, which the tests compare them with bit for
// bit, and the other test-only exports. The production kernels come from index.ts, the
// first entry. Each twin lives beside its kernel and runs the same Impl with simd = false.
export { gemmF32Scalar } from "./float";
export { ternaryAt, ternaryGemmGroupedScalar, ternaryGemmRowGroupsScalar, ternaryGemmScalar } from "./ternary";
export { signGemmGroupedScalar, signGemmScalar } from "./binary";
export { gemmHalfScalar, gemmI8Scalar } from "./head";
export { quantizeAbsmaxI8Scalar, quantizeAbsmeanI4Scalar } from "./quantize";
export { ternaryGemvSparseScalar } from "./sparse";
export { hadamardBlocksScalar } from "./hadamard";
export { l2NormScalar, rmsNormScalar } from "./norm";
export { attentionCodesScalar, attentionScalar } from "./attention";
export { attentionDeltaScalar } from "./delta-attention";
