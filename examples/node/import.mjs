#!/usr/bin/env node
// Hoist's plugin under Node.js: the same `hoist_plugin.wasm` the Rust hosts load, transpiled
// by jco into JavaScript plus core wasm, and run on preview2-shim's WASI 0.2 (its
// `wasi:http/outgoing-handler` included). One import between two registries:
//
//   node import.mjs [--plugin hoist_plugin.wasm] SRC DST [--plain-http HOST]… [--budget-ms MS]
//   node import.mjs --plugin hoist_plugin.wasm --prepare   # transpile only, ahead of time
//
// stdout gets the digest reference the import wrote; stderr gets progress lines, and at the
// end one line for programs: `advance-calls {"budgetMs":…,"calls":…,"longestMs":…,
// "longestCall":…,"totalMs":…,"bytes":…}` (how long the slowest `advance` took and which
// one it was, counting from 1; how long they all took; the bytes copied). The plugin
// comes from --plugin, else $HOIST_PLUGIN_WASM. Its transpiled form is kept under
// $HOIST_CACHE/node/transpiled/<sha256 of the file> (default ~/.cache/hoist), so a second
// run skips jco.
//
// jco and the shim are found in ./node_modules (`npm ci` here), or in $HOIST_NODE_DEPS/
// node_modules when set (Hoist's scripts install them under the cache, off the clone).
//
// Three things in the shim fall short, each worked around below and in docs/embedding.md:
// `OutputStream.splice` is broken, the outgoing body moves 16 KiB per call, and the guest
// would see the whole process environment.

import { createHash } from "node:crypto";
import { createRequire } from "node:module";
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

// How long one `advance` call may work, in milliseconds, unless --budget-ms says otherwise:
// the 200 the Rust hosts use. The main thread is blocked for the whole call (under the shim
// every I/O call is a synchronous round trip to a worker thread), so this is also how
// often progress lines appear and Ctrl-C is seen. The plugin keeps to it within about one
// splice's time (see "The Node example" in docs/embedding.md for the figures).
const DEFAULT_BUDGET_MS = 200;
// The contract this host speaks: `hoist:plugin@0.3.*` (for 0.x the minor is the breaking one).
const CONTRACT_VERSION = /^0\.3\.\d+/;

const usage =
  "usage: node import.mjs [--plugin PLUGIN.wasm] SRC DST [--plain-http HOST]… [--budget-ms MS]\n" +
  "                        [--main-thread-splice]\n" +
  "       node import.mjs --plugin PLUGIN.wasm --prepare";

function parseArgs(argv) {
  const args = {
    plugin: process.env.HOIST_PLUGIN_WASM,
    plainHttp: [],
    budgetMs: DEFAULT_BUDGET_MS,
    positional: [],
    mainThreadSplice: false,
    prepare: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    if (flag === "--plugin" || flag === "--plain-http" || flag === "--budget-ms") {
      const value = argv[++i];
      if (value === undefined) fail(`${flag} needs a value\n${usage}`);
      if (flag === "--plugin") args.plugin = value;
      else if (flag === "--plain-http") args.plainHttp.push(value);
      else {
        // WIT's `budget-ms` is a u32; 0 would ask for no work at all.
        args.budgetMs = Number(value);
        if (!Number.isInteger(args.budgetMs) || args.budgetMs < 1 || args.budgetMs > 0xffffffff) {
          fail(`--budget-ms takes a whole number of milliseconds from 1, not ${value}`);
        }
      }
    } else if (flag === "--prepare") {
      args.prepare = true;
    } else if (flag === "--main-thread-splice") {
      // Only workaround 1, for comparing figures (docs/embedding.md).
      args.mainThreadSplice = true;
    } else if (flag.startsWith("--")) {
      fail(`unknown option ${flag}\n${usage}`);
    } else {
      args.positional.push(flag);
    }
  }
  if (!args.plugin || (!args.prepare && args.positional.length !== 2)) fail(usage);
  return args;
}

function fail(message) {
  console.error(message);
  process.exit(2);
}

