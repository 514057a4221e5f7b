import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { expectError, newUser } from "./helpers/api";
import { BODY_ROUTES, countedStream, jsonBytes, sendBody } from "./helpers/json-routes";

const LIMIT = Number(env.MAX_BODY_BYTES);
describe.each(BODY_ROUTES)("$name", ({ prepare }) => {
  it("answers a 10 MB chunked body with 413 payload_too_large after reading it to its end, and stores nothing", async () => {
    const route = await prepare(newUser("size"));
    const { stream, state } = countedStream(10 * 1024 * 1024);
    const res = await sendBody(route, stream, "application/json");
    const error = await expectError(res, 413, "payload_too_large");
    expect(error.message).toContain(String(LIMIT));
    // A proxy in front (wrangler dev's, and any HTTP/1.1 client still sending) turns a response
    // sent before the request was read into a connection reset; the body is read, not cut off.
    expect(state).toEqual({ pulled: 10 * 1024 * 1024, cancelled: false });
    await route.expectNothingStored();
  });

  it("answers a declared Content-Length over the limit with 413, and stores nothing", async () => {
    const route = await prepare(newUser("size"));
    const body = new Uint8Array(LIMIT + 1).fill(0x20);
    const res = await sendBody(route, body, "application/json");
    await expectError(res, 413, "payload_too_large");
    await route.expectNothingStored();
  });

  it("counts the bytes that arrive, not the Content-Length a client claims", async () => {
    const route = await prepare(newUser("size"));
    const body = new Uint8Array(2 * LIMIT).fill(0x20);
    const res = await sendBody(route, body, "application/json", { "content-length": "20" });
    await expectError(res, 413, "payload_too_large");
    await route.expectNothingStored();
  });

  it("accepts a chunked body within the limit", async () => {
    const route = await prepare(newUser("size"));
    const bytes = jsonBytes(route.valid);
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(bytes.subarray(0, 5));
        controller.enqueue(bytes.subarray(5));
        controller.close();
      },
    });
    const res = await sendBody(route, stream, "application/json");
    expect(res.status, await res.clone().text()).toBeLessThan(300);
  });
});
