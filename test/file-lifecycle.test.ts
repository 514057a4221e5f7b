import { createExecutionContext, createScheduledController, waitOnExecutionContext } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { deleteAccount } from "../src/generation/account-deletion";
import { HIDDEN_FILE_GRACE_MS, ORPHAN_OBJECT_AGE_MS } from "../src/generation/file-sweep";
import worker from "../src/index";
import type { FileView } from "../src/resources/file";
import { EXPORT_PAGE_ITEMS } from "../src/routes/export";
import { deleteConversation } from "../src/store/conversations";
import { fileObjectKey } from "../src/store/files";
import { newId } from "../src/store/ids";
import { shardDatabases } from "../src/store/shards";
import type { Conversation, Message } from "../src/store/types";
import {
  BASE,
  call,
  createConversation,
  endMessage,
  eventually,
  expectError,
  newUser,
  startedData,
  streamTurn,
} from "./helpers/api";
import { authHeaders } from "./helpers/auth";
import { dbOf, rowsOnAllShards, userOnShard } from "./helpers/shards";
import { parseStrictJson } from "./helpers/strict-json";

// Issue 14, deliverable 4: files go with the last conversation referring to them, with the
// account, and (unattached) after UNATTACHED_FILE_TTL_HOURS (24 by default; vitest.config.ts
// leaves it so); the cron finishes deletes cut off midway and removes R2 objects no row names.
// Everything against the real local R2 bucket and D1, through the Worker's fetch and scheduled
// handlers.

const HOUR_MS = 3_600_000;
const PNG_HEAD = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/** Uploads a distinct small PNG as `userId` (raw bytes). */
async function upload(userId: string): Promise<FileView> {
  const bytes = new Uint8Array(1_500);
  crypto.getRandomValues(bytes);
  bytes.set(PNG_HEAD, 0);
  const res = await exports.default.fetch(`${BASE}/files?filename=photo.png`, {
    method: "POST",
    headers: { ...(await authHeaders(userId)), "content-type": "image/png" },
    body: bytes,
  });
  expect(res.status, await res.clone().text()).toBe(201);
  return (await res.json()) as FileView;
}

/** A real turn read to its end: the stored user message (the answer comes from the stand-in). */
async function turn(
  userId: string,
  conversationId: string,
  content = "look [[stand-in tokens=3]]",
): Promise<Message> {
  const { events } = await streamTurn(userId, conversationId, { content });
  expect(endMessage(events.at(-1)).status).toBe("completed");
  return startedData(events[0]).user_message;
}

/**
 * FIXTURE: makes `message` (a real stored message) refer to `fileId` by inserting the
 * `message_files` row a turn with a `{"type":"file","file":{"file_id"}}` part writes (migration
 * 0012). Stands in for such a turn until turns accept file parts; the row is the only thing the
 * lifecycle reads.
 */
async function referToFileFixture(userId: string, message: Message, fileId: string): Promise<void> {
  await dbOf(userId)
    .prepare("INSERT INTO message_files (message_id, file_id, conversation_id, user_id) VALUES (?, ?, ?, ?)")
    .bind(message.id, fileId, message.conversation_id, userId)
    .run();
}

/** A conversation with one real turn whose user message refers to each of `files`. */
async function conversationWith(userId: string, ...files: FileView[]): Promise<Conversation> {
  const conv = await createConversation(userId);
  const message = await turn(userId, conv.id);
  for (const file of files) await referToFileFixture(userId, message, file.id);
  return conv;
}

/** Runs the Worker's cron handler as its every-10-minutes trigger would, at `scheduledTime`, to its end. */
async function runCron(scheduledTime = Date.now()): Promise<void> {
  const ctx = createExecutionContext();
  worker.scheduled(createScheduledController({ cron: "*/10 * * * *", scheduledTime }), env, ctx);
  await waitOnExecutionContext(ctx);
}

/** Where the file stands: its R2 object, its D1 row, and what its owner's GET answers. */
async function stateOf(userId: string, fileId: string) {
  const row = await dbOf(userId)
    .prepare("SELECT deleted_at FROM files WHERE id = ?")
    .bind(fileId)
    .first<{ deleted_at: number | null }>();
  return {
    object: (await env.FILES.head(fileObjectKey(fileId))) !== null,
    row: row === null ? "none" : row.deleted_at === null ? "live" : "hidden",
    get: (await call(userId, "GET", `/files/${fileId}`)).status,
  };
}

