// The library's layers: a file in a folder imports only from its own folder and the folders
// below it, in the order core < runtime < formats < quant < text < hub < model < tools < server < worker < eval < cli;
// the root entry files (mod.ts, web.ts, research.ts) sit above eval (research.ts exports the
// sweep) and below cli; only the Node / Deno / Bun adapter (runtime/node.ts, and the worker
// script it starts), eval/ and cli/ import node: modules; examples/ are demos the library never
// imports (only eval/, whose benchmarks drive the browser page). Every relative import is counted: static import / export ... from,
// import type, side-effect imports and import("...") (in code or in a type).
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, normalize, relative, sep } from "node:path";
import { fileURLToPath } from "node:url";

const test = suite("layers");
const ROOT = fileURLToPath(new URL("../", import.meta.url));
const ORDER = ["core", "runtime", "formats", "quant", "text", "hub", "model", "tools", "server", "worker", "eval", "cli"];
/** The root entry files' place: above eval, below cli (which may import them). */
const ROOT_RANK = ORDER.indexOf("eval") + 0.5;
/** Folders and files that may import node: modules. */
const NODE_ALLOWED = new Set(["runtime/node.ts", "runtime/thread-worker.js", "eval", "cli"]);
/** Folders that may import examples/. */
const EXAMPLES_ALLOWED = new Set(["eval"]);

/** Words after which `export` declares something rather than re-exporting. */
const DECLARATIONS = new Set(["function", "class", "const", "let", "var", "interface", "enum", "default", "async", "abstract", "declare", "namespace"]);
const KEYWORDS_BEFORE_REGEX = new Set(["return", "typeof", "instanceof", "in", "of", "new", "delete", "void", "throw", "case", "do", "else", "yield", "await"]);
type Token = { kind: "name" | "string" | "punct"; value: string };

/** The tokens of JavaScript / TypeScript source that matter here: names, string literals (their value), punctuation; comments, template text and regular expressions dropped. */
export function tokens(source: string): Token[] {
  const out: Token[] = [];
  const braces: ("code" | "template")[] = []; // what each open { belongs to: code, or a template's ${
  let i = 0;
  const template = () => {
    // From just after ` or }, to just after the closing ` (or just after ${, which opens code).
    while (i < source.length) {
      const c = source[i];
      if (c === "\\") i += 2;
      else if (c === "`") return void i++;
      else if (c === "$" && source[i + 1] === "{") {
        i += 2;
        braces.push("template");
        return;
      } else i++;
    }
  };
  while (i < source.length) {
    const c = source[i], next = source[i + 1];
    if (/\s/.test(c)) i++;
    else if (c === "/" && next === "/") i = source.indexOf("\n", i) === -1 ? source.length : source.indexOf("\n", i);
    else if (c === "/" && next === "*") i = source.indexOf("*/", i + 2) === -1 ? source.length : source.indexOf("*/", i + 2) + 2;
    else if (c === '"' || c === "'") {
      let value = "";
      for (i++; i < source.length && source[i] !== c; i++) value += source[i] === "\\" ? source[++i] : source[i];
      i++;
      out.push({ kind: "string", value });
    } else if (c === "`") {
      i++;
      template();
      out.push({ kind: "punct", value: "`" });
    } else if (/[A-Za-z_$]/.test(c)) {
      const m = /^[\w$]+/.exec(source.slice(i, i + 100))!;
      out.push({ kind: "name", value: m[0] });
      i += m[0].length;
    } else if (/[0-9]/.test(c)) {
      const m = /^[\w.]+/.exec(source.slice(i, i + 100))!;
      out.push({ kind: "name", value: m[0] });
      i += m[0].length;
    } else if (c === "/") {
      const prev = out.at(-1);
      const regex = !prev || (prev.kind === "punct" && !")]}`".includes(prev.value)) || (prev.kind === "name" && KEYWORDS_BEFORE_REGEX.has(prev.value));
      if (!regex) {
        out.push({ kind: "punct", value: "/" });
        i++;
        continue;
      }
      let inClass = false;
      for (i++; i < source.length; i++) {
        const r = source[i];
        if (r === "\\") i++;
        else if (r === "[") inClass = true;
        else if (r === "]") inClass = false;
        else if (r === "/" && !inClass) break;
        else if (r === "\n") break;
      }
      i++;
      while (i < source.length && /[a-z]/.test(source[i])) i++;
      out.push({ kind: "punct", value: "/re/" });
    } else if (c === "{") {
      braces.push("code");
      out.push({ kind: "punct", value: c });
      i++;
    } else if (c === "}") {
      i++;
      if (braces.pop() === "template") template();
      else out.push({ kind: "punct", value: c });
    } else {
      out.push({ kind: "punct", value: c });
      i++;
    }
  }
  return out;
}

