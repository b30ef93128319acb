// Serving a web-standard handler on a port: Deno.serve under Deno, Bun.serve under Bun,
// node:http under Node (which has no fetch-style server). The Node adapter turns each
// request into a Request (its body streamed, its signal aborted when the client goes away)
// and writes the Response back as it streams, waiting for the socket to drain.
import process from "node:process";
import type { IncomingMessage, ServerResponse } from "node:http";

type Handler = (request: Request) => Promise<Response>;

/** A listening server. */
export interface Listening {
  /** http://host:port/ */
  url: string;
  port: number;
  /** Stops accepting connections and ends open ones. */
  close(): Promise<void>;
}

interface DenoServe {
  serve(
    options: { hostname: string; port: number; onListen?: () => void },
    handler: Handler,
  ): { addr: { port: number }; shutdown(): Promise<void> };
}
interface BunServe {
  serve(options: { hostname: string; port: number; idleTimeout: number; fetch: Handler }): { port: number; stop(closeActive?: boolean): void };
}

/** Serves `handler` on host:port (port 0: any free port). */
export async function listen(handler: Handler, { host, port }: { host: string; port: number }): Promise<Listening> {
  const url = (p: number) => `http://${host.includes(":") ? `[${host}]` : host}:${p}/`;
  const { Deno, Bun } = globalThis as unknown as { Deno?: DenoServe; Bun?: BunServe };
  if (Deno) {
    // Deno's request.signal also aborts after a complete response (its "legacy abort", which
    // it warns about once; --unstable-no-legacy-abort silences it): harmless here, where
    // the abort only ends a generation that has already ended.
    const server = Deno.serve({ hostname: host, port, onListen: () => {} }, handler);
    return { url: url(server.addr.port), port: server.addr.port, close: () => server.shutdown() };
  }
  if (Bun) {
    // idleTimeout 0: a long non-streamed generation sends nothing for a while and must not be cut off.
    const server = Bun.serve({ hostname: host, port, idleTimeout: 0, fetch: handler });
    return { url: url(server.port), port: server.port, close: () => Promise.resolve(server.stop(true)) };
  }
  const http = await import("node:http");
  const server = http.createServer((req, res) => void respond(handler, host, req, res));
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve());
  });
  const bound = (server.address() as { port: number }).port;
  return {
    url: url(bound),
    port: bound,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

async function respond(handler: Handler, host: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const gone = new AbortController();
  res.on("close", () => gone.abort());
  const headers = new Headers();
  for (let i = 0; i < req.rawHeaders.length; i += 2) headers.append(req.rawHeaders[i], req.rawHeaders[i + 1]);
  const hasBody = req.method !== "GET" && req.method !== "HEAD";
  const { Readable } = await import("node:stream");
  let response: Response;
  try {
    const request = new Request(new URL(req.url ?? "/", `http://${req.headers.host ?? host}`), {
      method: req.method,
      headers,
      body: hasBody ? (Readable.toWeb(req) as ReadableStream<Uint8Array>) : undefined,
      signal: gone.signal,
      duplex: "half",
    } as RequestInit);
    response = await handler(request);
  } catch (e) {
    process.stderr.write(`bitnet-wasm serve: ${(e as Error)?.message ?? e}\n`);
    response = new Response(JSON.stringify({ error: { message: "bad request", type: "invalid_request_error", param: null, code: null } }), { status: 400 });
  }
  res.writeHead(response.status, [...response.headers].flat());
  if (!response.body || req.method === "HEAD") return void res.end();
  const reader = response.body.getReader();
  gone.signal.addEventListener("abort", () => void reader.cancel().catch(() => {}), { once: true });
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done || res.destroyed) break;
      if (!res.write(value)) await new Promise((resolve) => res.once("drain", resolve).once("close", resolve));
    }
  } catch { /* the stream was cancelled: the client left */ }
  res.end();
}
