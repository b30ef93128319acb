// Models by hub id, against a mock of the Hugging Face Hub on 127.0.0.1 (tests/hub-mock.ts):
// what is downloaded, what the second load asks (nothing but the listing; nothing at all for a
// commit or offline), the token kept from the CDN, resume after an interruption, two loads at
// once (in one program, and in two) leaving one intact file, the progress stream, the cache API.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import process from "node:process";
import { HubError } from "../core/errors.ts";
import { loadBitNet } from "../model/load.ts";
import type { BitNetModel } from "../model/model.ts";
import { cacheHubModel, deleteCachedModel, listCachedModels } from "../hub/resolve.ts";
import { parseHubId } from "../hub/id.ts";
import { PROGRESS_INTERVAL_MS } from "../runtime/progress.ts";
import type { Progress } from "../runtime/files.ts";
import { readSafetensors, writeSafetensors } from "../formats/safetensors.ts";
import { checkpointToHf } from "../tools/convert.ts";
import { synthesizeBitNet } from "../tools/synth.ts";
import { loadKernels } from "../runtime/kernels.ts";
import { CLI, rejects, runtimeCommand, throwsTyped, withData } from "./helpers.ts";
import { MockHub } from "./hub-mock.ts";

const test = suite("hub");
const COMMIT = "0123456789abcdef0123456789abcdef01234567";
const OTHER = "fedcba9876543210fedcba9876543210fedcba98";
const TOKEN = "hf_secret";
const FILES = ["models/bitllama-1M.bin", "models/bitllama-3M.bin", "models/tok512.bin"];

const freshCache = () => mkdtempSync(`${tmpdir()}/bitnet-hub-`);
const greedy = async (m: BitNetModel) => (await m.complete("Once upon a time", { maxTokens: 24, temperature: 0 })).text;
const cachedFile = (dir: string, repo: string, file: string, commit = COMMIT) => `${dir}/hf/${repo}/${commit}/files/${file}`;

/** Runs `fn` with a mock hub holding the shared models: a llama2.c-family repo, a gated copy, a repo with two models. */
async function withHub(model1M: Uint8Array, model3M: Uint8Array, tok: Uint8Array, fn: (hub: MockHub) => Promise<void>) {
  const hub = await MockHub.start([
    { repo: "test/bitllama-1M", commit: COMMIT, files: { "bitllama-1M.bin": model1M, "tok512.bin": tok, "README.md": new TextEncoder().encode("# bitllama 1M\n") } },
    { repo: "test/gated", commit: OTHER, files: { "bitllama-1M.bin": model1M, "tok512.bin": tok }, token: TOKEN },
    { repo: "test/two", commit: OTHER, branch: "dev", files: { "bitllama-1M.bin": model1M, "bitllama-3M.bin": model3M, "tok512.bin": tok } },
  ]);
  try {
    await fn(hub);
  } finally {
    await hub.close();
  }
}

withData(
  test,
  "hf:ORG/REPO loads the repo's model and tokenizer, equal to the local files; a second load asks only for the listing, a commit-pinned or offline one asks nothing",
  FILES,
  async (m1, m3, tok) => {
    const want = await greedy(await loadBitNet(m1, { tokenizer: tok }));
    await withHub(m1, m3, tok, async (hub) => {
      const cacheDir = freshCache(), options = { hubEndpoint: hub.endpoint, cacheDir };
      const model = await loadBitNet("hf:test/bitllama-1M", options);
      assert.is(model.source, "hf:test/bitllama-1M");
      assert.is(await greedy(model), want);
      assert.equal(new Uint8Array(readFileSync(cachedFile(cacheDir, "test/bitllama-1M", "bitllama-1M.bin"))), m1);
      assert.equal(new Uint8Array(readFileSync(cachedFile(cacheDir, "test/bitllama-1M", "tok512.bin"))), tok);
      assert.not.ok(existsSync(cachedFile(cacheDir, "test/bitllama-1M", "README.md")), "files the model does not need are not fetched");
      // The model came by the CDN (a 302 from the hub), the small tokenizer from the hub itself.
      assert.equal(hub.log.map((l) => `${l.server} ${l.path.replace(/\?.*/, "")}`), [
        "hub /api/models/test/bitllama-1M/revision/main",
        "hub /test/bitllama-1M/resolve/" + COMMIT + "/bitllama-1M.bin",
        `cdn /blob/${[...hub.log].find((l) => l.server === "cdn")!.path.slice(6)}`,
        "hub /test/bitllama-1M/resolve/" + COMMIT + "/tok512.bin",
      ]);
      hub.log.length = 0;
      assert.is(await greedy(await loadBitNet("hf:test/bitllama-1M", options)), want);
      assert.equal(hub.log.map((l) => l.path), ["/api/models/test/bitllama-1M/revision/main?blobs=true"], "the second load asks for the listing only");
      hub.log.length = 0;
      assert.is(await greedy(await loadBitNet(`hf:test/bitllama-1M@${COMMIT}`, options)), want);
      assert.is(await greedy(await loadBitNet("hf:test/bitllama-1M", { ...options, offline: true })), want);
      assert.equal(hub.log, [], "a commit's files never change: no request; offline: no request");
      // A hub that cannot be reached: the cached commit of the branch serves.
      assert.is(await greedy(await loadBitNet("hf:test/bitllama-1M", { hubEndpoint: "http://127.0.0.1:9", cacheDir })), want);
    });
  },
);