const here = dirname(fileURLToPath(import.meta.url));
const deps = createRequire(join(process.env.HOIST_NODE_DEPS ?? here, "package.json"));
/** Imports a package (by its exports map) from wherever the dependencies are installed. */
async function load(specifier) {
  try {
    return await import(pathToFileURL(deps.resolve(specifier)).href);
  } catch (e) {
    fail(`cannot load ${specifier} (${e.code ?? e.message}); run \`npm ci\` in ${here}`);
  }
}

/** Transpiles `wasm` once per content, with imports passed at instantiation. */
async function transpiled(wasm) {
  const sha = createHash("sha256").update(wasm).digest("hex");
  const cache = process.env.HOIST_CACHE ?? join(homedir(), ".cache", "hoist");
  const dir = join(cache, "node", "transpiled", sha);
  if (!existsSync(join(dir, "hoist_plugin.js"))) {
    const { transpile } = await load("@bytecodealliance/jco");
    // Instantiation mode: the generated module imports nothing by name, this script hands
    // it the WASI implementation, so the output can live anywhere.
    const { files } = await transpile(wasm, { name: "hoist_plugin", instantiation: "async" });
    const tmp = `${dir}.tmp-${process.pid}`;
    for (const [name, bytes] of Object.entries(files)) {
      mkdirSync(dirname(join(tmp, name)), { recursive: true });
      writeFileSync(join(tmp, name), bytes);
    }
    mkdirSync(dirname(dir), { recursive: true });
    try {
      renameSync(tmp, dir);
    } catch (e) {
      if (!existsSync(join(dir, "hoist_plugin.js"))) throw e; // else another run won the race
    }
  }
  return { dir, sha };
}

/**
 * Workaround 1: preview2-shim 0.26.1's `OutputStream.splice` reads the private `#id` of
 * the *input* stream from the OutputStream class, which throws `TypeError: Cannot read
 * private member #id`; and its worker-side splice sizes its read from fields of the wrong
 * object, so it can move more than `len`. WASI defines splice as check-write, then read at
 * most that much, then write it; this does exactly that through the streams' public methods.
 */
function safeSplice(src, len) {
  const room = this.checkWrite();
  const want = room < len ? room : len;
  if (want === 0n) return 0n;
  const chunk = src.read(want); // throws {tag: "closed"} at the end, as splice must
  if (chunk.byteLength > 0) this.write(chunk);
  return BigInt(chunk.byteLength);
}

/**
 * Workaround 2: the same splice, done in the shim's I/O worker in one synchronous round trip
 * instead of three, with the worker's stream buffers raised from 16 KiB to 1 MiB
 * (shim-worker.mjs says why). It uses the shim's public `io-worker` extension call.
 */
async function workerSplice() {
  const worker = await load("@bytecodealliance/preview2-shim/io-worker");
  const module = new URL("./shim-worker.mjs", import.meta.url);
  worker.callExtension(module, "init", []);
  return function splice(src, len) {
    try {
      const args = [worker.outputStreamId(this), worker.inputStreamId(src), len];
      return worker.callExtension(module, "splice", args);
    } catch (e) {
      // The guest expects `last-operation-failed` to carry a wasi:io/error resource.
      if (e?.tag === "last-operation-failed" && !(e.val instanceof Object && "toDebugString" in e.val)) {
        throw { tag: e.tag, val: worker.createIoError(e.val?.message ?? String(e.val)) };
      }
      throw e;
    }
  };
}

function blocking(splice) {
  return function blockingSplice(src, len) {
    this.subscribe().block();
    src.subscribe().block();
    return splice.call(this, src, len);
  };
}

