import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { fnv1a64, jumpHash, shardDatabases, shardIndex } from "../src/store/shards";

describe("user shard hash", () => {
  it("is FNV-1a 64 over UTF-8 (the published test vectors)", () => {
    // Vectors from the FNV reference test suite (fnv1a 64: "", "a", "foobar").
    expect(fnv1a64("")).toBe(0xcbf29ce484222325n);
    expect(fnv1a64("a")).toBe(0xaf63dc4c8601ec8cn);
    expect(fnv1a64("foobar")).toBe(0x85944171f73967e8n);
  });

  it("moves only the users that go to the new shard when a shard is added", () => {
    const users = Array.from({ length: 4000 }, (_, i) => `user-${i}`);
    for (const n of [1, 2, 3, 7]) {
      let moved = 0;
      for (const user of users) {
        const before = shardIndex(user, n);
        const after = shardIndex(user, n + 1);
        if (before !== after) {
          moved++;
          expect(after).toBe(n);
        }
      }
      // Expected share 1/(n+1); allow ±30% of it for 4,000 samples.
      const share = moved / users.length;
      expect(share).toBeGreaterThan((1 / (n + 1)) * 0.7);
      expect(share).toBeLessThan((1 / (n + 1)) * 1.3);
    }
  });

  it("spreads users evenly and stays in range", () => {
    const counts = [0, 0, 0];
    for (let i = 0; i < 3000; i++) counts[jumpHash(fnv1a64(`u${i}`), 3)]!++;
    for (const c of counts) expect(c).toBeGreaterThan(800);
  });

  it("reads the shard bindings in order, DB first", () => {
    const shards = shardDatabases(env);
    expect(shards[0]).toBe(env.DB);
  });
});
