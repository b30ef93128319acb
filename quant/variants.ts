// Quantization variants by name: how the weights are ternarized and where each BitLinear
// input is quantized how. The sites are the inputs of q/k/v (shared), o, gate/up (shared)
// and down. Presets follow the papers; a full spec names each part:
// "weights=median:group:128,qkv=int4,o=topk:0.5+int8,gateup=int4,down=int8,kv=4:bos8" ("all=" sets
// every site; "form=native" takes a preset as trained with it rather than post-training; a preset name may come
// first, e.g. "v2-a4:256,kv=3"; later entries override earlier ones).
import { OptionError } from "../core/errors.ts";
import { own } from "../core/options.ts";
import { type ActivationSpec, INT8_ABSMAX } from "./activations.ts";

/** Where activation variants apply: the inputs of q/k/v, o, gate/up and down. */
export const SITES = ["qkv", "o", "gateUp", "down"] as const;
/** One of SITES. */
export type Site = (typeof SITES)[number];
/** The activation spec of every site. */
export type ActivationPlan = Record<Site, ActivationSpec>;
/** Weight quantizers: ternary with gamma = mean|W| (BitNet b1.58) or median|W| (BitNet b1.58
 *  Reloaded), or 1-bit Sign(W - mean W) with beta = mean|W| (BitNet, FBI-LLM). */
export const WEIGHT_TERNARIZERS = ["absmean", "median", "sign"] as const; // in the kernels' order (quantizeGroups)
/** One of WEIGHT_TERNARIZERS. */
export type WeightTernarizer = (typeof WEIGHT_TERNARIZERS)[number];
/** Weight quantizers: the ternarizers, and FBI-LLM's per-column scaled and shifted sign(W) ("fbi", f32 arithmetic, full-precision activations). */
export type WeightQuantizer = WeightTernarizer | "fbi";
/** A variant: activations per site and, when named, the weight ternarizer. fp32 models are
 *  ternarized with it (absmean when unnamed); ternary checkpoints keep their stored weights
 *  and scales unless it is named, then it applies to the dequantized weights. */
export type VariantPlan = ActivationPlan & {
  weights?: WeightQuantizer;
  /** Scale granularity of the weights: one per tensor (default), one per output channel, or
   *  one per output channel and group of this many input columns. */
  weightScales?: "tensor" | "channel" | number;
  /** Bits of the KV cache's codes (f32 when unnamed). */
  kvBits?: 8 | 4 | 3;
  /** H-BitLinear's weights: rotated to match (W H^T ternarized again: post-training, the default) or as stored (trained in the rotated basis: BitNet v2's form=native). */
  rotate?: "weights" | "activations";
  /** ReLU^2 FFNs: the up projection computes only the rows whose gate is non-zero and the down projection reads only the non-zero columns of its input (BitNet a4.8). */
  sparseFfn?: boolean;
  /** With sparseFfn: also zero the smallest gates so that at least this fraction of them is 0 (a trained model's sparsity, simulated). */
  gateSparsity?: number;
  /** Presets named with a native form but no form=: they run post-training, which the model says in a notice. */
  ptqByDefault?: string[];
  /** DeltaLLM's hybrid attention (delta=T[:G[:D[:M]]]). */
  delta?: DeltaAttention;
  /** Bits of position 0's codes (the [BOS] token's heads) where more than kvBits: BitNet v2 keeps them at 8, a4.8 at 4 in a 3-bit cache. */
  kvBosBits?: 8 | 4;
};

/**
 * DeltaLLM (arXiv 2507.19608): keys as deltas against a running reference, entries of
 * |delta| <= threshold dropped; exact scores against position 0 and a local window, the
 * delta approximation outside it.
 */
export interface DeltaAttention {
  /** The absolute threshold theta on each key entry's change (the paper takes 1.0 to 1.4 for BitNet). */
  threshold: number;
  /** Prefill window: min(floor(gamma * n), maxWindow) for a prompt of n tokens (the paper: 0.05 to 0.1). */
  gamma: number;
  /** Decoding window W_d (the paper: 4). */
  decodeWindow: number;
  /** The prefill window's cap W_max (the paper does not give its value; default none). */
  maxWindow: number;
}

