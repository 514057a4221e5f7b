import { env, exports } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { app } from "../src/app";
import { formatLog } from "../src/log/log";
import { call, createConversation, newUser } from "./helpers/api";
import { tokenFor } from "./helpers/auth";

afterEach(() => vi.restoreAllMocks());

/** The JSON lines a console spy has seen. */
const linesOf = (spy: { mock: { calls: unknown[][] } }) =>
  spy.mock.calls
    .map((args) => String(args[0]))
    .flatMap((line) => {
      try {
        return [JSON.parse(line) as Record<string, unknown>];
      } catch {
        return [];
      }
    });

describe("log lines", () => {
  it("a turn's turn.finished line has level and event first and carries its request, user, conversation and message", async () => {
    const log = vi.spyOn(console, "log");
    const alice = newUser("log");
    const conv = await createConversation(alice);
    const res = await call(alice, "POST", `/conversations/${conv.id}/messages`, {
      content: "hi [[stand-in tokens=3]]",
      stream: false,
    });
    expect(res.status).toBe(200);
    const { assistant_message } = (await res.json()) as { assistant_message: { id: string } };
    const requestId = res.headers.get("x-request-id");
    expect(requestId).toBeTruthy();
    const line = linesOf(log).find(
      (l) => l.event === "turn.finished" && l.message_id === assistant_message.id,
    );
    expect(line).toBeDefined();
    expect(Object.keys(line!).slice(0, 2)).toEqual(["level", "event"]);
    expect(line).toMatchObject({
      level: "info",
      request_id: requestId,
      user_id: alice,
      conversation_id: conv.id,
      status: "completed",
    });
  });

  it("an error line written while handling a request carries that request's id, never its token", async () => {
    const error = vi.spyOn(console, "error").mockImplementation(() => {});
    const token = await tokenFor(newUser("log"));
    // Without an issuer, auth refuses every request and logs why.
    const res = await app.request(
      "http://localhost/v1/conversations",
      { headers: { authorization: `Bearer ${token}` } },
      { ...env, AUTH_ISSUER: "" },
    );
    expect(res.status).toBe(401);
    const [line, ...others] = linesOf(error);
    expect(others).toEqual([]);
    expect(line).toMatchObject({
      level: "error",
      event: "auth.not_configured",
      request_id: res.headers.get("x-request-id"),
    });
    expect(JSON.stringify(error.mock.calls)).not.toContain(token);
  });

  it.each([
    ["a refused request", "GET", "/v1/conversations", 401],
    ["an unknown route", "GET", "/v1/nowhere", 404],
    ["an invalid body", "POST", "/v1/conversations", 400],
  ])("%s answers with its X-Request-Id, as a success does", async (_, method, path, status) => {
    const alice = newUser("log");
    const headers: Record<string, string> =
      status === 401
        ? { authorization: "Bearer nope" }
        : { authorization: `Bearer ${await tokenFor(alice)}` };
    const init: RequestInit = { method, headers: { ...headers, "content-type": "application/json" } };
    if (method === "POST") init.body = "{";
    const res = await exports.default.fetch(`http://localhost${path}`, init);
    expect(res.status).toBe(status);
    expect(res.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
  });

  it("redacts bearer tokens, JWTs and keys that an error text carries", () => {
    const jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl";
    const apiKey = `ec_${"A".repeat(43)}`;
    const line = formatLog("error", "x.failed", {
      error: new Error(`fetch failed: Authorization: Bearer ${jwt} key ${apiKey} upstream sk-abcdef123456`),
      message: `token ${jwt}`,
    });
    expect(line).not.toContain(jwt);
    expect(line).not.toContain(apiKey);
    expect(line).not.toContain("sk-abcdef123456");
    expect(JSON.parse(line)).toMatchObject({ level: "error", event: "x.failed" });
  });
});
