/**
 * bitnet-wasm for browsers and Workers: the application API of the package with nothing from
 * node: anywhere in its import graph, so a bundler needs no externals. Models, tokenizers and
 * kernels come from http(s) URLs (read by HTTP Range requests when the server allows), Blobs
 * and Files (read piece by piece), streams or bytes; a file path is an error here unless a
 * FileSystem is given to {@link useFileSystem}. npm resolves `bitnet-wasm` to this entry under
 * the "browser", "workerd" and "worker" conditions; it is also `bitnet-wasm/web` and
 * `jsr:@bitnet/wasm/web`. Node, Deno and Bun use the main entry, which adds file paths and
 * node:worker_threads; research and format tools are in `bitnet-wasm/research`.
 *
 * ```ts
 * import { loadBitNet } from "jsr:@bitnet/wasm/web";
 * const model = await loadBitNet("https://example.com/bitllama-3M.bin", { tokenizer: "https://example.com/tok512.bin" });
 * for await (const { text } of model.generate("Once upon a time", { maxTokens: 64 })) console.log(text);
 * ```
 * @module
 */
export { loadBitNet, type LoadOptions } from "./model/load.ts";
export { loadBitNetInWorker, RemoteModel, RemoteSession, type WorkerLoadOptions } from "./worker/client.ts";
export { BitNetModel, type SparsityCounters } from "./model/model.ts";
export { Session, type SessionOptions } from "./model/session.ts";
export type { FinishReason, GeneratedToken, GenerateOptions, GenerationResult } from "./text/generate.ts";
export type { SamplingOptions } from "./text/sampler.ts";
export type { Tokenizer } from "./text/tokenizer/llama2c.ts";
export type { TokenizerOption } from "./text/tokenizer/resolve.ts";
export { type ChatMessage, renderChat } from "./text/chat.ts";
export { createHandler, type Handler, type HandlerOptions, type RequestRecord } from "./server/handler.ts";
export { ApiError } from "./server/openai.ts";
export type { PerplexityOptions, PerplexityResult } from "./model/perplexity.ts";
export { BitNetError, FormatError, HubError, NonFiniteError, OptionError, ShapeError } from "./core/errors.ts";
export { type CachedHubModel, type CachedModel, cacheHubModel, deleteCachedModel, type HubLoadOptions, listCachedModels } from "./hub/resolve.ts";
export type { HubOptions, RepoFile } from "./hub/client.ts";
export { type Appender, type CacheEntry, type CacheFiles, useCacheFiles } from "./runtime/cache-files.ts";
export type { Activation, ModelConfig } from "./formats/config.ts";
export { type ByteSink, type ByteSource, type FileSystem, type Progress, type RandomAccessFile, type ReadOptions, useFileSystem } from "./runtime/files.ts";
export type { KernelOptions, SimdLevel } from "./runtime/kernels.ts";
export { hasRelaxedSimd } from "./runtime/features.ts";
// Types the API above refers to.
export type { TransformerOptions } from "./model/transformer.ts";
export type { ArchName } from "./formats/architectures.ts";