/** DeltaLLM's settings of the paper's end-to-end BitNet run (theta 1.0, gamma 0.1, W_d 4), no cap on the prefill window. */
export const DELTA_DEFAULTS: DeltaAttention = { threshold: 1, gamma: 0.1, decodeWindow: 4, maxWindow: Infinity };

function parseDelta(spec: string): DeltaAttention {
  const parts = spec.split(":").map(Number), [threshold, gamma = DELTA_DEFAULTS.gamma, decodeWindow = DELTA_DEFAULTS.decodeWindow, maxWindow = DELTA_DEFAULTS.maxWindow] = parts;
  const ok = parts.length <= 4 && threshold >= 0 && gamma >= 0 && gamma <= 1 && Number.isInteger(decodeWindow) && decodeWindow >= 0 &&
    (maxWindow === Infinity || (Number.isInteger(maxWindow) && maxWindow >= 0));
  if (!ok || spec === "") {
    throw new OptionError(
      "variant",
      `delta=${spec}: expected THRESHOLD[:GAMMA[:DECODE_WINDOW[:MAX_WINDOW]]], threshold >= 0, gamma in [0, 1], windows whole numbers (e.g. delta=1.0:0.1:4)`,
    );
  }
  return { threshold, gamma, decodeWindow, maxWindow };
}

const everywhere = (spec: ActivationSpec): VariantPlan => ({ qkv: spec, o: spec, gateUp: spec, down: spec });
const INT4: ActivationSpec = { format: "int4", sparsity: 0 };
const RELOADED_INPUT: ActivationSpec = { format: "int8", sparsity: 0, levels: 128 };

/** BitNet v2's H-BitLinear on the o and down inputs, with `spec` everywhere; B: the transform's block (default the largest power of two dividing the width). */
function v2(spec: ActivationSpec, block: number | undefined, name: string): VariantPlan {
  if (block !== undefined && !(Number.isInteger(block) && block >= 1 && (block & (block - 1)) === 0)) {
    throw new OptionError("variant", `${name}:B: Hadamard block ${block} must be a power of two`);
  }
  const h: ActivationSpec = { ...spec, hadamard: block ?? "auto" };
  return { ...everywhere(spec), o: h, down: h, kvBosBits: 8 };
}

/** A preset: the paper's own words, what this library does with them, and the plan (arg: the preset's parameter, if it takes one). */
export interface Preset {
  /** The paper's definition, quoted. */
  paper: string;
  /** How the plan follows it, and where it cannot. */
  ours: string;
  /** What the parameter after "name:" is, for presets that take one. */
  parameter?: string;
  /** The plan for every site, given the parameter if any: the post-training form. */
  plan: (arg?: number) => VariantPlan;
  /** What "form=native" changes for a checkpoint trained with the variant, where that differs from the post-training form. */
  native?: (plan: VariantPlan) => Partial<VariantPlan>;
}

