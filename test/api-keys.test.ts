import { env, exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { ApiKeyView } from "../src/resources/api-key";
import { BASE, call, createConversation, eventually, expectError, newUser } from "./helpers/api";
import { authHeaders } from "./helpers/auth";
import { dbOf } from "./helpers/shards";

interface CreatedKey {
  id: string;
  name: string | null;
  prefix: string;
  key: string;
  created_at: string;
}

type ListedKey = ApiKeyView;

/** Calls the Worker with an API key (or any bearer) instead of a JWT. */
function withKey(key: string, method: string, path: string, body?: unknown): Promise<Response> {
  const headers: Record<string, string> = { authorization: `Bearer ${key}` };
  if (body !== undefined) headers["content-type"] = "application/json";
  return exports.default.fetch(`${BASE}${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

async function createKey(userId: string, body?: unknown): Promise<CreatedKey> {
  const res = await call(userId, "POST", "/api-keys", body);
  expect(res.status).toBe(201);
  return (await res.json()) as CreatedKey;
}

async function listKeys(userId: string): Promise<ListedKey[]> {
  const res = await call(userId, "GET", "/api-keys");
  expect(res.status).toBe(200);
  return ((await res.json()) as { data: ListedKey[] }).data;
}

/** SHA-256 hex, computed here independently of the Worker's code. */
async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** A well-formed key that was never issued. */
function randomKey(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  return (
    "ec_" +
    btoa(String.fromCharCode(...bytes))
      .replace(/\+/g, "-")
      .replace(/\//g, "_")
      .replace(/=+$/, "")
  );
}

/** Waits until the Worker has cached the key's lookup in KV (it is written after the response). */
function cachedLookup(key: string): Promise<Record<string, unknown>> {
  return eventually(async () =>
    env.CACHE.get<Record<string, unknown>>(`apikey:${await sha256Hex(key)}`, "json"),
  );
}

describe("API keys", () => {
  it("are created, authenticate as their owner, list without the secret, and stop working when revoked", async () => {
    const alice = newUser("alice");
    const conv = await createConversation(alice, { title: "made with a JWT" });
    const created = await createKey(alice, { name: "backend" });
    expect(created.key).toMatch(/^ec_[A-Za-z0-9_-]{43}_[0-9a-f]{16}$/);
    expect(created.prefix).toBe(created.key.slice(0, 11));
    expect(created.name).toBe("backend");

    // The key acts as alice: it sees her conversation and can create one.
    const listed = await withKey(created.key, "GET", "/conversations");
    expect(listed.status).toBe(200);
    expect(((await listed.json()) as { data: { id: string }[] }).data.map((c) => c.id)).toEqual([conv.id]);
    const made = await withKey(created.key, "POST", "/conversations", { title: "made with a key" });
    expect(made.status).toBe(201);

    // Lists show the prefix, never the key nor its hash; API keys may list too.
    const res = await withKey(created.key, "GET", "/api-keys");
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text).not.toContain(created.key);
    expect(text).not.toContain(await sha256Hex(created.key));
    const [entry] = (JSON.parse(text) as { data: ListedKey[] }).data;
    expect(Object.keys(entry!).sort()).toEqual([
      "created_at",
      "id",
      "last_used_at",
      "name",
      "prefix",
      "revoked_at",
    ]);
    expect(entry).toMatchObject({
      id: created.id,
      name: "backend",
      prefix: created.prefix,
      created_at: created.created_at,
      revoked_at: null,
    });

    await cachedLookup(created.key);
    const revoked = await call(alice, "DELETE", `/api-keys/${created.id}`);
    expect(revoked.status).toBe(204);
    // The revoking location dropped its cached lookup, so the refusal is immediate here.
    const refused = await withKey(created.key, "GET", "/conversations");
    await expectError(refused, 401, "unauthorized");
    expect(refused.headers.get("www-authenticate")).toBe('Bearer error="invalid_token"');
    const [after] = await listKeys(alice);
    expect(after!.revoked_at).not.toBeNull();
    // Revoking again changes nothing.
    expect((await call(alice, "DELETE", `/api-keys/${created.id}`)).status).toBe(204);
    expect((await listKeys(alice))[0]!.revoked_at).toBe(after!.revoked_at);
  });

  it("refuses wrong, altered and malformed keys", async () => {
    const alice = newUser("alice");
    const { key } = await createKey(alice);
    const last = key.at(-1) === "A" ? "B" : "A";
    for (const wrong of [randomKey(), key.slice(0, -1) + last, "ec_short", `${key}x`]) {
      await expectError(await withKey(wrong, "GET", "/conversations"), 401, "unauthorized");
    }
    // A well-formed unknown key is remembered as unknown, so guessing does not read D1 each time.
    const guess = randomKey();
    await expectError(await withKey(guess, "GET", "/conversations"), 401, "unauthorized");
    expect(await cachedLookup(guess)).toEqual({ unknown: true });
    expect((await withKey(key, "GET", "/conversations")).status).toBe(200);
  });

  it("cannot create or revoke keys (those need the sign-in token)", async () => {
    const alice = newUser("alice");
    const first = await createKey(alice);
    const second = await createKey(alice, { name: "other" });
    await expectError(await withKey(first.key, "POST", "/api-keys", { name: "escalated" }), 403, "forbidden");
    await expectError(await withKey(first.key, "DELETE", `/api-keys/${second.id}`), 403, "forbidden");
    const keys = await listKeys(alice);
    expect(keys.map((k) => k.id)).toEqual([second.id, first.id]);
    expect(keys.every((k) => k.revoked_at === null)).toBe(true);
  });

  it("stores only the key's SHA-256 in D1", async () => {
    const alice = newUser("alice");
    const { id, key } = await createKey(alice);
    const row = await dbOf(alice)
      .prepare("SELECT * FROM api_keys WHERE id = ?")
      .bind(id)
      .first<Record<string, unknown>>();
    expect(row).not.toBeNull();
    expect(row!.key_hash).toBe(await sha256Hex(key));
    expect(row!.user_id).toBe(alice);
    for (const value of Object.values(row!)) {
      expect(String(value)).not.toContain(key);
      expect(String(value)).not.toContain(key.slice(11));
    }
  });

  it("authenticates a warm key from its KV entry alone", async () => {
    const alice = newUser("alice");
    const { id, key } = await createKey(alice);
    expect((await withKey(key, "GET", "/conversations")).status).toBe(200);
    expect(await cachedLookup(key)).toMatchObject({ user_id: alice, key_id: id, revoked: false });
    // With the row gone from D1, only the cached lookup can still vouch for the key.
    await dbOf(alice).prepare("DELETE FROM api_keys WHERE id = ?").bind(id).run();
    expect((await withKey(key, "GET", "/conversations")).status).toBe(200);
    // Once the cached entry is gone, D1 is asked again and the key is unknown.
    await env.CACHE.delete(`apikey:${await sha256Hex(key)}`);
    await expectError(await withKey(key, "GET", "/conversations"), 401, "unauthorized");
  });

  it("records when a key was last used", async () => {
    const alice = newUser("alice");
    const { id, key } = await createKey(alice);
    expect((await listKeys(alice))[0]!.last_used_at).toBeNull();
    const before = Date.now();
    expect((await withKey(key, "GET", "/conversations")).status).toBe(200);
    const used = await eventually(async () => (await listKeys(alice)).find((k) => k.id === id)?.last_used_at);
    expect(Date.parse(used)).toBeGreaterThanOrEqual(before - 1000);
  });

  it("are scoped to their owner", async () => {
    const alice = newUser("alice");
    const bob = newUser("bob");
    const alices = await createKey(alice);
    expect(await listKeys(bob)).toEqual([]);
    await expectError(await call(bob, "DELETE", `/api-keys/${alices.id}`), 404, "not_found");
    await expectError(await call(bob, "DELETE", "/api-keys/not-an-id"), 404, "not_found");
    // Bob's key sees Bob's data only.
    const bobs = await createKey(bob);
    const res = await withKey(bobs.key, "GET", "/conversations");
    expect(((await res.json()) as { data: unknown[] }).data).toEqual([]);
    expect((await withKey(alices.key, "GET", "/conversations")).status).toBe(200);
  });

  it("validates the name and allows a request without a body", async () => {
    const alice = newUser("alice");
    const res = await exports.default.fetch(`${BASE}/api-keys`, {
      method: "POST",
      headers: await authHeaders(alice),
    });
    expect(res.status).toBe(201);
    expect(((await res.json()) as CreatedKey).name).toBeNull();
    await expectError(
      await call(alice, "POST", "/api-keys", { name: "x".repeat(101) }),
      400,
      "invalid_request",
      "name",
    );
    await expectError(
      await call(alice, "POST", "/api-keys", { name: "ok", scopes: [] }),
      400,
      "invalid_request",
    );
  });
});