withData(
  test,
  "a Hugging Face folder repo (config.json, shards by the index) loads by id with logits equal to the local folder; FILE picks one model of several, and several without one is a HubError listing the ids",
  FILES,
  async (m1, m3, tok) => {
    const kx = await loadKernels({ simd: "strict" });
    const { checkpoint } = await synthesizeBitNet({ dim: 256, hiddenDim: 384, nLayers: 2, nHeads: 2, nKvHeads: 1, vocabSize: 64, seqLen: 32 }, { seed: 5 });
    const { configJson, weights } = await checkpointToHf(kx, checkpoint);
    const st = readSafetensors(weights, "w");
    const all = [...st.tensors.values()].map((t) => ({ name: t.name, dtype: t.dtype, shape: [...t.shape], data: weights.slice(t.offset, t.offset + t.bytes) }));
    const shardOf = (name: string) => (name.includes("layers.1.") ? "model-00002-of-00002.safetensors" : "model-00001-of-00002.safetensors");
    const files: Record<string, Uint8Array> = { "config.json": new TextEncoder().encode(configJson), "tok512.bin": tok };
    for (const shard of ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]) files[shard] = writeSafetensors(all.filter((t) => shardOf(t.name) === shard));
    files["model.safetensors.index.json"] = new TextEncoder().encode(JSON.stringify({ metadata: {}, weight_map: Object.fromEntries(all.map((t) => [t.name, shardOf(t.name)])) }));
    const hub = await MockHub.start([
      { repo: "test/hf-folder", commit: COMMIT, files },
      { repo: "test/two", commit: OTHER, branch: "dev", files: { "bitllama-1M.bin": m1, "bitllama-3M.bin": m3, "tok512.bin": tok } },
    ]);
    try {
      const cacheDir = freshCache(), options = { hubEndpoint: hub.endpoint, cacheDir, simd: "strict" as const };
      const local = await cacheHubModel("hf:test/hf-folder", options);
      assert.equal(readdirSync(local.source as string).sort(), Object.keys(files).sort(), "config, index, both shards and the tokenizer");
      const tokens = [1, 5, 9, 33, 2, 63, 17];
      const byId = (await loadBitNet("hf:test/hf-folder", { ...options, tokenizer: "none" })).logits(tokens);
      const byFolder = (await loadBitNet(local.source, { ...options, tokenizer: "none" })).logits(tokens);
      assert.equal(byId, byFolder);

      const e = await rejects(
        loadBitNet("hf:test/two@dev", options),
        HubError,
        /has 2 model files; name one: hf:test\/two@dev\/bitllama-1M\.bin \(0\.6 MB\), hf:test\/two@dev\/bitllama-3M\.bin/,
      );
      assert.is((e as HubError).id, "hf:test/two@dev");
      const want = await greedy(await loadBitNet(m3, { tokenizer: tok }));
      assert.is(await greedy(await loadBitNet("hf:test/two@dev/bitllama-3M.bin", options)), want);
      assert.not.ok(existsSync(cachedFile(cacheDir, "test/two", "bitllama-1M.bin", OTHER)), "only the named model is fetched");
    } finally {
      await hub.close();
    }
  },
);