/** Named recipes, each with the paper's wording of what it does beside ours. */
export const PRESETS: Record<string, Preset> = {
  "b1.58": {
    paper: 'BitNet b1.58 (arXiv 2402.17764): "the activations are all scaled to [-Qb, Qb] per token"; ' +
      '"we adopt absmean quantization function" for the weights.',
    ours: "Every BitLinear input in 8-bit absmax per token; a ternary checkpoint's weights and scales as stored.",
    plan: () => everywhere(INT8_ABSMAX),
  },
  bitnet: {
    paper: 'BitNet (arXiv 2310.11453): "W~ = Sign(W - alpha)", "Sign(Wij) = +1 if Wij > 0, -1 if Wij <= 0", ' +
      'alpha = mean(W), beta = ||W||_1 / nm "used after binarization"; activations by absmax to 8 bits, per token at inference.',
    ours: "1-bit weights Sign(W - mean W) with beta = mean|W| per tensor (a weight exactly at the mean gets -1), " +
      "8-bit absmax activations everywhere. Left out: its [0, Qb] range for inputs before non-linear functions " +
      "(b1.58 dropped it too) and its SubLN, which a checkpoint trained without it does not have.",
    plan: () => ({ ...everywhere(INT8_ABSMAX), weights: "sign" }),
  },
  fbi: {
    paper: "FBI-LLM (arXiv 2407.07093), fully binarized: every linear layer but the LM head holds sign(W) with a learnable " +
      "scale alpha and shift beta per column, activations in full precision; its reference code (LiqunMa/FBI-LLM, " +
      "BinaryLinearWscales) starts them at beta_j = mean of column j and alpha_j = mean |W[:, j] - beta_j|.",
    ours: "W^ = alpha_j sign(W) + beta_j per input column j from the master weights (dequantized codes for a ternary " +
      "checkpoint), sign(0) = 0 as the reference's torch.sign; computed in f32 with f32 activations (the f32 GEMV: a " +
      "1-bit kernel for it is not written), so it shows FBI's accuracy, not its size or speed.",
    plan: () => ({ ...everywhere(INT8_ABSMAX), weights: "fbi" }),
  },
  "a4.8": {
    paper: 'BitNet a4.8 (arXiv 2411.04965): "4-bit activations for inputs to the attention and feed-forward network layers, ' +
      'while sparsifying intermediate states followed with 8-bit quantization"; "we set topK as 50% for the output projection"; ' +
      '"For 3-bit KV quantization, we retain the heads of the bos token at 4-bit".',
    ours: "int4 absmean for the q/k/v and gate/up inputs, top-K 50% then int8 for the o input, int8 for the down input " +
      "(its sparsity comes from ReLU^2), a 3-bit KV cache with position 0's heads at 4 bits (kv=3:bos4; kv=f32 to leave it out). " +
      'Its FFN saving ("performing the up projection only on the non-zero channels of the gates") is ffn=sparse, exact ' +
      "but not faster in WASM (docs/benchmarks.md), so the preset leaves the FFN dense.",
    plan: () => ({ qkv: INT4, o: { format: "int8", sparsity: 0.5 }, gateUp: INT4, down: INT8_ABSMAX, kvBits: 3, kvBosBits: 4 }),
  },
  "v2-a8": {
    paper: 'BitNet v2 (arXiv 2504.18415): "we use H-BitLinear for Wo in attention and Wdown in FFN layers"; ' +
      '"we apply the Hadamard transformation only to the activations in H-BitLinear"; ' +
      '"We retain the KV heads of [BOS] token as 8-bit precision".',
    ours: "8-bit absmax everywhere, the o and down inputs rotated by a block Walsh-Hadamard transform of B values " +
      "(the paper rotates the whole width, a power of two; 2B4T's 2560 and 6912 are not, so B defaults to the largest " +
      "power of two dividing the width: 512 and 256). A checkpoint trained as v2 keeps its weights (form=native, " +
      "the paper's form); any other gets W H^T ternarized again (post-training, the default). " +
      "With a quantized KV cache (kv=4, kv=3), position 0's heads stay 8-bit.",
    parameter: "B, the Hadamard block size",
    plan: (block) => v2(INT8_ABSMAX, block, "v2-a8"),
    native: () => ({ rotate: "activations" }),
  },
  "v2-a4": {
    paper: 'BitNet v2 (arXiv 2504.18415): "continue-trained with INT4 activations for all linear layers except input/output embedding"; ' +
      "H-BitLinear on Wo and Wdown as in v2-a8.",
    ours: "As v2-a8 with 4-bit absmean activations everywhere.",
    parameter: "B, the Hadamard block size",
    plan: (block) => v2(INT4, block, "v2-a4"),
    native: () => ({ rotate: "activations" }),
  },
  reloaded: {
    paper: 'BitNet b1.58 Reloaded (arXiv 2407.09527): "rely on the median rather than the mean in the quantization process"; ' +
      "its reference code (schneiderkamplab/bitlinear) normalises each BitLinear input with a LayerNorm without affine " +
      "parameters, scales activations by 128 / absmax clipped to [-128, 127] per token, and weights by 1 / median|W| per tensor.",
    ours: "int8 at 128 / absmax, gamma = median|W| per tensor; where more than half of the weights are exactly 0 (common " +
      "in an already-ternary matrix) gamma is the median of the non-zero |W|, where the reference clamps it to 1e-5 and " +
      "the layer goes silent. form=native adds the reference's LayerNorm (eps 1e-5) in place of the architecture's " +
      "BitLinear norm, for checkpoints trained with it: it changes the scale of every BitLinear output of one that was not.",
    plan: () => ({ ...everywhere(RELOADED_INPUT), weights: "median" }),
    native: (plan) => Object.fromEntries(SITES.map((site) => [site, { ...plan[site], norm: "layer" }])),
  },
  "q-sparse": {
    paper: 'Q-Sparse (arXiv 2407.10969): "Y = (Q(X) (.) M) W^T", "M = Top_k(|X|)", for "each linear projection" ' +
      "(attention and feed-forward).",
    ours: "top-K per token on every BitLinear input (the fraction S of the smallest |x| zeroed), then 8-bit absmax.",
    parameter: "S, the fraction of each input zeroed",
    plan: (s = 0.5) => everywhere({ format: "int8", sparsity: checkSparsity(s, "q-sparse:S") }),
  },
};