const phaseDone = new Set(["done", "failed", "cancelled"]);

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const [source, target] = args.positional;
  const wasm = readFileSync(args.plugin);
  const { dir, sha } = await transpiled(wasm);
  console.error(`plugin ${args.plugin} sha256:${sha}`);
  if (args.prepare) {
    console.log(dir);
    return;
  }

  const { WASIShim } = await load("@bytecodealliance/preview2-shim/instantiation");
  const { streams } = await load("@bytecodealliance/preview2-shim/io");
  // Before any stream exists: the worker's buffer size applies to streams made after it.
  const splice = args.mainThreadSplice ? safeSplice : await workerSplice();
  streams.OutputStream.prototype.splice = splice;
  streams.OutputStream.prototype.blockingSplice = blocking(splice);

  const plugin = await import(pathToFileURL(join(dir, "hoist_plugin.js")).href);
  const imports = new WASIShim({
    // Workaround 3: without a sandbox the shim hands the guest Node's whole environment
    // (and arguments). Hoist's plugin needs none of it, and may not see a host's secrets.
    sandbox: { env: {}, args: [] },
  }).getImportObject();
  const instance = await plugin.instantiate(
    (name) => WebAssembly.compile(readFileSync(join(dir, name))),
    imports,
  );
  checkContract(plugin, instance);

  const importer = instance.importer ?? instance["hoist:plugin/importer@0.3.0"];
  let task;
  try {
    task = importer.Task.start({
      source,
      target,
      platforms: [],
      options: {
        endpoints: [],
        insecureRegistries: args.plainHttp,
        concurrency: 0,
        maxRetries: 0,
        chunkSize: undefined,
        mountFrom: [],
        copyForeignLayers: false,
        timeouts: undefined,
        hostCredentials: [],
        // Signatures, SBOMs and attestations travel with the image by default.
        referrers: { skip: false, artifactTypes: [], requireSignature: false },
        maxBytesPerSecond: 0n,
        maxRetryWaitMs: 0,
      },
      // Standalone use: credentials would go here, one per registry.
      credentials: [],
    });
  } catch (e) {
    fail(`the plugin refused the request: ${describe(e.payload ?? e)}`);
  }

  let interrupted = false;
  process.on("SIGINT", () => (interrupted = true));
  const started = performance.now();
  let longest = 0;
  let longestCall = 0;
  let calls = 0;
  let working = 0;
  let status;
  for (;;) {
    const before = performance.now();
    status = task.advance(args.budgetMs);
    const took = performance.now() - before;
    calls++;
    if (took > longest) [longest, longestCall] = [took, calls];
    working += took;
    const secs = ((performance.now() - started) / 1000).toFixed(1).padStart(6);
    console.error(
      `${secs}s ${status.phase}: ${status.bytesDone}/${status.bytesTotal} bytes, ` +
        `${status.blobsDone}/${status.blobsTotal} blobs`,
    );
    if (phaseDone.has(status.phase)) break;
    // `advance` blocks the main thread; let a signal handler run between calls.
    await new Promise((resolve) => setImmediate(resolve));
    if (interrupted) task.cancel();
  }
  console.error(`longest advance call: ${longest.toFixed(0)} ms (budget ${args.budgetMs} ms)`);
  const figures = {
    budgetMs: args.budgetMs,
    calls,
    longestMs: Number(longest.toFixed(1)),
    longestCall,
    totalMs: Number(working.toFixed(1)),
    bytes: Number(status.bytesDone),
  };
  console.error(`advance-calls ${JSON.stringify(figures)}`);
  // Dropping the handle frees the task (and would abort it, were it still running).
  task[Symbol.dispose]?.();

  if (status.phase === "done") {
    console.log(status.targetReference);
    process.exit(0);
  }
  console.error(`the import ended ${status.phase}: ${describe(status.error)}`);
  process.exit(1);
}

/** Refuses a plugin whose `hoist:plugin` exports are not at a version this host knows. */
function checkContract(plugin, instance) {
  const names = Object.keys(instance).filter((n) => n.startsWith("hoist:plugin/"));
  if (names.length === 0) fail("this component is not a Hoist plugin: it exports no hoist:plugin interface");
  for (const name of names) {
    const version = name.split("@")[1] ?? "";
    if (!CONTRACT_VERSION.test(version)) {
      fail(`this host needs hoist:plugin@0.3.x; the plugin exports ${name}`);
    }
  }
}

function describe(error) {
  if (!error) return "no error";
  if (typeof error.val === "string") return `${error.tag}: ${error.val}`;
  if (error.val?.message) return `${error.tag}: ${error.val.message}`;
  return JSON.stringify(error, (_, v) => (typeof v === "bigint" ? v.toString() : v));
}

await main();
