// Runs inside preview2-shim's I/O worker thread, loaded through the shim's public
// `@bytecodealliance/preview2-shim/io-worker` extension call (see import.mjs). Two things:
//
// 1. Stream buffers. The shim creates the outgoing HTTP body as a Node `PassThrough` with
//    Node's default 16 KiB high-water mark, so `check-write` never allows more than 16 KiB
//    and every 16 KiB of a blob costs a round of synchronous calls from the main thread to
//    this worker. Raising the worker's default high-water mark before any stream exists
//    lets each call move up to 1 MiB (response bodies are read in larger pieces too).
//    Memory stays bounded: a stream buffers at most that much.
//
// 2. Splice in one round trip. The shim's own `splice` is broken (import.mjs says how);
//    this does what WASI defines, check-write then read then write, here in the worker
//    where the streams live, instead of three synchronous calls from the main thread.

import { getDefaultHighWaterMark, setDefaultHighWaterMark } from "node:stream";

const BUFFER = 1 << 20;

export default function create(context) {
  return (operation, args) => {
    switch (operation) {
      case "init":
        setDefaultHighWaterMark(false, Math.max(BUFFER, getDefaultHighWaterMark(false)));
        return getDefaultHighWaterMark(false);
      case "splice":
        return splice(context, ...args);
      default:
        throw new Error(`unknown operation ${operation}`);
    }
  };
}

/** WASI's `output-stream.splice`: at most `len` bytes, at most what check-write allows. */
function splice(context, outId, inId, len) {
  const out = context.getStream(outId); // throws {tag: "closed"} once the stream is gone
  const input = context.getStream(inId);
  const room = out.writableHighWaterMark - out.writableLength;
  const want = Math.min(room, input.readableLength, Number(len));
  if (want <= 0) {
    // Nothing to move now. A finished source is the end of the stream, as `read` says.
    if (input.readableLength === 0 && input.readableEnded) throw { tag: "closed" };
    return 0n;
  }
  const chunk = input.read(want);
  if (chunk === null) return 0n;
  // An HTTP body with a Content-Length counts down what it may still take, as the shim's
  // own write does.
  if (typeof out.bytesRemaining === "number") {
    out.bytesRemaining -= chunk.byteLength;
    if (out.bytesRemaining < 0) {
      throw {
        tag: "last-operation-failed",
        val: { message: "the request body is longer than its Content-Length" },
      };
    }
  }
  out.write(chunk);
  return BigInt(chunk.byteLength);
}