const LIVE = { object: true, row: "live", get: 200 };
const GONE = { object: false, row: "none", get: 404 };

/** The conversations referring to the file, on any shard. */
async function referencesTo(fileId: string): Promise<string[]> {
  const results = await rowsOnAllShards<{ conversation_id: string }>(
    "SELECT conversation_id FROM message_files WHERE file_id = ? ORDER BY conversation_id",
    fileId,
  );
  return results.map((r) => r.conversation_id).sort();
}

/** Makes a file look uploaded `hours` ago (its row's `created_at`), as time passing would. */
async function age(fileId: string, hours: number): Promise<void> {
  // The row is on its owner's shard; the others have no row of that id.
  for (const db of shardDatabases(env))
    await db
      .prepare("UPDATE files SET created_at = ? WHERE id = ?")
      .bind(Date.now() - hours * HOUR_MS, fileId)
      .run();
}

describe("deleting a conversation", () => {
  it("deletes the files only it refers to, from R2 and D1; keeps one another conversation refers to", async () => {
    const alice = newUser("alice");
    const bob = newUser("bob");
    const [only, shared, twice, loose] = [
      await upload(alice),
      await upload(alice),
      await upload(alice),
      await upload(alice),
    ];
    const conv = await createConversation(alice);
    // Two real messages of the conversation refer to `twice`; the user message to all three.
    const first = await turn(alice, conv.id);
    const second = await turn(alice, conv.id, "again [[stand-in tokens=3]]");
    for (const file of [only, shared, twice]) await referToFileFixture(alice, first, file.id);
    await referToFileFixture(alice, second, twice.id);
    const other = await conversationWith(alice, shared);
    const bobFile = await upload(bob);
    const bobConv = await conversationWith(bob, bobFile);

    // Bob cannot delete it, and nothing of Alice's moves.
    await expectError(await call(bob, "DELETE", `/conversations/${conv.id}`), 404, "not_found");
    expect(await stateOf(alice, only.id)).toEqual(LIVE);

    expect((await call(alice, "DELETE", `/conversations/${conv.id}`)).status).toBe(204);
    expect(await stateOf(alice, only.id)).toEqual(GONE);
    expect(await stateOf(alice, twice.id)).toEqual(GONE);
    expect(await stateOf(alice, shared.id)).toEqual(LIVE);
    expect(await referencesTo(shared.id)).toEqual([other.id]);
    expect(await referencesTo(twice.id)).toEqual([]);
    // An unattached file and another user's are not the conversation's.
    expect(await stateOf(alice, loose.id)).toEqual(LIVE);
    expect(await stateOf(bob, bobFile.id)).toEqual(LIVE);
    expect(await referencesTo(bobFile.id)).toEqual([bobConv.id]);

    // The last conversation referring to it takes it along.
    expect((await call(alice, "DELETE", `/conversations/${other.id}`)).status).toBe(204);
    expect(await stateOf(alice, shared.id)).toEqual(GONE);
    expect(await stateOf(alice, loose.id)).toEqual(LIVE);
  });

  it("cut off after its batch (file hidden, object still in R2) is finished by the cron", async () => {
    const alice = newUser("alice");
    const file = await upload(alice);
    const conv = await conversationWith(alice, file);
    // The delete's first step alone, as a run that died right after it leaves it.
    const cut = await deleteConversation(dbOf(alice), alice, conv.id);
    expect(cut).toEqual({ deleted: true, hiddenFiles: [file.id] });
    expect(await stateOf(alice, file.id)).toEqual({ object: true, row: "hidden", get: 404 });
    expect(await referencesTo(file.id)).toEqual([]);

    // Within the grace a delete's own run has, the cron leaves it alone.
    await runCron();
    expect(await stateOf(alice, file.id)).toEqual({ object: true, row: "hidden", get: 404 });
    await runCron(Date.now() + HIDDEN_FILE_GRACE_MS + 1_000);
    expect(await stateOf(alice, file.id)).toEqual(GONE);
  });
});

