// The few members of the Deno and Bun globals that examples/deno/main.ts and
// examples/bun/main.ts use, so that tsc (with Node's types) can check them in
// `npm run typecheck` (tests/tsconfig.json). Each runtime brings its full declarations;
// `deno check examples/deno/main.ts` checks that one against Deno's own.
declare namespace Deno {
  const args: string[];
  const version: { deno: string };
  const stdout: { writeSync(bytes: Uint8Array): number };
  function execPath(): string;
}

declare namespace Bun {
  const argv: string[];
  const version: string;
  const stdout: { writer(): { write(chunk: string): number; flush(): number | Promise<number> } };
}
