// The package version, as a module so that it reads the same from the sources, from dist/
// and from the JSR package by URL (none of which can count on package.json beside it).
// tests/package.test.ts holds it equal to package.json's and deno.json's "version".

/** The version of bitnet-wasm (npm) / @bitnet/wasm (JSR). */
export const VERSION = "0.1.0";