/** The specifiers a module imports or re-exports from, in order. */
export function importSpecifiers(source: string): string[] {
  const t = tokens(source), found: string[] = [];
  const is = (j: number, kind: Token["kind"], value?: string) => t[j]?.kind === kind && (value === undefined || t[j].value === value);
  for (let j = 0; j < t.length; j++) {
    if (!is(j, "name", "import") && !is(j, "name", "export")) continue;
    if (is(j - 1, "punct", ".")) continue; // x.import
    if (is(j, "name", "import") && is(j + 1, "punct", "(") && is(j + 2, "string")) {
      found.push(t[j + 2].value); // import("x"), in code or in a type
      continue;
    }
    if (is(j, "name", "import") && is(j + 1, "string")) {
      found.push(t[j + 1].value); // import "x"
      continue;
    }
    // import / export [type] [name,] [{ a, b as c }] [* as ns] from "x"
    for (let k = j + 1; k < t.length && k < j + 400; k++) {
      if (is(k, "name", "from") && is(k + 1, "string")) {
        found.push(t[k + 1].value);
        break;
      }
      const ok = (t[k].kind === "name" && !DECLARATIONS.has(t[k].value)) || (t[k].kind === "punct" && "{},*".includes(t[k].value));
      if (!ok) break;
    }
  }
  return found;
}

/** The library's source files, relative to the project root with / separators. */
function libraryFiles(): string[] {
  const files: string[] = [];
  const walk = (dir: string) => {
    for (const name of readdirSync(join(ROOT, dir)).sort()) {
      const path = `${dir}/${name}`;
      if (statSync(join(ROOT, path)).isDirectory()) walk(path);
      else if (/\.(ts|js|mjs)$/.test(name)) files.push(path);
    }
  };
  for (const dir of ORDER) walk(dir);
  for (const name of readdirSync(ROOT).sort()) if (/\.ts$/.test(name) && statSync(join(ROOT, name)).isFile()) files.push(name);
  return files;
}

/** A file's layer: its folder's place in ORDER, or ROOT_RANK for a root entry file; undefined outside the library. */
function rank(path: string): number | undefined {
  if (!path.includes("/")) return /\.ts$/.test(path) ? ROOT_RANK : undefined;
  const i = ORDER.indexOf(path.split("/")[0]);
  return i < 0 ? undefined : i;
}
const layerName = (r: number) => (r === ROOT_RANK ? "the root entry files" : `${ORDER[r]}/`);

test("the import scanner finds static, type, side-effect, re-export and dynamic imports, and nothing in comments, strings or regexes", () => {
  const source = [
    `import { a, type B } from "./a.ts";`,
    `import type { C } from '../core/c.ts';`,
    `import * as ns from "./ns.ts";`,
    `import "./side.ts";`,
    `import def, {\n  x,\n  y as z,\n} from "./multi.ts";`,
    `export { q } from "./q.ts";`,
    `export * from "./star.ts";`,
    `export type { T } from "./t.ts";`,
    `export const k = Array.from("not an import");`,
    `export function f() { return import("./dynamic.ts"); }`,
    `let p: Promise<import("./in-a-type.ts").X>;`,
    `// import { no } from "./comment.ts";`,
    `/* export * from "./block.ts"; */`,
    'const s = `import x from "./template.ts" ${import("./in-template.ts")}`;',
    `const re = /import "x" from "y"/g, quote = /"/;`,
    `const u = import.meta.url, v = 'import("./string.ts")';`,
    `export default 1;`,
  ].join("\n");
  const want = ["./a.ts", "../core/c.ts", "./ns.ts", "./side.ts", "./multi.ts", "./q.ts", "./star.ts", "./t.ts", "./dynamic.ts", "./in-a-type.ts", "./in-template.ts"];
  assert.equal(importSpecifiers(source), want);
});

test("each folder imports only from its own layer and the layers below (core < runtime < formats < quant < text < hub < model < tools < server < worker < eval < root entries < cli), and only the runtime adapter, eval/ and cli/ import node:", () => {
  const files = libraryFiles(), violations: string[] = [];
  let edges = 0;
  assert.ok(files.includes("mod.ts") && files.some((f) => f.startsWith("model/")), `the library's files: ${files.join(", ")}`);
  for (const file of files) {
    const from = rank(file)!, folder = file.includes("/") ? file.split("/")[0] : "";
    for (const spec of importSpecifiers(readFileSync(join(ROOT, file), "utf8"))) {
      if (spec.startsWith("node:")) {
        if (!NODE_ALLOWED.has(folder) && !NODE_ALLOWED.has(file)) violations.push(`${file}: imports ${spec} (node: modules belong in runtime/node.ts, eval/ or cli/)`);
        continue;
      }
      if (!spec.startsWith(".")) continue; // a package
      edges++;
      const target = relative(ROOT, normalize(join(ROOT, dirname(file), spec))).split(sep).join("/");
      const to = rank(target);
      if (target.startsWith("examples/") && EXAMPLES_ALLOWED.has(folder)) continue;
      if (to === undefined) violations.push(`${file}: imports ${spec} (${target}), outside the library's folders`);
      else if (to > from) violations.push(`${file}: imports ${spec}: ${layerName(from)} may not import from ${layerName(to)}`);
    }
  }
  assert.ok(edges > 50, `only ${edges} relative imports found in ${files.length} files: the scanner is broken`);
  assert.ok(violations.length === 0, `${violations.length} layer violation(s):\n      ${violations.join("\n      ")}`);
});

test.run();
