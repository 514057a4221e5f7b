import { env, exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { BASE, call, createConversation, newUser, parseSse } from "./helpers/api";
import { authHeaders } from "./helpers/auth";

/**
 * Every time the API returns is ISO 8601 UTC in whole seconds (../shared/API.md §2.5). The rule a
 * client must parse with is Swift's: `JSONDecoder.DateDecodingStrategy.iso8601` uses
 * `ISO8601DateFormatter` with `.withInternetDateTime` only (swift-corelibs-foundation,
 * Sources/Foundation/JSONEncoder.swift, `_iso8601Formatter`), that is exactly
 * `yyyy-MM-dd'T'HH:mm:ssZ`: no fractional seconds, and here always `Z`.
 */
const SWIFT_ISO8601 = /^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])T([01]\d|2[0-3]):[0-5]\d:[0-5]\dZ$/;
/** Anything that starts like a date-time, whatever follows: it must then be a whole one. */
const LOOKS_LIKE_TIME = /^\d{4}-\d{2}-\d{2}T/;

/** One time found in a response: where (array indices as `[]`) and its text. */
interface FoundTime {
  path: string;
  value: string;
}

/** Every member named `*_at` and every string that starts like a date-time, anywhere in `value`. */
function timesIn(value: unknown, path: string, out: FoundTime[] = []): FoundTime[] {
  if (Array.isArray(value)) {
    for (const item of value) timesIn(item, `${path}[]`, out);
  } else if (value !== null && typeof value === "object") {
    for (const [key, member] of Object.entries(value)) {
      const at = `${path}.${key}`;
      if (key.endsWith("_at") && member !== null && typeof member !== "string") {
        out.push({ path: at, value: JSON.stringify(member) });
      } else if (typeof member === "string" && (key.endsWith("_at") || LOOKS_LIKE_TIME.test(member))) {
        out.push({ path: at, value: member });
      } else {
        timesIn(member, at, out);
      }
    }
  } else if (typeof value === "string" && LOOKS_LIKE_TIME.test(value)) {
    out.push({ path, value });
  }
  return out;
}

/** A date-time SSE/JSON body of `res`, by its content type. */
async function bodyOf(res: Response): Promise<unknown> {
  const type = res.headers.get("content-type") ?? "";
  if (type.startsWith("text/event-stream")) return parseSse(await res.text()).events.map((e) => e.data);
  return res.json();
}

/** Collects the times of each response, labelled, and checks them all at the end. */
class TimeWalk {
  readonly found: FoundTime[] = [];
  readonly startedMs = Math.floor(Date.now() / 1000) * 1000;

  /** Reads `res` (status `status`), records its times under `label`, and returns its body. */
  async read<T = unknown>(label: string, res: Response, status = 200): Promise<T> {
    expect(res.status, label).toBe(status);
    const body = await bodyOf(res);
    timesIn(body, label, this.found);
    return body as T;
  }

  /** Each time in the Swift form, and a real time of this test run (cut to its second, not rounded). */
  check(): void {
    const endMs = Date.now();
    for (const { path, value } of this.found) {
      expect(value, path).toMatch(SWIFT_ISO8601);
      const ms = Date.parse(value);
      expect(ms, path).toBeGreaterThanOrEqual(this.startedMs);
      expect(ms, path).toBeLessThanOrEqual(endMs);
    }
  }

  paths(): Set<string> {
    return new Set(this.found.map((t) => t.path));
  }
}

const PNG = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 1, 2, 3, 4]);

