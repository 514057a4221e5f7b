import { env, exports } from "cloudflare:workers";
import { expect, it } from "vitest";
import { call, createConversation, expectError, newUser } from "./helpers/api";
import { filePart, jpegOf, upload, VISION_MODEL } from "./helpers/images";
import { rowsOnAllShards } from "./helpers/shards";

// A turn that is taken back after its commit (refused by the rate limiter, whose answer arrives
// with the commit) takes its file references with it: the file counts as unattached again, so
// the TTL sweep can delete it. The strict tier allows 3 requests a minute in tests.
const STRICT_LIMIT = 3;

async function setStrictTier(userId: string): Promise<void> {
  const res = await exports.default.fetch(`http://localhost/admin/v1/users/${userId}/rate-limit`, {
    method: "PUT",
    headers: { authorization: `Bearer ${env.ADMIN_TOKEN}`, "content-type": "application/json" },
    body: JSON.stringify({ tier: "strict" }),
  });
  expect(res.status).toBe(200);
}

const references = async (fileId: string) =>
  // The file's rows are on its owner's shard; any shard is counted.
  (
    await rowsOnAllShards<{ n: number }>("SELECT COUNT(*) AS n FROM message_files WHERE file_id = ?", fileId)
  ).reduce((total, row) => total + row.n, 0);

it("a turn refused after its commit leaves no reference to its file", async () => {
  // The local limiter's windows follow the wall clock: a run that straddles a minute boundary
  // starts counting again halfway and is repeated once.
  for (let tries = 0; ; tries++) {
    const minute = Math.floor(Date.now() / 60_000);
    const alice = newUser("alice");
    await setStrictTier(alice);
    const file = await upload(alice, jpegOf(64, 64));
    const conv = await createConversation(alice, { model: VISION_MODEL });
    for (let i = 0; i < STRICT_LIMIT; i++) {
      const res = await call(alice, "POST", `/conversations/${conv.id}/messages`, {
        content: "hi [[stand-in tokens=2]]",
        stream: false,
      });
      expect(res.status).toBe(200);
    }
    const refused = await call(alice, "POST", `/conversations/${conv.id}/messages`, {
      content: [{ type: "text", text: "look [[stand-in tokens=2]]" }, filePart(file.id)],
      stream: false,
    });
    if (Math.floor(Date.now() / 60_000) !== minute && tries === 0) continue;
    await expectError(refused, 429, "rate_limited");
    expect(await references(file.id)).toBe(0);
    // The file itself is untouched: still the caller's, still attachable.
    expect((await call(alice, "GET", `/files/${file.id}`)).status).toBe(200);
    return;
  }
});
