// Environment variables where the runtime has them (process.env on Node / Deno / Bun, installed
// by runtime/node.ts); none in browsers and Workers. The hub reads HF_ENDPOINT, HF_TOKEN and
// HF_HUB_OFFLINE through it, as huggingface_hub does.

let read: (name: string) => string | undefined = () => undefined;

/** Installs how environment variables are read. */
export function useEnvironment(lookup: (name: string) => string | undefined): void {
  read = lookup;
}

/** An environment variable, or undefined when it is unset, empty or unreadable. */
export function env(name: string): string | undefined {
  try {
    return read(name) || undefined;
  } catch {
    return undefined; // Deno without --allow-env
  }
}
