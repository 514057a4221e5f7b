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
import { dataUrl, filePart, jpegOf, upload, VISION_MODEL } from "./helpers/images";

// A model that cannot see images (not Qwen-VL, QVQ, Qwen-Omni or Qwen3.5/3.6: src/chat/models.ts)
// gets a 400 naming `model` before anything is stored or sent, whether the image is a file part, an
// image_url part, or only in the history; on both endpoints.
const TEXT_MODEL = "qwen-plus";

it("a turn with a file part or an image_url part for a text-only model is 400 naming model", async () => {
  const alice = newUser("alice");
  const file = await upload(alice, jpegOf(200, 200));
  const conv = await createConversation(alice, { model: TEXT_MODEL });
  for (const part of [
    filePart(file.id),
    { type: "image_url", image_url: { url: "https://example.com/cat.jpg" } },
    { type: "image_url", image_url: { url: dataUrl("image/jpeg", jpegOf(20, 20, 300)) } },
  ]) {
    const tag = newTag();
    const res = await call(alice, "POST", `/conversations/${conv.id}/messages`, {
      content: [{ type: "text", text: `see [[stand-in tag=${tag}]]` }, part],
    });
    const error = await expectError(res, 400, "invalid_request", "model");
    expect(error.message).toContain(`"${TEXT_MODEL}" cannot read images`);
    expect(await standInRequests(tag)).toEqual([]);
  }
  expect(await listMessages(alice, conv.id)).toEqual([]);
});

it("an image only in the history refuses a turn asked of a text-only model; the vision model still answers", async () => {
  const alice = newUser("alice");
  const file = await upload(alice, jpegOf(200, 200));
  const conv = await createConversation(alice, { model: VISION_MODEL });
  await streamTurn(alice, conv.id, {
    content: [filePart(file.id), { type: "text", text: "a [[stand-in tokens=2]]" }],
  });
  const before = await listMessages(alice, conv.id);

  const tag = newTag();
  const res = await call(alice, "POST", `/conversations/${conv.id}/messages`, {
    content: `text only [[stand-in tag=${tag}]]`,
    model: TEXT_MODEL,
  });
  await expectError(res, 400, "invalid_request", "model");
  expect(await standInRequests(tag)).toEqual([]);
  expect(await listMessages(alice, conv.id)).toEqual(before);

  const { events } = await streamTurn(alice, conv.id, { content: "text only [[stand-in tokens=2]]" });
  expect(events.at(-1)!.event).toBe("message.completed");
});

it("/v1/chat/completions: an image_url or a file part for a text-only model is 400 naming model", async () => {
  const alice = newUser("alice");
  const file = await upload(alice, jpegOf(200, 200));
  for (const part of [
    filePart(file.id),
    { type: "image_url", image_url: { url: "https://example.com/cat.jpg" } },
  ]) {
    const tag = newTag();
    const res = await call(alice, "POST", "/chat/completions", {
      model: TEXT_MODEL,
      messages: [{ role: "user", content: [{ type: "text", text: `[[stand-in tag=${tag}]]` }, part] }],
    });
    await expectError(res, 400, "invalid_request", "model");
    expect(await standInRequests(tag)).toEqual([]);
  }
});
