/**
 * bitnet-wasm: 1-bit / ternary LLM inference in pure WebAssembly SIMD. The main entry, for
 * Node, Deno and Bun: the application API of `bitnet-wasm/web` (which it re-exports) with the
 * Node / Deno / Bun adapter installed, so file paths and folders work as sources (through
 * node:fs) and kernel threads start through node:worker_threads (Node, Deno) or Web Workers
 * (Bun). Browsers and Workers get the web entry instead (npm's "browser", "workerd" and
 * "worker" conditions; `jsr:@bitnet/wasm/web`). Kernels, quantization variants, sweeps, format
 * readers / writers and converters are in `bitnet-wasm/research` (`jsr:@bitnet/wasm/research`).
 *
 * ```ts
 * import { loadBitNet } from "jsr:@bitnet/wasm";
 * const model = await loadBitNet("bitllama-3M.bin", { tokenizer: "tok512.bin" });
 * for await (const { text } of model.generate("Once upon a time", { maxTokens: 64 })) console.log(text);
 * ```
 * @module
 */
import "./runtime/node.ts"; // installs node:fs for paths and node:worker_threads for threads
export * from "./web.ts";