describe("times", () => {
  it("every resource and event the API returns carries its times as yyyy-MM-dd'T'HH:mm:ssZ", async () => {
    const walk = new TimeWalk();
    const user = newUser("times");
    type Conv = { id: string };
    type Msg = { id: string; role: string };

    // Conversations, and the messages of turns (streamed and not), with their events.
    const conv = await walk.read<Conv>("conversation", await call(user, "POST", "/conversations", {}), 201);
    const streamed = await walk.read<{ assistant_message?: Msg }[]>(
      "events",
      await call(user, "POST", `/conversations/${conv.id}/messages`, {
        content: "about the lighthouse keeper [[stand-in tokens=3]]",
      }),
    );
    const answerId = streamed[0]?.assistant_message?.id;
    if (!answerId) throw new Error("no turn.started with the answer");
    await walk.read(
      "turn",
      await call(user, "POST", `/conversations/${conv.id}/messages`, {
        content: "and then [[stand-in tokens=2]]",
        stream: false,
      }),
    );
    await walk.read("events.resumed", await call(user, "GET", `/messages/${answerId}/events`));
    await walk.read("conversation.get", await call(user, "GET", `/conversations/${conv.id}`));
    await walk.read(
      "conversation.patch",
      await call(user, "PATCH", `/conversations/${conv.id}`, { title: "Times" }),
    );
    await walk.read("conversations", await call(user, "GET", "/conversations"));
    await walk.read("messages", await call(user, "GET", `/conversations/${conv.id}/messages`));
    await walk.read("message", await call(user, "GET", `/messages/${answerId}`));
    await walk.read("siblings", await call(user, "GET", `/messages/${answerId}/siblings`));
    await walk.read("message.stop", await call(user, "POST", `/messages/${answerId}/stop`));

    // Files.
    const form = new FormData();
    form.append("file", new Blob([PNG], { type: "image/png" }), "pixel.png");
    const upload = await exports.default.fetch(`${BASE}/files`, {
      method: "POST",
      headers: await authHeaders(user),
      body: form,
    });
    const file = await walk.read<{ id: string }>("file", upload, 201);
    await walk.read("file.get", await call(user, "GET", `/files/${file.id}`));

    // API keys: created, used (last_used_at), revoked (revoked_at).
    const key = await walk.read<{ id: string; key: string }>(
      "api_key.created",
      await call(user, "POST", "/api-keys", { name: "times" }),
      201,
    );
    const used = await exports.default.fetch(`${BASE}/conversations`, {
      headers: { authorization: `Bearer ${key.key}` },
    });
    expect(used.status).toBe(200);
    await used.text();
    expect((await call(user, "DELETE", `/api-keys/${key.id}`)).status).toBe(204);
    await walk.read("api_keys", await call(user, "GET", "/api-keys"));

    // Search, sync, usage, exports.
    await walk.read("search", await call(user, "GET", "/search?q=lighthouse"));
    await walk.read("sync", await call(user, "GET", "/sync"));
    await walk.read("usage", await call(user, "GET", "/usage"));
    await walk.read("export.conversation", await call(user, "GET", `/conversations/${conv.id}/export`));
    await walk.read("export.account", await call(user, "GET", "/account/export"));

    // The operators' view of a user.
    const admin = (method: string, path: string) =>
      exports.default.fetch(`http://localhost/admin/v1${path}`, {
        method,
        headers: { authorization: `Bearer ${env.ADMIN_TOKEN}` },
      });
    await walk.read("admin.block", await admin("POST", `/users/${user}/block`));
    await walk.read("admin.user", await admin("GET", `/users/${user}`));

    walk.check();
    // The walk saw each kind of time (so a renamed field or an empty page cannot pass unnoticed).
    const seen = walk.paths();
    for (const path of [
      "conversation.created_at",
      "conversation.updated_at",
      "events[].user_message.created_at",
      "events[].assistant_message.created_at",
      "events[].message.created_at",
      "events[].message.completed_at",
      "events.resumed[].message.completed_at",
      "turn.assistant_message.completed_at",
      "conversation.get.last_message_at",
      "conversation.patch.updated_at",
      "conversations.data[].last_message_at",
      "messages.data[].completed_at",
      "message.completed_at",
      "siblings.data[].created_at",
      "message.stop.completed_at",
      "file.created_at",
      "file.get.created_at",
      "api_key.created.created_at",
      "api_keys.data[].last_used_at",
      "api_keys.data[].revoked_at",
      "search.data[].created_at",
      "sync.changes[].data.updated_at",
      "sync.changes[].data.completed_at",
      "export.conversation.conversation.created_at",
      "export.conversation.messages[].created_at",
      "export.account.exported_at",
      "export.account.conversations[].messages[].completed_at",
      "admin.block.blocked_at",
      "admin.user.created_at",
    ]) {
      expect(seen, path).toContain(path);
    }
  });

  it("the OpenAPI document says so: every date-time schema has the whole-seconds pattern", async () => {
    const res = await exports.default.fetch("http://localhost/openapi.json");
    expect(res.status).toBe(200);
    const schemas: { pattern?: unknown; examples?: unknown }[] = [];
    const walk = (node: unknown): void => {
      if (Array.isArray(node)) node.forEach(walk);
      else if (node !== null && typeof node === "object") {
        if ((node as { format?: unknown }).format === "date-time") schemas.push(node);
        Object.values(node).forEach(walk);
      }
    };
    walk(await res.json());
    // Conversation (3), Message (2), File, ApiKey (3), CreatedApiKey, SearchHit, export, UserLimits (2).
    expect(schemas.length).toBeGreaterThanOrEqual(14);
    for (const schema of schemas) {
      expect(typeof schema.pattern).toBe("string");
      const pattern = new RegExp(String(schema.pattern), "u");
      expect(pattern.test("2026-11-30T09:15:04Z")).toBe(true);
      expect(pattern.test("2026-11-30T09:15:04.111Z")).toBe(false);
      expect(pattern.test("2026-11-30T09:15:04+00:00")).toBe(false);
      expect(schema.examples).toEqual(["2026-11-30T09:15:04Z"]);
    }
  });

  it("orders within a second by the time-ordered ids, which the whole-second times agree with", async () => {
    const user = newUser("times-order");
    const conv = await createConversation(user);
    // Three turns in a row: six messages, most of them within one second.
    for (const n of [1, 2, 3]) {
      const res = await call(user, "POST", `/conversations/${conv.id}/messages`, {
        content: `turn ${n} [[stand-in tokens=1]]`,
        stream: false,
      });
      expect(res.status).toBe(200);
      await res.text();
    }
    const res = await call(user, "GET", `/conversations/${conv.id}/messages?limit=100`);
    const { data } = (await res.json()) as { data: { id: string; created_at: string }[] };
    expect(data).toHaveLength(6);
    // The list is newest first: descending ids.
    const byId = [...data].sort((a, b) => (a.id < b.id ? -1 : 1));
    expect(data.map((m) => m.id)).toEqual(byId.map((m) => m.id).reverse());
    for (let i = 1; i < byId.length; i++) {
      expect(byId[i]!.created_at >= byId[i - 1]!.created_at).toBe(true);
    }
    // Some of them share a second, and the ids still tell their order.
    expect(new Set(data.map((m) => m.created_at)).size).toBeLessThan(data.length);
  });
});
