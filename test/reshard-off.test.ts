import { env, exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { isReadOnly } from "../src/store/reshard-routing";
import { shardDatabases, shardIndex, userDb } from "../src/store/shards";
import { expectError, newUser } from "./helpers/api";

// Without RESHARD_FROM (the `workers` project; test/reshard.test.ts runs a reshard): routing is
// the plain shard choice and the reshard route refuses to run.
const reshard = (body: string, token = env.ADMIN_TOKEN!) =>
  exports.default.fetch("http://localhost/admin/v1/reshard", {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body,
  });

describe("no reshard configured", () => {
  it("routes every user straight to their shard's binding, with no forwarding", () => {
    const shards = shardDatabases(env);
    for (let i = 0; i < 50; i++) {
      const user = newUser("plain");
      expect(userDb(env, user)).toBe(shards[shardIndex(user, shards.length)]);
    }
  });

  it("refuses POST /admin/v1/reshard with 409, a bad body with 400, a user's token with 401", async () => {
    await expectError(await reshard("{}"), 409, "conflict");
    await expectError(await reshard('{"max_users": 0}'), 400, "invalid_request", "max_users");
    await expectError(await reshard('{"cursor": {"shard": -1, "after": ""}}'), 400, "invalid_request");
    await expectError(await reshard("{}", "not-the-admin-token"), 401, "unauthorized");
  });

  it("tells a forwarded user's reads from writes by the statement's first keyword", () => {
    for (const read of [
      "SELECT 1",
      "  -- why\n select id FROM users",
      "/* c */ WITH x AS (SELECT 1) SELECT * FROM x",
    ])
      expect(isReadOnly(read), read).toBe(true);
    for (const write of [
      "INSERT INTO users (id) VALUES (?)",
      "update users SET blocked_at = 1",
      "DELETE FROM files",
      "WITH x AS (SELECT 1) INSERT INTO t SELECT * FROM x",
      "REPLACE INTO t VALUES (1)",
      "PRAGMA optimize",
    ])
      expect(isReadOnly(write), write).toBe(false);
  });
});
