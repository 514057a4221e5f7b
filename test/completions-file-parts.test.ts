import { exports } from "cloudflare:workers";
import OpenAI, { toFile } from "openai";
import { expect, it } from "vitest";
import { call, expectError, newTag, newUser, standInRequests } from "./helpers/api";
import { tokenFor } from "./helpers/auth";
import { filePart, jpegOf, pngOf, sha256Hex, VISION_MODEL } from "./helpers/images";
import { rowsOnAllShards } from "./helpers/shards";

// /v1/chat/completions with the OpenAI SDKs' file part: the model gets the uploaded bytes; the
// endpoint stores nothing, so the file stays unattached (no message_files row).

async function sdkFor(user: string): Promise<OpenAI> {
  return new OpenAI({
    baseURL: "http://localhost/v1",
    apiKey: await tokenFor(user),
    maxRetries: 0,
    fetch: (url, init) => exports.default.fetch(url as string, init as RequestInit),
  });
}

async function attachments(fileId: string): Promise<number> {
  return (
    await rowsOnAllShards<{ n: number }>("SELECT COUNT(*) AS n FROM message_files WHERE file_id = ?", fileId)
  ).reduce((total, row) => total + row.n, 0);
}

it("the openai SDK uploads a photo and sends it as a file part: the stand-in sees its bytes, streamed or not", async () => {
  const alice = newUser("alice");
  const sdk = await sdkFor(alice);
  const photo = jpegOf(1600, 1200, 50_000);
  const file = await sdk.files.create({ file: await toFile(photo, "IMG_0042.jpg"), purpose: "vision" });

  const tag = newTag();
  const completion = await sdk.chat.completions.create({
    model: VISION_MODEL,
    messages: [
      { role: "system", content: "Describe photos." },
      {
        role: "user",
        content: [
          { type: "text", text: `What is this? [[stand-in tokens=3 tag=${tag}]]` },
          { type: "file", file: { file_id: file.id } },
        ],
      },
    ],
  });
  expect(completion.choices[0]!.message.content!.split(" ")).toHaveLength(3);
  const [req] = await standInRequests(tag);
  expect(req!.images).toEqual([
    {
      message: 1,
      part: 1,
      kind: "data_url",
      media_type: "image/jpeg",
      bytes: photo.byteLength,
      sha256: await sha256Hex(photo),
    },
  ]);
  // Sent as an image_url part, the file part never reaches DashScope.
  expect(JSON.stringify(req!.body.messages)).not.toContain('"type":"file"');

  const streamed = newTag();
  const stream = await sdk.chat.completions.create({
    model: VISION_MODEL,
    stream: true,
    messages: [
      {
        role: "user",
        content: [
          { type: "file", file: { file_id: file.id } },
          { type: "text", text: `Again [[stand-in tokens=2 tag=${streamed}]]` },
        ],
      },
    ],
  });
  for await (const _ of stream) {
    // drained
  }
  const [again] = await standInRequests(streamed);
  expect(again!.images.map((i) => [i.message, i.part, i.sha256])).toEqual([[0, 0, await sha256Hex(photo)]]);

  expect(await attachments(file.id)).toBe(0);
});

it("history messages may carry file parts too; inline data URLs pass through as given", async () => {
  const alice = newUser("alice");
  const sdk = await sdkFor(alice);
  const first = await sdk.files.create({ file: await toFile(pngOf(300, 300), "a.png"), purpose: "vision" });
  const tag = newTag();
  const inline = `data:image/png;base64,${btoa(String.fromCharCode(...pngOf(40, 40, 500)))}`;
  const res = await call(alice, "POST", "/chat/completions", {
    model: VISION_MODEL,
    messages: [
      { role: "user", content: [filePart(first.id), { type: "text", text: "first" }] },
      { role: "assistant", content: "a PNG" },
      {
        role: "user",
        content: [
          { type: "image_url", image_url: { url: inline } },
          { type: "text", text: `[[stand-in tokens=2 tag=${tag}]]` },
        ],
      },
    ],
  });
  expect(res.status).toBe(200);
  const [req] = await standInRequests(tag);
  expect(req!.images.map((i) => [i.message, i.part, i.media_type])).toEqual([
    [0, 0, "image/png"],
    [2, 0, "image/png"],
  ]);
  expect((req!.body.messages[2]!.content as { image_url: { url: string } }[])[0]!.image_url.url).toBe(inline);
});

it("an unknown or foreign file id is 400 in OpenAI's envelope, naming the part, with no upstream call", async () => {
  const alice = newUser("alice");
  const mallory = newUser("mallory");
  const sdk = await sdkFor(alice);
  const hers = await sdk.files.create({ file: await toFile(jpegOf(50, 50), "x.jpg"), purpose: "vision" });
  for (const fileId of [hers.id, "0190b6f0-0000-7000-8000-000000000000"]) {
    const tag = newTag();
    const res = await call(mallory, "POST", "/chat/completions", {
      model: VISION_MODEL,
      messages: [
        { role: "user", content: [{ type: "text", text: `[[stand-in tag=${tag}]]` }, filePart(fileId)] },
      ],
    });
    const error = await expectError(res, 400, "invalid_request", "messages.0.content.1.file.file_id");
    expect(error).toMatchObject({ type: "invalid_request_error" });
    expect(await standInRequests(tag)).toEqual([]);
  }
});
