// A tiny static server for the browser example (the chat page): serves the repository (the page, dist/,
// node_modules/ for the import map) and, under /data/, the shared data folder beside it,
// with the COOP / COEP headers that make a page cross-origin isolated (shared memory, so
// threads), the right MIME types (application/wasm for streaming compilation) and HTTP
// Range requests (the library reads a model by ranges when the server allows it). The package's
// modules under /dist/ are served with their bare imports pointed into /node_modules/: the
// model's worker is a module worker, and workers have no import maps.
// node examples/browser/serve.mjs [port]   then open http://127.0.0.1:PORT/examples/browser/
import { createServer } from "node:http";
import { createReadStream, readFileSync, statSync } from "node:fs";
import { extname, join, normalize, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = resolve(fileURLToPath(new URL("../..", import.meta.url)));
const DATA = resolve(ROOT, "../shared/data");
/** The package's dependencies as the browser finds them (bare specifier -> URL). */
const DEPENDENCIES = {
  "@assemblyscript/loader": "/node_modules/@assemblyscript/loader/index.js",
  "@huggingface/jinja": "/node_modules/@huggingface/jinja/dist/index.js",
  "@huggingface/tokenizers": "/node_modules/@huggingface/tokenizers/dist/tokenizers.mjs",
};
const bareImport = /(\bfrom\s*|\bimport\s*\(\s*)"(@[^"/]+\/[^"]+|[^"./][^":]*)"/g;
const pointed = (code) => code.replace(bareImport, (all, before, name) => (DEPENDENCIES[name] ? `${before}"${DEPENDENCIES[name]}"` : all));

const TYPES = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript",
  ".mjs": "text/javascript",
  ".css": "text/css",
  ".json": "application/json",
  ".wasm": "application/wasm",
};

/**
 * Starts the server on 127.0.0.1 (port 0: any free one); resolves to its base URL. `mounts`
 * maps more URL prefixes ("/models/") to folders.
 */
export function serve(port = 0, mounts = {}) {
  const prefixes = Object.entries({ ...mounts, "/data/": DATA, "/": ROOT });
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname);
    const [prefix, dir] = prefixes.find(([prefix]) => path.startsWith(prefix));
    const [base, rest] = [resolve(dir), path.slice(prefix.length)];
    let file = normalize(join(base, rest));
    if (!file.startsWith(base)) return void res.writeHead(403).end();
    let stat;
    try {
      stat = statSync(file);
      if (stat.isDirectory()) stat = statSync(file = join(file, "index.html"));
    } catch {
      return void res.writeHead(404).end("not found");
    }
    const headers = {
      "Content-Type": TYPES[extname(file)] ?? "application/octet-stream",
      "Cross-Origin-Opener-Policy": "same-origin",
      "Cross-Origin-Embedder-Policy": "require-corp",
      "Accept-Ranges": "bytes",
    };
    const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? "");
    if (range) {
      const start = Number(range[1]), end = range[2] ? Math.min(Number(range[2]), stat.size - 1) : stat.size - 1;
      if (start > end) return void res.writeHead(416, { "Content-Range": `bytes */${stat.size}` }).end();
      res.writeHead(206, { ...headers, "Content-Range": `bytes ${start}-${end}/${stat.size}`, "Content-Length": end - start + 1 });
      return void createReadStream(file, { start, end }).pipe(res);
    }
    if (path.startsWith("/dist/") && extname(file) === ".js") {
      const code = Buffer.from(pointed(readFileSync(file, "utf8")));
      return void res.writeHead(200, { ...headers, "Content-Length": code.length }).end(code);
    }
    res.writeHead(200, { ...headers, "Content-Length": stat.size });
    createReadStream(file).pipe(res);
  });
  return new Promise((ok) => server.listen(port, "127.0.0.1", () => ok({ url: `http://127.0.0.1:${server.address().port}`, close: () => server.close() })));
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { url } = await serve(Number(process.argv[2] ?? 8080));
  console.log(`${url}/examples/browser/  (models under ../shared/data are at ${url}/data/...)`);
}