const NATIVE_PRESETS = Object.entries(PRESETS).filter(([, p]) => p.native).map(([name]) => name).join(", ");

function checkSparsity(s: number, where: string): number {
  if (!Number.isFinite(s) || s < 0 || s >= 1) throw new OptionError("variant", `${where}: S must be in [0, 1), got ${s}`);
  return s;
}

/** Group sizes the kernels take: whole 32-column steps of their inner loops. */
export const WEIGHT_GROUP_MULTIPLE = 32;

function weightScales(spec: string, granularity: string, size: string | undefined): VariantPlan["weightScales"] {
  if ((granularity === "tensor" || granularity === "channel") && size === undefined) return granularity;
  const g = Number(size);
  if (granularity !== "group" || !Number.isInteger(g) || g <= 0 || g % WEIGHT_GROUP_MULTIPLE !== 0) {
    throw new OptionError(
      "variant",
      `weights="${spec}": scales go per tensor, per channel or per group of G columns (:group:G, G a positive multiple of ${WEIGHT_GROUP_MULTIPLE})`,
    );
  }
  return g;
}

/**
 * One site's spec: [ln+][h[:B]+][topk:S[:M][:l2]+](int8[:128]|int4), e.g. "int4", "topk:0.5+int8",
 * "h:256+int8", "topk:0.5:32+int8" (Block Q-Sparse 16:32), "ln+int8:128" (b1.58 Reloaded's
 * LayerNorm and 128 / absmax).
 */
function parseSpec(text: string): ActivationSpec {
  const m = /^(ln\+)?(?:(h)(?::(\d+))?\+)?(?:topk:([^+:]+)(?::(\d+))?(:l2)?\+)?(int8(:128)?|int4)$/.exec(text);
  if (!m) throw new OptionError("variant", `"${text}" is not an activation spec ([ln+][h[:B]+][topk:S[:M][:l2]+]int8[:128] or int4)`);
  const [, ln, h, block, s, sparsityBlock, l2, format, levels128] = m;
  const spec: ActivationSpec = { format: format.startsWith("int8") ? "int8" : "int4", sparsity: s === undefined ? 0 : checkSparsity(Number(s), `topk:${s}`) };
  if (h) spec.hadamard = block === undefined ? "auto" : Number(block);
  if (sparsityBlock !== undefined) {
    const size = Number(sparsityBlock);
    if (size < 2) throw new OptionError("variant", `topk:${s}:${sparsityBlock}: a top-K block holds at least 2 values`);
    spec.sparsityBlock = size;
  }
  if (l2) spec.rescaleL2 = true;
  if (levels128) spec.levels = 128;
  if (ln) spec.norm = "layer";
  return spec;
}

