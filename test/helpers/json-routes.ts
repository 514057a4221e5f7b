import { env, exports } from "cloudflare:workers";
import { expect } from "vitest";
import { BASE, call, createConversation, newTag, standInRequests } from "./api";
import { authHeaders } from "./auth";

/** One request to a route that takes a JSON body, prepared for one user. */
export interface PreparedBodyRoute {
  method: string;
  url: string;
  /** `authorization` and any other header the route needs, without `content-type`. */
  headers: Record<string, string>;
  /** A body the route accepts. */
  valid: Record<string, unknown>;
  /** A body the route accepts that carries `text` in a string field, where the route has one. */
  withText?: (text: string) => Record<string, unknown>;
  /** Fails unless the route's request left nothing behind (no row, no upstream call). */
  expectNothingStored: () => Promise<void>;
}

/** A route that takes a JSON body. */
export interface BodyRoute {
  name: string;
  prepare: (userId: string) => Promise<PreparedBodyRoute>;
}

const ADMIN = "http://localhost/admin/v1";
const adminHeaders = () => ({ authorization: `Bearer ${env.ADMIN_TOKEN ?? ""}` });

async function expectNoSuchUser(userId: string): Promise<void> {
  const res = await exports.default.fetch(`${ADMIN}/users/${userId}`, { headers: adminHeaders() });
  expect(res.status).toBe(404);
}

/** Every route where a JSON body enters edge-chat. */
export const BODY_ROUTES: BodyRoute[] = [
  {
    name: "POST /v1/conversations",
    prepare: async (userId) => ({
      method: "POST",
      url: `${BASE}/conversations`,
      headers: await authHeaders(userId),
      valid: { title: "new" },
      withText: (text) => ({ title: text }),
      expectNothingStored: async () => {
        const res = await call(userId, "GET", "/conversations?archived=all");
        expect(((await res.json()) as { data: unknown[] }).data).toEqual([]);
      },
    }),
  },
  {
    name: "PATCH /v1/conversations/{id}",
    prepare: async (userId) => {
      const conv = await createConversation(userId, { title: "before" });
      return {
        method: "PATCH",
        url: `${BASE}/conversations/${conv.id}`,
        headers: await authHeaders(userId),
        valid: { title: "after" },
        withText: (text) => ({ title: text }),
        expectNothingStored: async () => {
          const res = await call(userId, "GET", `/conversations/${conv.id}`);
          expect(await res.json()).toEqual(conv);
        },
      };
    },
  },
  {
    name: "POST /v1/conversations/{id}/messages",
    prepare: async (userId) => {
      const conv = await createConversation(userId);
      return {
        method: "POST",
        url: `${BASE}/conversations/${conv.id}/messages`,
        headers: await authHeaders(userId),
        valid: { content: "hello", stream: false },
        withText: (text) => ({ content: text, stream: false }),
        expectNothingStored: async () => {
          const res = await call(userId, "GET", `/conversations/${conv.id}/messages`);
          expect(((await res.json()) as { data: unknown[] }).data).toEqual([]);
        },
      };
    },
  },
  {
    name: "POST /v1/chat/completions",
    prepare: async (userId) => {
      const tag = newTag();
      const ask = (text: string) => ({
        model: "qwen-plus",
        messages: [{ role: "user", content: `${text} [[stand-in tag=${tag}]]` }],
      });
      return {
        method: "POST",
        url: `${BASE}/chat/completions`,
        headers: await authHeaders(userId),
        valid: ask("hi"),
        withText: ask,
        expectNothingStored: async () => expect(await standInRequests(tag)).toEqual([]),
      };
    },
  },
  {
    name: "POST /v1/api-keys",
    prepare: async (userId) => ({
      method: "POST",
      url: `${BASE}/api-keys`,
      headers: await authHeaders(userId),
      valid: { name: "server" },
      withText: (text) => ({ name: text }),
      expectNothingStored: async () => {
        const res = await call(userId, "GET", "/api-keys");
        expect(((await res.json()) as { data: unknown[] }).data).toEqual([]);
      },
    }),
  },
  {
    name: "PUT /admin/v1/users/{userId}/budget",
    prepare: async (userId) => ({
      method: "PUT",
      url: `${ADMIN}/users/${userId}/budget`,
      headers: adminHeaders(),
      valid: { daily_token_budget: 1000 },
      expectNothingStored: () => expectNoSuchUser(userId),
    }),
  },
  {
    name: "PUT /admin/v1/users/{userId}/rate-limit",
    prepare: async (userId) => ({
      method: "PUT",
      url: `${ADMIN}/users/${userId}/rate-limit`,
      headers: adminHeaders(),
      valid: { tier: "relaxed" },
      expectNothingStored: () => expectNoSuchUser(userId),
    }),
  },
];

/** Sends `body` to a prepared route with `content-type` as given (none when undefined). */
export function sendBody(
  route: PreparedBodyRoute,
  body: BodyInit,
  contentType: string | undefined,
  extraHeaders: Record<string, string> = {},
): Promise<Response> {
  const headers = {
    ...route.headers,
    ...extraHeaders,
    ...(contentType === undefined ? {} : { "content-type": contentType }),
  };
  return exports.default.fetch(route.url, { method: route.method, headers, body });
}

/** The UTF-8 bytes of `value` as JSON: a body that carries no `Content-Type` of its own. */
export const jsonBytes = (value: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(value));

/**
 * A body for `route` whose JSON is well-formed except for `bytes` (not valid UTF-8) inside a string:
 * a string field's value where the route has one, else an extra key.
 */
export function bodyWithBytes(route: PreparedBodyRoute, bytes: number[]): Uint8Array {
  const marker = "\u2063MARK\u2063";
  const body = route.withText ? route.withText(`a${marker}b`) : { ...route.valid, [marker]: 1 };
  const [before = "", after = ""] = JSON.stringify(body).split(marker);
  const encoder = new TextEncoder();
  return new Uint8Array([...encoder.encode(before), ...bytes, ...encoder.encode(after)]);
}

const CHUNK_BYTES = 64 * 1024;

/**
 * A request body of `total` bytes (a JSON string that never ends, so only its size can refuse it),
 * streamed in chunks with no Content-Length (chunked transfer encoding on the wire). It records how
 * far it was read and whether the reader gave up on it.
 */
export function countedStream(total: number) {
  const state = { pulled: 0, cancelled: false };
  const chunk = new TextEncoder().encode("a".repeat(CHUNK_BYTES));
  const stream = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(new TextEncoder().encode('{"x":"'));
    },
    pull(controller) {
      if (state.pulled >= total) return controller.close();
      const size = Math.min(CHUNK_BYTES, total - state.pulled);
      state.pulled += size;
      controller.enqueue(size === CHUNK_BYTES ? chunk : chunk.subarray(0, size));
    },
    cancel() {
      state.cancelled = true;
    },
  });
  return { stream, state };
}