withData(test, "a gated repo: without a token a HubError (HTTP 401) says to give one; with it the model loads, and the CDN never sees the token", FILES, async (m1, m3, tok) => {
  await withHub(m1, m3, tok, async (hub) => {
    const options = { hubEndpoint: hub.endpoint, cacheDir: freshCache() };
    const e = await rejects(
      loadBitNet("hf:test/gated", options),
      HubError,
      /^hf:test\/gated: listing the files of test\/gated at main: HTTP 401 .*pass an access token \(the accessToken option, or HF_TOKEN\)/,
    );
    assert.is((e as HubError).status, 401);
    await rejects(loadBitNet("hf:test/gated", { ...options, accessToken: "hf_wrong" }), HubError, /HTTP 401.*the access token given is not allowed/);
    const model = await loadBitNet("hf:test/gated", { ...options, accessToken: TOKEN });
    assert.is(await greedy(model), await greedy(await loadBitNet(m1, { tokenizer: tok })));
    const hubAsked = hub.log.filter((l) => l.server === "hub" && l.authorization === `Bearer ${TOKEN}`), cdn = hub.log.filter((l) => l.server === "cdn");
    assert.ok(hubAsked.length >= 3 && cdn.length >= 1, JSON.stringify(hub.log));
    assert.ok(cdn.every((l) => l.authorization === undefined), "the token stays with the endpoint");
  });
});

withData(test, "an interrupted download resumes with a Range request, within the load and in the next one; the cached file is byte-identical", FILES, async (m1, m3, tok) => {
  await withHub(m1, m3, tok, async (hub) => {
    const cacheDir = freshCache(), options = { hubEndpoint: hub.endpoint, cacheDir };
    // The connection drops after 100000 bytes: the load goes on from there by itself.
    hub.cuts.set("test/bitllama-1M/bitllama-1M.bin", 100_000);
    await loadBitNet("hf:test/bitllama-1M", options);
    assert.equal(hub.log.filter((l) => l.server === "cdn").map((l) => l.range), [undefined, "bytes=100000-"]);
    assert.equal(new Uint8Array(readFileSync(cachedFile(cacheDir, "test/bitllama-1M", "bitllama-1M.bin"))), m1);

    // A load aborted mid-file leaves its part; the next load asks for the rest only.
    const dir2 = freshCache(), controller = new AbortController();
    hub.log.length = 0;
    hub.hold("test/bitllama-1M/bitllama-1M.bin");
    const partial = `${dir2}/hf/test/bitllama-1M/${COMMIT}/partial/bitllama-1M.bin`;
    const loading = loadBitNet("hf:test/bitllama-1M", { hubEndpoint: hub.endpoint, cacheDir: dir2, signal: controller.signal });
    for (let i = 0; i < 200 && !(existsSync(partial) && statSync(partial).size === 1000); i++) await new Promise((r) => setTimeout(r, 25));
    controller.abort(new Error("stopped by the user"));
    await rejects(loading, Error, /stopped by the user/);
    hub.release("test/bitllama-1M/bitllama-1M.bin");
    assert.is(statSync(partial).size, 1000);
    assert.not.ok(existsSync(`${partial}.lock`), "the lock goes with the download");
    assert.equal((await listCachedModels({ cacheDir: dir2 }))[0].partialBytes, 1000);
    await loadBitNet("hf:test/bitllama-1M", { hubEndpoint: hub.endpoint, cacheDir: dir2 });
    assert.equal(hub.log.filter((l) => l.server === "cdn").map((l) => l.range), [undefined, "bytes=1000-"]);
    assert.equal(new Uint8Array(readFileSync(cachedFile(dir2, "test/bitllama-1M", "bitllama-1M.bin"))), m1);
    assert.not.ok(existsSync(partial));
  });
});

