import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { expect, it } from "vitest";
import { shardDatabases } from "../src/store/shards";
import {
  call,
  createConversation,
  expectError,
  listMessages,
  newTag,
  newUser,
  standInRequests,
  startedData,
  streamTurn,
} from "./helpers/api";
import { dataUrl, filePart, jpegOf, pngOf, sha256Hex, upload, VISION_MODEL } from "./helpers/images";
import { dbOf } from "./helpers/shards";

// No row holds image bytes: not in D1 (messages, the sync log, the search index, any table), and not
// in the conversation object's SQLite (answer events, prompt state). A photo sent as a base64 data URL
// in a turn is stored as a file in R2 and the message keeps a file part naming it.

/** A run of base64 only this image's bytes produce: found in a row, the row holds the image. */
const marker = (url: string) => url.slice(url.indexOf(",") + 1_000, url.indexOf(",") + 1_064);

/**
 * Every D1 table's rows (FTS shadow tables and D1's own excepted), on every shard, that contain
 * `needle` anywhere.
 */
async function d1RowsContaining(needle: string): Promise<string[]> {
  const hits: string[] = [];
  for (const db of shardDatabases(env)) {
    const { results: tables } = await db
      .prepare(
        `SELECT name FROM sqlite_master WHERE type = 'table'
           AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_cf_%' AND name NOT LIKE 'd1_%'
           AND name NOT LIKE 'search_text_%'`,
      )
      .all<{ name: string }>();
    for (const { name } of tables) {
      const { results } = await db.prepare(`SELECT * FROM "${name}"`).all<Record<string, unknown>>();
      for (const row of results) {
        if (Object.values(row).some((v) => typeof v === "string" && v.includes(needle))) hits.push(name);
      }
    }
  }
  return hits;
}

/** Rows of the conversation object's own tables that contain `needle`. */
function objectRowsContaining(conversationId: string, needle: string): Promise<string[]> {
  const stub = env.CONVERSATION_GENERATION.get(env.CONVERSATION_GENERATION.idFromName(conversationId));
  return runInDurableObject(stub, (_instance, state) => {
    const hits: string[] = [];
    for (const table of ["answers", "answer_events", "prompt_conversation", "prompt_messages"]) {
      for (const row of state.storage.sql.exec<Record<string, SqlStorageValue>>(`SELECT * FROM ${table}`)) {
        if (Object.values(row).some((v) => typeof v === "string" && v.includes(needle))) hits.push(table);
      }
    }
    return hits;
  });
}

it("a turn with an uploaded photo stores a reference: no D1 row and no object row holds its bytes", async () => {
  const alice = newUser("alice");
  const photo = jpegOf(800, 600, 40_000);
  const file = await upload(alice, photo);
  const conv = await createConversation(alice, { model: VISION_MODEL });
  const { events } = await streamTurn(alice, conv.id, {
    content: [filePart(file.id), { type: "text", text: "look [[stand-in tokens=2]]" }],
  });
  expect(events.at(-1)!.event).toBe("message.completed");
  const needle = marker(dataUrl("image/jpeg", photo));
  expect(await d1RowsContaining(needle)).toEqual([]);
  expect(await objectRowsContaining(conv.id, needle)).toEqual([]);
  // The message row is small: the reference and nothing else.
  const row = await dbOf(alice)
    .prepare("SELECT content_json FROM messages WHERE id = ?")
    .bind(startedData(events[0]).user_message.id)
    .first<{ content_json: string }>();
  expect(row!.content_json.length).toBeLessThan(200);
});

it("a data URL image in a turn is stored as a file; the model gets the same bytes and the message a file part", async () => {
  const alice = newUser("alice");
  const photo = pngOf(500, 400, 60_000);
  const url = dataUrl("image/png", photo);
  const conv = await createConversation(alice, { model: VISION_MODEL });
  const tag = newTag();
  const { events } = await streamTurn(alice, conv.id, {
    content: [
      { type: "image_url", image_url: { url } },
      { type: "text", text: `what [[stand-in tokens=2 tag=${tag}]]` },
    ],
  });
  expect(events.at(-1)!.event).toBe("message.completed");
  const sent = startedData(events[0]).user_message;
  const content = sent.content as { type: string; file?: { file_id: string } }[];
  expect(content[0]!.type).toBe("file");
  const fileId = content[0]!.file!.file_id;

  // The file: the exact bytes in R2, its metadata (and pixel size) in D1, attached to the message.
  const sha256 = await sha256Hex(photo);
  const meta = await dbOf(alice)
    .prepare("SELECT user_id, media_type, bytes, sha256, width, height FROM files WHERE id = ?")
    .bind(fileId)
    .first();
  expect(meta).toEqual({
    user_id: alice,
    media_type: "image/png",
    bytes: photo.byteLength,
    sha256,
    width: 500,
    height: 400,
  });
  const object = await env.FILES.get(`files/${fileId}`);
  expect(new Uint8Array(await object!.arrayBuffer())).toEqual(photo);
  const link = await dbOf(alice)
    .prepare("SELECT conversation_id FROM message_files WHERE message_id = ? AND file_id = ?")
    .bind(sent.id, fileId)
    .first();
  expect(link).toEqual({ conversation_id: conv.id });

  const [req] = await standInRequests(tag);
  expect(req!.images.map((i) => i.sha256)).toEqual([sha256]);

  const needle = marker(url);
  expect(await d1RowsContaining(needle)).toEqual([]);
  expect(await objectRowsContaining(conv.id, needle)).toEqual([]);

  // The next turn resends it from R2.
  const next = newTag();
  await streamTurn(alice, conv.id, { content: `again [[stand-in tokens=2 tag=${next}]]` });
  const [again] = await standInRequests(next);
  expect(again!.images.map((i) => i.sha256)).toEqual([sha256]);
});

it("a data URL that is no image kind an upload may be is 415, and nothing is stored", async () => {
  const alice = newUser("alice");
  const conv = await createConversation(alice, { model: VISION_MODEL });
  // A GIF: valid base64, declared an image, but not a kind uploads take.
  const gif = new Uint8Array([0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 1, 0, 1, 0, 0, 0, 0, 0x3b]);
  const res = await call(alice, "POST", `/conversations/${conv.id}/messages`, {
    content: [
      { type: "text", text: "x" },
      { type: "image_url", image_url: { url: dataUrl("image/gif", gif) } },
    ],
  });
  await expectError(res, 415, "unsupported_media_type", "content.1.image_url.url");
  expect(await listMessages(alice, conv.id)).toEqual([]);
  const files = await dbOf(alice)
    .prepare("SELECT COUNT(*) AS n FROM files WHERE user_id = ?")
    .bind(alice)
    .first<{ n: number }>();
  expect(files!.n).toBe(0);
});