describe("DELETE /v1/files/{id} while a message refers to it", () => {
  it("deletes it: the message stays, the reference goes, exports no longer list it", async () => {
    const alice = newUser("alice");
    const [gone, kept] = [await upload(alice), await upload(alice)];
    const conv = await conversationWith(alice, gone, kept);
    expect((await call(alice, "DELETE", `/files/${gone.id}`)).status).toBe(204);
    expect(await stateOf(alice, gone.id)).toEqual(GONE);
    expect(await referencesTo(gone.id)).toEqual([]);
    expect(await referencesTo(kept.id)).toEqual([conv.id]);
    const doc = parseStrictJson(
      await (await call(alice, "GET", `/conversations/${conv.id}/export`)).text(),
    ) as {
      messages: Message[];
      files: FileView[];
    };
    expect(doc.messages).toHaveLength(2);
    expect(doc.files).toEqual([kept]);
  });
});

describe("the cron's sweep of unattached files", () => {
  it("deletes an upload no message refers to once older than the TTL; keeps a younger one and an attached one", async () => {
    const alice = newUser("alice");
    const bob = newUser("bob");
    const [old, young, attachedOld] = [await upload(alice), await upload(alice), await upload(alice)];
    await conversationWith(alice, attachedOld);
    const [bobYoung, bobAttachedOld] = [await upload(bob), await upload(bob)];
    await conversationWith(bob, bobAttachedOld);
    await age(old.id, 25);
    await age(attachedOld.id, 25);
    await age(bobAttachedOld.id, 25);
    await age(young.id, 23);
    await age(bobYoung.id, 23);

    await runCron();
    expect(await stateOf(alice, old.id)).toEqual(GONE);
    expect(await stateOf(alice, young.id)).toEqual(LIVE);
    expect(await stateOf(alice, attachedOld.id)).toEqual(LIVE);
    expect(await stateOf(bob, bobYoung.id)).toEqual(LIVE);
    expect(await stateOf(bob, bobAttachedOld.id)).toEqual(LIVE);
  });

  it("deletes an R2 object no row names (an upload cut off before its insert) once an hour old; keeps every shard's files", async () => {
    // The bucket is shared by all shards: an object is an orphan only when no shard names it, so
    // the files of users on shard 0 and on the last shard must both survive the sweep.
    const alice = userOnShard("alice", 0);
    const bob = userOnShard("bob", 1);
    const file = await upload(alice);
    const bobFile = await upload(bob);
    // What `createFile` leaves when it dies between the R2 put and the D1 insert.
    const orphan = fileObjectKey(newId());
    await env.FILES.put(orphan, new Uint8Array(PNG_HEAD));

    await runCron();
    expect(await env.FILES.head(orphan)).not.toBeNull();
    await runCron(Date.now() + ORPHAN_OBJECT_AGE_MS + 60_000);
    expect(await env.FILES.head(orphan)).toBeNull();
    expect(await stateOf(alice, file.id)).toEqual(LIVE);
    expect(await stateOf(bob, bobFile.id)).toEqual(LIVE);
  });
});

