// Chat prompts: the checkpoint's own Jinja chat template (tokenizer_config.json's
// chat_template or GGUF's tokenizer.chat_template), rendered by @huggingface/jinja within
// limits (template.ts).
import { BitNetError, OptionError } from "../core/errors.ts";
import { renderTemplate } from "./template.ts";
import type { Tokenizer } from "./tokenizer/llama2c.ts";

/** One chat turn. */
export interface ChatMessage {
  /** Who speaks. */
  role: "system" | "user" | "assistant";
  /** What is said. */
  content: string;
}

/** The prompt text of a conversation, ending where the assistant's reply begins (by the checkpoint's template, or `template`). */
export function renderChat(
  tokenizer: Tokenizer & { tokenText?: (id: number) => string | undefined },
  messages: ChatMessage[],
  source: string,
  template: string | undefined = tokenizer.chatTemplate,
): string {
  if (!template) throw new BitNetError(`${source}: the checkpoint has no chat template; use generate() with a prompt, or load it with a chatTemplate`);
  if (!Array.isArray(messages) || messages.length === 0 || messages.some((m) => typeof m?.content !== "string" || !["system", "user", "assistant"].includes(m?.role))) {
    throw new OptionError("messages", "expected a non-empty list of { role: system | user | assistant, content: string }");
  }
  const text = (id: number) => tokenizer.tokenText?.(id) ?? "";
  return renderTemplate(template, { messages, add_generation_prompt: true, bos_token: text(tokenizer.bos), eos_token: text(tokenizer.eos) }, source);
}
