// Headless Chromium for the browser test and the wllama benchmark: Debian's `chromium`
// (CHROMIUM overrides the path) driven by playwright-core, which downloads no browser. The
// flags keep it from reaching for the network, which this machine's sandbox refuses.
import process from "node:process";

export const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";

/** A headless Chromium. */
export async function launchChromium(): Promise<import("playwright-core").Browser> {
  const { chromium } = await import("playwright-core");
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}