describe("account deletion", () => {
  interface Deleted {
    deleted: { conversations: number; messages: number; files: number; api_keys: number };
  }

  it("counts the live files in the 202, hides them at once and purges objects and rows; another user's stay", async () => {
    const alice = newUser("alice");
    const bob = newUser("bob");
    const [attached, loose, removed] = [await upload(alice), await upload(alice), await upload(alice)];
    await conversationWith(alice, attached);
    expect((await call(alice, "DELETE", `/files/${removed.id}`)).status).toBe(204);
    const bobFile = await upload(bob);
    await conversationWith(bob, bobFile);

    const res = await call(alice, "DELETE", "/account");
    expect(res.status).toBe(202);
    expect(((await res.json()) as Deleted).deleted).toMatchObject({
      conversations: 1,
      messages: 2,
      files: 2,
    });
    for (const file of [attached, loose])
      expect((await call(alice, "GET", `/files/${file.id}`)).status).toBe(404);
    await eventually(async () => (await stateOf(alice, loose.id)).row === "none");
    expect(await stateOf(alice, attached.id)).toEqual(GONE);
    expect(await stateOf(alice, loose.id)).toEqual(GONE);
    expect(await referencesTo(attached.id)).toEqual([]);
    expect(await stateOf(bob, bobFile.id)).toEqual(LIVE);
    expect((await referencesTo(bobFile.id)).length).toBe(1);

    // The same user starts afresh: a new upload is not the deletion's.
    const fresh = await upload(alice);
    await runCron(Date.now() + HIDDEN_FILE_GRACE_MS + 1_000);
    expect(await stateOf(alice, fresh.id)).toEqual(LIVE);
  });

  it("a purge cut off before the files is completed by the cron", async () => {
    const alice = newUser("alice");
    const files = [await upload(alice), await upload(alice), await upload(alice)];
    await conversationWith(alice, files[0]!);
    // What the request does before its 202, without the purge after it; then its run dies.
    const { deletion, deleted } = await deleteAccount(env, alice);
    expect(deleted.files).toBe(3);
    for (const file of files)
      expect(await stateOf(alice, file.id)).toEqual({ object: true, row: "hidden", get: 404 });
    await dbOf(alice)
      .prepare("UPDATE account_deletions SET lease_until = 0 WHERE id = ?")
      .bind(deletion.id)
      .run();

    // Within the hidden files' grace: only the account purge can have deleted them.
    await runCron();
    for (const file of files) expect(await stateOf(alice, file.id)).toEqual(GONE);
    const row = await dbOf(alice)
      .prepare("SELECT files, finished_at FROM account_deletions WHERE id = ?")
      .bind(deletion.id)
      .first<{ files: number; finished_at: number | null }>();
    expect(row?.files).toBe(3);
    expect(row?.finished_at).not.toBeNull();
  });
});

describe("exports", () => {
  it("a conversation's export lists the live files its messages refer to; the account's every live file", async () => {
    const alice = newUser("alice");
    const bob = newUser("bob");
    const [a, b, c, loose] = [
      await upload(alice),
      await upload(alice),
      await upload(alice),
      await upload(alice),
    ];
    const conv = await conversationWith(alice, b, a);
    // A second message of it refers to `a` again: listed once all the same.
    await referToFileFixture(alice, await turn(alice, conv.id, "again [[stand-in tokens=3]]"), a.id);
    await conversationWith(alice, c);
    const bobFile = await upload(bob);
    await conversationWith(bob, bobFile);
    const byId = (files: FileView[]) => [...files].sort((x, y) => (x.id < y.id ? -1 : 1));

    const convDoc = parseStrictJson(
      await (await call(alice, "GET", `/conversations/${conv.id}/export`)).text(),
    ) as {
      conversation: Conversation;
      files: FileView[];
    };
    expect(convDoc.conversation.id).toBe(conv.id);
    // The File objects as GET /v1/files/{id} returns them, by id.
    expect(convDoc.files).toEqual(byId([a, b]));
    expect(convDoc.files[0]).toEqual(
      await (await call(alice, "GET", `/files/${convDoc.files[0]!.id}`)).json(),
    );

    const accountDoc = parseStrictJson(await (await call(alice, "GET", "/account/export")).text()) as {
      files: FileView[];
    };
    expect(accountDoc.files).toEqual(byId([a, b, c, loose]));
    expect(JSON.stringify(accountDoc)).not.toContain(bobFile.id);

    // Bob's export of Alice's conversation is a 404; his own lists his file only.
    await expectError(await call(bob, "GET", `/conversations/${conv.id}/export`), 404, "not_found");
    const bobDoc = parseStrictJson(await (await call(bob, "GET", "/account/export")).text()) as {
      files: FileView[];
    };
    expect(bobDoc.files).toEqual([bobFile]);
  });

  it("lists more files than one page holds, each once, in order", async () => {
    const alice = newUser("alice");
    const files: FileView[] = [];
    for (let i = 0; i < EXPORT_PAGE_ITEMS + 5; i += 5)
      files.push(...(await Promise.all(Array.from({ length: 5 }, () => upload(alice)))));
    const doc = parseStrictJson(await (await call(alice, "GET", "/account/export")).text()) as {
      files: FileView[];
    };
    expect(doc.files.map((f) => f.id)).toEqual(files.map((f) => f.id).sort());
  });
});
