import { expect, it } from "vitest";
import {
  call,
  createConversation,
  expectError,
  listMessages,
  newTag,
  newUser,
  standInRequests,
} from "./helpers/api";
import { filePart, jpegOf, upload, VISION_MODEL } from "./helpers/images";
import { rowsOnAllShards } from "./helpers/shards";

// A file part must name a live file of the caller. Another user's file, an unknown id and a deleted
// file are the same 400, naming the part, and the turn stores nothing and calls no model.

async function messageFileRows(conversationId: string): Promise<number> {
  return (
    await rowsOnAllShards<{ n: number }>(
      "SELECT COUNT(*) AS n FROM message_files WHERE conversation_id = ?",
      conversationId,
    )
  ).reduce((total, row) => total + row.n, 0);
}

it("another user's file, an unknown id and a deleted file: one 400 naming the part, nothing stored, no upstream call", async () => {
  const alice = newUser("alice");
  const mallory = newUser("mallory");
  const alicesPhoto = await upload(alice, jpegOf(640, 480));
  const deleted = await upload(mallory, jpegOf(640, 480));
  expect((await call(mallory, "DELETE", `/files/${deleted.id}`)).status).toBe(204);
  const conv = await createConversation(mallory, { model: VISION_MODEL });

  const messages = new Set<string>();
  for (const fileId of [alicesPhoto.id, "0190b6f0-0000-7000-8000-000000000000", deleted.id, "not-an-id"]) {
    const tag = newTag();
    const res = await call(mallory, "POST", `/conversations/${conv.id}/messages`, {
      content: [{ type: "text", text: `whose? [[stand-in tag=${tag}]]` }, filePart(fileId)],
    });
    const error = await expectError(res, 400, "invalid_request", "content.1.file.file_id");
    messages.add(error.message);
    expect(await standInRequests(tag)).toEqual([]);
  }
  // The same sentence every time: it tells nothing of whether the file exists or whose it is.
  expect(messages.size).toBe(1);
  expect([...messages][0]).not.toContain(alicesPhoto.id);
  expect(await listMessages(mallory, conv.id)).toEqual([]);
  expect(await messageFileRows(conv.id)).toBe(0);
  // Alice's file is untouched and still hers alone.
  expect((await call(mallory, "GET", `/files/${alicesPhoto.id}`)).status).toBe(404);
  expect((await call(alice, "GET", `/files/${alicesPhoto.id}`)).status).toBe(200);
});

it("one foreign file among the caller's own refuses the whole message", async () => {
  const alice = newUser("alice");
  const mallory = newUser("mallory");
  const own = await upload(mallory, jpegOf(100, 100));
  const foreign = await upload(alice, jpegOf(100, 100));
  const conv = await createConversation(mallory, { model: VISION_MODEL });
  const res = await call(mallory, "POST", `/conversations/${conv.id}/messages`, {
    content: [filePart(own.id), { type: "text", text: "both" }, filePart(foreign.id)],
  });
  await expectError(res, 400, "invalid_request", "content.2.file.file_id");
  expect(await listMessages(mallory, conv.id)).toEqual([]);
  expect(await messageFileRows(conv.id)).toBe(0);
});

it("a malformed file part is 400 naming its field", async () => {
  const alice = newUser("alice");
  const conv = await createConversation(alice, { model: VISION_MODEL });
  const res = await call(alice, "POST", `/conversations/${conv.id}/messages`, {
    content: [
      { type: "text", text: "x" },
      { type: "file", file: { id: "abc" } },
    ],
  });
  await expectError(res, 400, "invalid_request", "content.1.file.file_id");
});