/** A preset name ("b1.58", "a4.8", "q-sparse:0.5") or a full spec, as a plan for every site. */
export function parseVariant(variant: string): VariantPlan {
  const [name, arg] = variant.split(":");
  const preset = own(PRESETS, name);
  if (preset && !variant.includes("=")) {
    if (arg !== undefined && !preset.parameter) throw new OptionError("variant", `preset ${name} takes no parameter`);
    const plan = preset.plan(arg === undefined ? undefined : Number(arg));
    return preset.native ? { ...plan, ptqByDefault: [name] } : plan;
  }
  if (!variant.includes("=")) {
    throw new OptionError("variant", `unknown variant "${variant}" (presets: ${Object.keys(PRESETS).join(", ")}; or a spec like qkv=int4,o=h+topk:0.5+int8,gateup=int4,down=int8)`);
  }
  const plan = everywhere(INT8_ABSMAX), named: Preset[] = [];
  let formGiven = false;
  for (const part of variant.split(",")) {
    const [site, spec] = part.split("=");
    const key = site === "gateup" ? "gateUp" : site;
    if (!part.includes("=") && own(PRESETS, part.split(":")[0])) {
      Object.assign(plan, parseVariant(part)); // a preset to start from
      named.push(PRESETS[part.split(":")[0]]);
    } else if (key === "kv") {
      const [bits, bos] = (spec ?? "").split(":"), bosBits = Number(bos?.slice(3));
      if (!["f32", "8", "4", "3"].includes(bits) || (bos !== undefined && (!/^bos[843]$/.test(bos) || bosBits < Number(bits)))) {
        throw new OptionError("variant", `kv=${spec}: the KV cache takes f32 or 8, 4 or 3 bits, optionally :bosN (N = 8, 4 or 3 bits for position 0, at least the others')`);
      }
      if (bits === "f32") delete plan.kvBits;
      else plan.kvBits = Number(bits) as 8 | 4 | 3;
      if (bos === undefined) continue; // the preset's rule for position 0 stays
      if (bosBits > Number(bits)) plan.kvBosBits = bosBits as 8 | 4;
      else delete plan.kvBosBits;
    } else if (key === "delta") plan.delta = parseDelta(spec ?? "");
    else if (key === "ffn") {
      const [mode, s] = (spec ?? "").split(":");
      if ((mode !== "dense" && mode !== "sparse") || (s !== undefined && mode === "dense")) {
        throw new OptionError("variant", `ffn=${spec}: expected dense or sparse[:S] (the up projection on the non-zero gates only, S the least fraction of gates zeroed)`);
      }
      delete plan.gateSparsity;
      if (mode === "dense") delete plan.sparseFfn;
      else plan.sparseFfn = true;
      if (s !== undefined) plan.gateSparsity = checkSparsity(Number(s), `ffn=sparse:${s}`);
    } else if (key === "form") {
      if (spec !== "ptq" && spec !== "native") {
        throw new OptionError("variant", `form=${spec}: expected ptq (post-training, the default) or native (a checkpoint trained with the variant)`);
      }
      formGiven = true;
      if (spec === "ptq") continue;
      const natives = named.filter((p) => p.native);
      if (natives.length === 0) throw new OptionError("variant", `form=native: no preset named before it has a native form apart from its post-training one (${NATIVE_PRESETS})`);
      for (const p of natives) Object.assign(plan, p.native!(plan));
    } else if (key === "weights") {
      const [method, granularity = "tensor", size] = (spec ?? "").split(":");
      if (method === "fbi") {
        if (spec !== "fbi") throw new OptionError("variant", `weights="${spec}": fbi has its own scales, one alpha and beta per input column (no :tensor, :channel or :group)`);
        plan.weights = "fbi";
        delete plan.weightScales;
        continue;
      }
      if (!(WEIGHT_TERNARIZERS as readonly string[]).includes(method)) {
        throw new OptionError("variant", `weights="${spec}": expected ${WEIGHT_TERNARIZERS.join(" or ")}, optionally :tensor, :channel or :group:G, or fbi`);
      }
      plan.weights = method as WeightTernarizer;
      plan.weightScales = weightScales(spec, granularity, size);
    } else if (key === "all") Object.assign(plan, everywhere(parseSpec(spec)));
    else if ((SITES as readonly string[]).includes(key)) plan[key as Site] = parseSpec(spec ?? "");
    else throw new OptionError("variant", `unknown site "${site}" (weights, qkv, o, gateup, down, all, kv, ffn, delta, form)`);
  }
  if (formGiven) delete plan.ptqByDefault;
  return plan;
}
