// Quantization variants by name: how the weights are ternarized and where each BitLinear
// input is quantized how. The sites are the inputs of q/k/v (shared), o, gate/up (shared)
// and down. Presets follow the papers; a full spec names each part:
// "weights=median:group:128,qkv=int4,o=topk:0.5+int8,gateup=int4,down=int8,kv=4" ("all=" sets every
// site; a preset name may come first, e.g. "a4.8,kv=3"; later entries override earlier ones).
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
/** A variant: activations per site and, when named, the weight ternarizer. fp32 models are
 *  ternarized with it (absmean when unnamed); ternary checkpoints keep their stored weights
 *  and scales unless it is named, then it applies to the dequantized weights. */
export type VariantPlan = ActivationPlan & {
  weights?: WeightTernarizer;
  /** Scale granularity of the weights: one per tensor (default), one per output channel, or
   *  one per output channel and group of this many input columns. */
  weightScales?: "tensor" | "channel" | number;
  kvBits?: 8 | 4 | 3;
};

const everywhere = (spec: ActivationSpec): VariantPlan => ({ qkv: spec, o: spec, gateUp: spec, down: spec });
const INT4: ActivationSpec = { format: "int4", sparsity: 0 };

/** Named recipes, each with the paper's wording of what it does. */
export const PRESETS: Record<string, { paper: string; plan: (arg?: number) => VariantPlan }> = {
  "b1.58": {
    paper: "BitNet b1.58: every BitLinear input quantized to 8 bits per token with absmax.",
    plan: () => everywhere(INT8_ABSMAX),
  },
  "a4.8": {
    paper: "BitNet a4.8: 4-bit absmean activations for the inputs to the attention and FFN " +
      "(q/k/v, gate/up); the output projection's input sparsified with top-K 50% then 8-bit; " +
      "the down projection's input 8-bit.",
    plan: () => ({ qkv: INT4, o: { format: "int8", sparsity: 0.5 }, gateUp: INT4, down: INT8_ABSMAX }),
  },
  "v2-a8": {
    paper: "BitNet v2 (8-bit activations): H-BitLinear on the inputs of the attention output and " +
      "FFN down projections (an online Hadamard transform, weights rotated to match); 8-bit absmax everywhere.",
    plan: () => ({ ...everywhere(INT8_ABSMAX), o: { ...INT8_ABSMAX, hadamard: "auto" }, down: { ...INT8_ABSMAX, hadamard: "auto" } }),
  },
  "v2-a4": {
    paper: "BitNet v2 (4-bit activations): H-BitLinear on the o and down inputs; 4-bit activations everywhere.",
    plan: () => ({ ...everywhere(INT4), o: { ...INT4, hadamard: "auto" }, down: { ...INT4, hadamard: "auto" } }),
  },
  reloaded: {
    paper: "BitNet b1.58 Reloaded: weights ternarized with the median of |W| as the scale instead of the mean; 8-bit absmax activations.",
    plan: () => ({ ...everywhere(INT8_ABSMAX), weights: "median" }),
  },
  "q-sparse": {
    paper: "Q-Sparse: top-K sparsification (the fraction S of smallest |x| zeroed) of every BitLinear input, then 8-bit absmax.",
    plan: (s = 0.5) => everywhere({ format: "int8", sparsity: checkSparsity(s, "q-sparse:S") }),
  },
};

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

/** One site's spec: [h[:B]+][topk:S+](int8|int4), e.g. "int4", "topk:0.5+int8", "h+int4", "h:256+int8". */
function parseSpec(text: string): ActivationSpec {
  const m = /^(?:h(?::(\d+))?\+)?(?:topk:([^+]+)\+)?(int8|int4)$/.exec(text);
  if (!m) throw new OptionError("variant", `"${text}" is not an activation spec ([h[:B]+][topk:S+]int8 or int4)`);
  const spec: ActivationSpec = { format: m[3] as "int8" | "int4", sparsity: m[2] === undefined ? 0 : checkSparsity(Number(m[2]), `topk:${m[2]}`) };
  if (text.startsWith("h")) spec.hadamard = m[1] === undefined ? "auto" : Number(m[1]);
  return spec;
}

/** A preset name ("b1.58", "a4.8", "q-sparse:0.5") or a full spec, as a plan for every site. */
export function parseVariant(variant: string): VariantPlan {
  const [name, arg] = variant.split(":");
  const preset = own(PRESETS, name);
  if (preset && !variant.includes("=")) {
    if (arg !== undefined && name !== "q-sparse") throw new OptionError("variant", `preset ${name} takes no parameter`);
    return preset.plan(arg === undefined ? undefined : Number(arg));
  }
  if (!variant.includes("=")) {
    throw new OptionError("variant", `unknown variant "${variant}" (presets: ${Object.keys(PRESETS).join(", ")}; or a spec like qkv=int4,o=h+topk:0.5+int8,gateup=int4,down=int8)`);
  }
  const plan = everywhere(INT8_ABSMAX);
  for (const part of variant.split(",")) {
    const [site, spec] = part.split("=");
    const key = site === "gateup" ? "gateUp" : site;
    if (!part.includes("=") && own(PRESETS, part.split(":")[0])) Object.assign(plan, parseVariant(part)); // a preset to start from
    else if (key === "kv") {
      if (!["8", "4", "3"].includes(spec)) throw new OptionError("variant", `kv=${spec}: the KV cache takes 8, 4 or 3 bits`);
      plan.kvBits = Number(spec) as 8 | 4 | 3;
    } else if (key === "weights") {
      const [method, granularity = "tensor", size] = (spec ?? "").split(":");
      if (!(WEIGHT_TERNARIZERS as readonly string[]).includes(method)) {
        throw new OptionError("variant", `weights="${spec}": expected ${WEIGHT_TERNARIZERS.join(" or ")}, optionally :tensor, :channel or :group:G`);
      }
      plan.weights = method as WeightTernarizer;
      plan.weightScales = weightScales(spec, granularity, size);
    } else if (key === "all") Object.assign(plan, everywhere(parseSpec(spec)));
    else if ((SITES as readonly string[]).includes(key)) plan[key as Site] = parseSpec(spec ?? "");
    else throw new OptionError("variant", `unknown site "${site}" (weights, qkv, o, gateup, down, all)`);
  }
  return plan;
}
