import { describe, expect, it } from "vitest";
import {
  call,
  createConversation,
  endMessage,
  listMessages,
  newTag,
  newUser,
  standInRequests,
  startedData,
  streamTurn,
} from "./helpers/api";
import { filePart, jpegOf, pngOf, sha256Hex, upload, VISION_MODEL } from "./helpers/images";
import { rowsOnAllShards } from "./helpers/shards";

// A turn with an uploaded photo: DashScope (the stand-in) gets the exact bytes, as a base64 data URL
// read from the local R2 bucket, in this turn and in every later one whose history holds it.

async function messageFiles(messageId: string) {
  return rowsOnAllShards<Record<string, unknown>>(
    "SELECT message_id, file_id, conversation_id, user_id FROM message_files WHERE message_id = ?",
    messageId,
  );
}

describe("a file part in a turn", () => {
  it("reaches the model as the uploaded bytes, and so does every later turn's history", async () => {
    const alice = newUser("alice");
    const photo = jpegOf(1200, 900, 30_000);
    const file = await upload(alice, photo);
    expect(file.sha256).toBe(await sha256Hex(photo));
    const conv = await createConversation(alice, { model: VISION_MODEL });

    const tag = newTag();
    const content = [
      { type: "text", text: `What is this? [[stand-in tokens=3 tag=${tag}]]` },
      filePart(file.id),
    ];
    const { events } = await streamTurn(alice, conv.id, { content });
    expect(events.at(-1)!.event).toBe("message.completed");
    const { user_message: sent } = startedData(events[0]);
    // The stored message keeps the part as sent: a reference, never the bytes.
    expect(sent.content).toEqual(content);

    const [first] = await standInRequests(tag);
    const user = first!.body.messages.findIndex((m) => m.role === "user");
    expect(first!.images).toEqual([
      {
        message: user,
        part: 1,
        kind: "data_url",
        media_type: "image/jpeg",
        bytes: photo.byteLength,
        sha256: file.sha256,
      },
    ]);
    expect(await messageFiles(sent.id)).toEqual([
      { message_id: sent.id, file_id: file.id, conversation_id: conv.id, user_id: alice },
    ]);

    // The next turn sends the photo again, from the history.
    const next = newTag();
    const second = await streamTurn(alice, conv.id, {
      content: `And now? [[stand-in tokens=3 tag=${next}]]`,
    });
    expect(second.events.at(-1)!.event).toBe("message.completed");
    const [again] = await standInRequests(next);
    const earlier = again!.body.messages.findIndex((m) => m.role === "user");
    expect(again!.images).toEqual([
      {
        message: earlier,
        part: 1,
        kind: "data_url",
        media_type: "image/jpeg",
        bytes: photo.byteLength,
        sha256: file.sha256,
      },
    ]);

    // GET …/messages returns the stored part as is.
    const stored = (await listMessages(alice, conv.id)).find((m) => m.id === sent.id);
    expect(stored?.content).toEqual(content);
  });

  it("works in an edit (parent_id) and with two files in one message, each with its row", async () => {
    const alice = newUser("alice");
    const a = await upload(alice, jpegOf(640, 480));
    const b = await upload(alice, pngOf(300, 200), "image/png");
    const conv = await createConversation(alice, { model: VISION_MODEL });
    const firstTurn = await streamTurn(alice, conv.id, { content: "hello [[stand-in tokens=2]]" });
    const answer = endMessage(firstTurn.events.at(-1));
    await streamTurn(alice, conv.id, { content: "second [[stand-in tokens=2]]" });

    const tag = newTag();
    const content = [
      filePart(a.id),
      filePart(b.id),
      { type: "text", text: `both [[stand-in tokens=2 tag=${tag}]]` },
    ];
    const edit = await streamTurn(alice, conv.id, { content, parent_id: answer.id });
    expect(edit.events.at(-1)!.event).toBe("message.completed");
    const sent = startedData(edit.events[0]).user_message;
    expect(sent.parent_id).toBe(answer.id);
    const rows = await messageFiles(sent.id);
    expect(rows.map((r) => r.file_id).sort()).toEqual([a.id, b.id].sort());

    const [req] = await standInRequests(tag);
    expect(req!.images.map((i) => i.sha256)).toEqual([a.sha256, b.sha256]);
    expect(req!.images.map((i) => i.media_type)).toEqual(["image/jpeg", "image/png"]);
  });

  it("a deleted file in the history is sent as a note, and the turn goes on", async () => {
    const alice = newUser("alice");
    const file = await upload(alice, jpegOf(320, 240));
    const conv = await createConversation(alice, { model: VISION_MODEL });
    await streamTurn(alice, conv.id, {
      content: [filePart(file.id), { type: "text", text: "x [[stand-in tokens=2]]" }],
    });
    expect((await call(alice, "DELETE", `/files/${file.id}`)).status).toBe(204);

    const tag = newTag();
    const { events } = await streamTurn(alice, conv.id, { content: `y [[stand-in tokens=2 tag=${tag}]]` });
    expect(events.at(-1)!.event).toBe("message.completed");
    const [req] = await standInRequests(tag);
    expect(req!.images).toEqual([]);
    const user = req!.body.messages.find((m) => m.role === "user");
    expect(user!.content).toEqual([
      { type: "text", text: "[image deleted]" },
      { type: "text", text: "x [[stand-in tokens=2]]" },
    ]);
  });
});
