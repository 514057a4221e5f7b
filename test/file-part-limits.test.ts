import { expect, it } from "vitest";
import {
  call,
  createConversation,
  expectError,
  listMessages,
  newTag,
  newUser,
  standInRequests,
  streamTurn,
} from "./helpers/api";
import { dataUrl, filePart, jpegOf, pngOf, upload, VISION_MODEL } from "./helpers/images";
import { dbOf } from "./helpers/shards";

// MAX_FILES_PER_MESSAGE (4 by default, as in these tests): images per message, file parts and
// base64 data URLs together; one more is a 400 naming `content`, with nothing stored.
const MAX_FILES_PER_MESSAGE = 4;

async function uploads(userId: string, n: number) {
  return Promise.all(Array.from({ length: n }, (_, i) => upload(userId, jpegOf(100 + i, 100))));
}

it("a turn with one image too many is 400 naming content; at the limit it is answered", async () => {
  const alice = newUser("alice");
  const files = await uploads(alice, MAX_FILES_PER_MESSAGE + 1);
  const conv = await createConversation(alice, { model: VISION_MODEL });

  const tag = newTag();
  const over = await call(alice, "POST", `/conversations/${conv.id}/messages`, {
    content: [{ type: "text", text: `many [[stand-in tag=${tag}]]` }, ...files.map((f) => filePart(f.id))],
  });
  const error = await expectError(over, 400, "invalid_request", "content");
  expect(error.message).toContain(`at most ${MAX_FILES_PER_MESSAGE} images`);
  expect(await standInRequests(tag)).toEqual([]);
  expect(await listMessages(alice, conv.id)).toEqual([]);

  // Data URLs count too: three files and two inline images are five.
  const mixed = await call(alice, "POST", `/conversations/${conv.id}/messages`, {
    content: [
      ...files.slice(0, 3).map((f) => filePart(f.id)),
      { type: "image_url", image_url: { url: dataUrl("image/png", pngOf(10, 10, 200)) } },
      { type: "image_url", image_url: { url: dataUrl("image/png", pngOf(20, 20, 200)) } },
    ],
  });
  await expectError(mixed, 400, "invalid_request", "content");
  const stored = await dbOf(alice)
    .prepare("SELECT COUNT(*) AS n FROM files WHERE user_id = ?")
    .bind(alice)
    .first<{ n: number }>();
  expect(stored!.n).toBe(MAX_FILES_PER_MESSAGE + 1);

  const atLimit = newTag();
  const { events } = await streamTurn(alice, conv.id, {
    content: [
      { type: "text", text: `four [[stand-in tokens=2 tag=${atLimit}]]` },
      ...files.slice(0, MAX_FILES_PER_MESSAGE).map((f) => filePart(f.id)),
    ],
  });
  expect(events.at(-1)!.event).toBe("message.completed");
  const [req] = await standInRequests(atLimit);
  expect(req!.images.map((i) => i.sha256)).toEqual(
    files.slice(0, MAX_FILES_PER_MESSAGE).map((f) => f.sha256),
  );
});

it("/v1/chat/completions: one file part too many in a message is 400 naming that message's content", async () => {
  const alice = newUser("alice");
  const files = await uploads(alice, MAX_FILES_PER_MESSAGE + 1);
  const tag = newTag();
  const res = await call(alice, "POST", "/chat/completions", {
    model: VISION_MODEL,
    messages: [
      { role: "user", content: "hi" },
      { role: "assistant", content: "hello" },
      {
        role: "user",
        content: [{ type: "text", text: `[[stand-in tag=${tag}]]` }, ...files.map((f) => filePart(f.id))],
      },
    ],
  });
  await expectError(res, 400, "invalid_request", "messages.2.content");
  expect(await standInRequests(tag)).toEqual([]);
});

// MAX_INLINE_IMAGE_BYTES (150,000 in these tests; 16 MiB by default): with data URLs, a message's
// images together, and the images one request carries (newest first).
const MAX_INLINE_IMAGE_BYTES = 150_000;

it("a message whose images together exceed MAX_INLINE_IMAGE_BYTES is 413 naming content", async () => {
  const alice = newUser("alice");
  const files = await Promise.all([1, 2, 3].map((i) => upload(alice, jpegOf(100 * i, 100, 60_000))));
  expect(files.reduce((n, f) => n + f.bytes, 0)).toBeGreaterThan(MAX_INLINE_IMAGE_BYTES);
  const conv = await createConversation(alice, { model: VISION_MODEL });
  const tag = newTag();
  const res = await call(alice, "POST", `/conversations/${conv.id}/messages`, {
    content: [{ type: "text", text: `[[stand-in tag=${tag}]]` }, ...files.map((f) => filePart(f.id))],
  });
  await expectError(res, 413, "payload_too_large", "content");
  expect(await standInRequests(tag)).toEqual([]);
  expect(await listMessages(alice, conv.id)).toEqual([]);
});

it("a later turn resends the newest images within MAX_INLINE_IMAGE_BYTES; an older one reads as a note", async () => {
  const alice = newUser("alice");
  const [a, b, c] = await Promise.all([1, 2, 3].map((i) => upload(alice, jpegOf(100 * i, 100, 60_000))));
  const conv = await createConversation(alice, { model: VISION_MODEL });
  await streamTurn(alice, conv.id, {
    content: [filePart(a!.id), filePart(b!.id), { type: "text", text: "two [[stand-in tokens=2]]" }],
  });
  const tag = newTag();
  const { events } = await streamTurn(alice, conv.id, {
    content: [filePart(c!.id), { type: "text", text: `one more [[stand-in tokens=2 tag=${tag}]]` }],
  });
  expect(events.at(-1)!.event).toBe("message.completed");
  const [req] = await standInRequests(tag);
  // 60,000 + 60,000 fit in 150,000; the third (the oldest message's second) does not.
  expect(req!.images.map((i) => i.sha256)).toEqual([a!.sha256, c!.sha256]);
  const older = req!.body.messages.find((m) => m.role === "user")!;
  expect((older.content as { type: string; text?: string }[])[1]).toEqual({
    type: "text",
    text: "[an earlier image, not sent again]",
  });
});