/** Runs the command line with `env` added; resolves to its exit code and output. */
function cliChild(args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const [cmd, ...pre] = runtimeCommand();
  const child = spawn(cmd, [...pre, CLI, ...args], { env: { ...process.env, ...env, NO_COLOR: "1" }, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "", stderr = "";
  child.stdout.on("data", (d) => (stdout += d));
  child.stderr.on("data", (d) => (stderr += d));
  return new Promise((resolve) => child.on("close", (code) => resolve({ code, stdout, stderr })));
}

withData(
  test,
  "two loads of one id at once, in this program and in a command-line child (HF_ENDPOINT, BITNET_WASM_CACHE), download the file once and leave one intact copy",
  FILES,
  async (m1, m3, tok) => {
    await withHub(m1, m3, tok, async (hub) => {
      const cacheDir = freshCache(), options = { hubEndpoint: hub.endpoint, cacheDir };
      hub.hold("test/bitllama-1M/bitllama-1M.bin");
      const first = loadBitNet("hf:test/bitllama-1M", options), second = loadBitNet("hf:test/bitllama-1M", options);
      const child = cliChild(["generate", "--model", "hf:test/bitllama-1M", "--prompt", "Once upon a time", "--max-tokens", "24", "--temperature", "0", "--json"], {
        HF_ENDPOINT: hub.endpoint,
        BITNET_WASM_CACHE: cacheDir,
      });
      // The child lists the repo, then finds the lock and waits; the download is released after that.
      const listings = () => hub.log.filter((l) => l.path.startsWith("/api/")).length;
      for (let i = 0; i < 600 && listings() < 3; i++) await new Promise((r) => setTimeout(r, 50));
      await new Promise((r) => setTimeout(r, 1000));
      hub.release("test/bitllama-1M/bitllama-1M.bin");
      const want = await greedy(await loadBitNet(m1, { tokenizer: tok }));
      assert.is(await greedy(await first), want);
      assert.is(await greedy(await second), want);
      const r = await child;
      assert.is(r.code, 0, r.stderr);
      assert.is(JSON.parse(r.stdout).text, want);
      assert.is(listings(), 3, "the child asked the hub");
      assert.is(hub.log.filter((l) => l.server === "cdn").length, 1, `one download: ${JSON.stringify(hub.log)}`);
      assert.equal(new Uint8Array(readFileSync(cachedFile(cacheDir, "test/bitllama-1M", "bitllama-1M.bin"))), m1);
      assert.equal(readdirSync(`${cacheDir}/hf/test/bitllama-1M/${COMMIT}/partial`), [], "no part or lock left");
    });
  },
);

withData(test, "progress: one stream per file, totals known from the first event, monotone, a few events a second, each reaching its total", FILES, async (m1, m3, tok) => {
  await withHub(m1, m3, tok, async (hub) => {
    const events: (Progress & { at: number })[] = [];
    // The model trickles in (held, then released) so the stream spans several intervals.
    hub.hold("test/bitllama-1M/bitllama-1M.bin");
    setTimeout(() => hub.release("test/bitllama-1M/bitllama-1M.bin"), 700);
    await loadBitNet("hf:test/bitllama-1M", { hubEndpoint: hub.endpoint, cacheDir: freshCache(), onProgress: (p) => events.push({ ...p, at: performance.now() }) });
    const streams = new Map<string, (Progress & { at: number })[]>();
    for (const e of events) streams.set(`${e.phase} ${e.file}`, [...(streams.get(`${e.phase} ${e.file}`) ?? []), e]);
    const keys = [...streams.keys()];
    assert.ok(
      keys.includes("download bitllama-1M.bin") && keys.includes("download tok512.bin") && keys.some((k) => k.startsWith("read ")) && keys.some((k) => k.startsWith("weights ")),
      keys.join(", "),
    );
    assert.is(streams.get("download bitllama-1M.bin")![0].total, m1.length);
    for (const [key, seen] of streams) {
      const total = seen[0].total!;
      assert.ok(seen.every((e) => e.total === total), `${key}: the total is known from the start`);
      assert.is(seen.at(-1)!.loaded, total, `${key} ends at its total`);
      for (let i = 1; i < seen.length; i++) {
        assert.ok(seen[i].loaded > seen[i - 1].loaded, `${key} is monotone`);
        assert.ok(seen[i].loaded === total || seen[i].at - seen[i - 1].at >= PROGRESS_INTERVAL_MS - 1, `${key}: events ${PROGRESS_INTERVAL_MS} ms apart`);
      }
    }
    assert.ok(streams.get("download bitllama-1M.bin")!.length >= 2, "the first bytes and the end");
    assert.ok(events.length < 40, `${events.length} events in all`);
  });
});

withData(
  test,
  "the cache API lists each commit with its files and sizes, and deletes by repo or revision; offline, a deleted model is a HubError saying it is not cached",
  FILES,
  async (m1, m3, tok) => {
    await withHub(m1, m3, tok, async (hub) => {
      const cacheDir = freshCache(), options = { hubEndpoint: hub.endpoint, cacheDir };
      assert.equal(await listCachedModels({ cacheDir }), []);
      await cacheHubModel("hf:test/bitllama-1M", options);
      await cacheHubModel("hf:test/two@dev/bitllama-3M.bin", options);
      const listed = await listCachedModels({ cacheDir });
      assert.equal(listed.map((m) => [m.id, m.refs, m.files.map((f) => [f.name, f.size]), m.size]), [
        [`hf:test/bitllama-1M@${COMMIT}`, ["main"], [["bitllama-1M.bin", m1.length], ["tok512.bin", tok.length]], m1.length + tok.length],
        [`hf:test/two@${OTHER}`, ["dev"], [["bitllama-3M.bin", m3.length], ["tok512.bin", tok.length]], m3.length + tok.length],
      ]);
      // The command line sees the same cache.
      const cli = await cliChild(["cache", "list", "--json"], { BITNET_WASM_CACHE: cacheDir });
      assert.is(cli.code, 0, cli.stderr);
      assert.equal(JSON.parse(cli.stdout), listed);
      const text = await cliChild(["cache", "--cache-dir", cacheDir], {});
      assert.match(text.stdout, new RegExp(`^hf:test/bitllama-1M@${COMMIT} \\(main\\)  0\\.6 MB\\n  bitllama-1M\\.bin  0\\.6 MB\\n`));

      assert.is(await deleteCachedModel("hf:test/two@dev", { cacheDir }), m3.length + tok.length);
      assert.is(await deleteCachedModel("hf:test/two@dev", { cacheDir }), 0, "nothing left to delete");
      const rm = await cliChild(["cache", "rm", "hf:test/bitllama-1M"], { BITNET_WASM_CACHE: cacheDir });
      assert.match(rm.stdout, /^deleted hf:test\/bitllama-1M: 0\.6 MB freed\n$/, rm.stderr);
      assert.equal(await listCachedModels({ cacheDir }), []);
      hub.log.length = 0;
      await rejects(
        loadBitNet("hf:test/bitllama-1M", { ...options, offline: true }),
        HubError,
        /^hf:test\/bitllama-1M: not in the cache at .* \(offline: the hub is not asked; load it once online\)$/,
      );
      const offline = await cliChild(["generate", "--model", "hf:test/bitllama-1M", "--offline", "--cache-dir", cacheDir], { HF_ENDPOINT: hub.endpoint });
      assert.is(offline.code, 2);
      assert.match(offline.stderr, /^bitnet-wasm: hf:test\/bitllama-1M: not in the cache/);
      assert.equal(hub.log, [], "offline asks nothing");
    });
  },
);

withData(test, "bad ids, missing repos, revisions and files are HubErrors naming the id and what was expected", FILES, async (m1, m3, tok) => {
  for (
    const [id, pattern] of [
      ["hf:onlyorg", /no repo name; expected hf:ORG\/REPO/],
      ["hf:-bad/x", /"-bad" is not a valid owner or repo name/],
      ["hf:a/b/../c", /"..\/c" is not a file path in the repo/],
      ["hf:a/b@", /an empty revision after @/],
      ["hf:a/b@%zz", /not valid percent-encoding/],
    ] as const
  ) throwsTyped(() => parseHubId(id), HubError, pattern);
  assert.equal(parseHubId("hf:org/repo@refs%2Fpr%2F1/sub/model.gguf"), {
    text: "hf:org/repo@refs%2Fpr%2F1/sub/model.gguf",
    repo: "org/repo",
    revision: "refs/pr/1",
    file: "sub/model.gguf",
  });
  await withHub(m1, m3, tok, async (hub) => {
    const options = { hubEndpoint: hub.endpoint, cacheDir: freshCache() };
    await rejects(
      loadBitNet("hf:test/nothing", options),
      HubError,
      /^hf:test\/nothing: listing the files of test\/nothing at main: HTTP 404, no such repo, revision or file .*Repository not found/,
    );
    await rejects(loadBitNet("hf:test/bitllama-1M@v9", options), HubError, /HTTP 404, no revision "v9"/);
    await rejects(
      loadBitNet("hf:test/bitllama-1M/nope.bin", options),
      HubError,
      /the repo has no file "nope.bin" at 0123456789abcdef0123456789abcdef01234567; it has bitllama-1M\.bin, tok512\.bin, README\.md/,
    );
    await rejects(loadBitNet("hf:test/bitllama-1M", { ...options, hubEndpoint: "ftp://x" }), HubError, /the hub endpoint ftp:\/\/x\/ is not an http\(s\) URL/);
    await rejects(loadBitNet("hf:test/bitllama-1M", { ...options, offline: "yes" as unknown as boolean }), Error, /offline/);
  });
});

test.run();
