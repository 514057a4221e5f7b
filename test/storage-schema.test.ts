import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { expect, it } from "vitest";
import { CONVERSATION_STORAGE_MIGRATIONS } from "../src/generation/conversation-storage";
import { type Migration, StorageSchema } from "../src/generation/storage-schema";

/** The DDL objects ran before their schema was versioned (as in the commit that introduced versioning). */
const UNVERSIONED_DDL = [
  `CREATE TABLE IF NOT EXISTS answers (
      message_id TEXT PRIMARY KEY, user_id TEXT NOT NULL, conversation_id TEXT NOT NULL,
      user_message_id TEXT NOT NULL, client_message_id TEXT, request_hash TEXT,
      status TEXT NOT NULL, last_event_id INTEGER NOT NULL DEFAULT 0,
      started_at INTEGER NOT NULL, finished_at INTEGER, prompt_estimate INTEGER NOT NULL DEFAULT 0,
      completion_tokens INTEGER NOT NULL DEFAULT 0, day TEXT NOT NULL, model TEXT NOT NULL)`,
  "CREATE INDEX IF NOT EXISTS answers_by_client_id ON answers (client_message_id) WHERE client_message_id IS NOT NULL",
  "CREATE INDEX IF NOT EXISTS answers_by_status ON answers (status, finished_at)",
  `CREATE TABLE IF NOT EXISTS answer_events (
      message_id TEXT NOT NULL, first_seq INTEGER NOT NULL, last_seq INTEGER NOT NULL, sse TEXT NOT NULL,
      PRIMARY KEY (message_id, first_seq)) WITHOUT ROWID`,
];

const stub = (name: string) => env.CONVERSATION_GENERATION.get(env.CONVERSATION_GENERATION.idFromName(name));

/** Makes an object's storage what an object created before versioning holds: the old tables, a row each, no version record. */
function makeUnversioned(sql: SqlStorage): void {
  for (const t of [
    "answer_events",
    "answers",
    "schema_migrations",
    "prompt_conversation",
    "prompt_messages",
    "prompt_blocks",
    "prompt_summaries",
  ])
    sql.exec(`DROP TABLE IF EXISTS ${t}`);
  for (const ddl of UNVERSIONED_DDL) sql.exec(ddl);
  sql.exec(
    `INSERT INTO answers (message_id, user_id, conversation_id, user_message_id, status, started_at, day, model)
     VALUES ('m1', 'u1', 'c1', 'um1', 'completed', 1, '2025-01-01', 'qwen-plus')`,
  );
  sql.exec("INSERT INTO answer_events (message_id, first_seq, last_seq, sse) VALUES ('m1', 1, 1, 'x')");
}

const tables = (sql: SqlStorage) =>
  (
    sql
      .exec("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '_cf_%' ORDER BY name")
      .toArray() as { name: string }[]
  ).map((r) => r.name);

const columns = (sql: SqlStorage, table: string) =>
  (sql.exec(`PRAGMA table_info(${table})`).toArray() as { name: string }[]).map((r) => r.name);

it("a fresh object's storage is at the latest version", async () => {
  await runInDurableObject(stub(`fresh-${crypto.randomUUID()}`), (_instance, state) => {
    const schema = new StorageSchema(state.storage, CONVERSATION_STORAGE_MIGRATIONS);
    expect(schema.version()).toBe(CONVERSATION_STORAGE_MIGRATIONS.length);
    expect(tables(state.storage.sql)).toEqual([
      "answer_events",
      "answers",
      "prompt_blocks",
      "prompt_conversation",
      "prompt_messages",
      "prompt_summaries",
      "schema_migrations",
    ]);
    // Running it again changes nothing.
    const latest = schema.version();
    expect(schema.migrate()).toEqual({ from: latest, to: latest });
    expect(state.storage.sql.exec("SELECT COUNT(*) AS n FROM schema_migrations").one()).toEqual({
      n: latest,
    });
  });
});

it("an object created before versioning is recognised as version 1 and keeps its rows", async () => {
  const name = `old-${crypto.randomUUID()}`;
  await runInDurableObject(stub(name), (_instance, state) => {
    makeUnversioned(state.storage.sql);
    expect(new StorageSchema(state.storage, CONVERSATION_STORAGE_MIGRATIONS).version()).toBe(0);
  });
  // Restarted once those writes are committed (an abort in the same call would discard them).
  await runInDurableObject(stub(name), (_instance, state) => state.abort("restart")).catch(() => {});
  // A fresh instance migrates the storage in its constructor.
  await runInDurableObject(stub(name), (_instance, state) => {
    const sql = state.storage.sql;
    expect(new StorageSchema(state.storage, CONVERSATION_STORAGE_MIGRATIONS).version()).toBe(
      CONVERSATION_STORAGE_MIGRATIONS.length,
    );
    expect(sql.exec("SELECT message_id, status FROM answers").toArray()).toEqual([
      { message_id: "m1", status: "completed" },
    ]);
    expect(sql.exec("SELECT sse FROM answer_events").toArray()).toEqual([{ sse: "x" }]);
    expect(sql.exec("SELECT description FROM schema_migrations WHERE version = 1").one()).toEqual({
      description: "answers and answer_events (recorded as present)",
    });
  });
});

/** The version a migration added after today's would have. */
const NEXT = CONVERSATION_STORAGE_MIGRATIONS.length + 1;

it("a column added by a later migration reaches an existing object, once", async () => {
  const v2: Migration = {
    version: NEXT,
    description: "answers.title",
    up: (sql) => sql.exec("ALTER TABLE answers ADD COLUMN title TEXT NOT NULL DEFAULT ''"),
  };
  await runInDurableObject(stub(`v2-${crypto.randomUUID()}`), (_instance, state) => {
    const sql = state.storage.sql;
    makeUnversioned(sql);
    const schema = new StorageSchema(state.storage, [...CONVERSATION_STORAGE_MIGRATIONS, v2]);
    expect(schema.migrate()).toEqual({ from: 1, to: NEXT });
    expect(columns(sql, "answers")).toContain("title");
    expect(sql.exec("SELECT message_id, title FROM answers").toArray()).toEqual([
      { message_id: "m1", title: "" },
    ]);
    // A second run is a no-op (the ALTER would throw if it ran again).
    expect(schema.migrate()).toEqual({ from: NEXT, to: NEXT });
  });
});

it("version 4 keeps an object's blocks (carrying no summary) and adds its summaries", async () => {
  await runInDurableObject(stub(`v3-${crypto.randomUUID()}`), (_instance, state) => {
    const sql = state.storage.sql;
    makeUnversioned(sql);
    const v3 = CONVERSATION_STORAGE_MIGRATIONS.slice(0, 3);
    expect(new StorageSchema(state.storage, v3).migrate()).toEqual({ from: 1, to: 3 });
    sql.exec("INSERT INTO prompt_blocks (start_id, anchor_id, created_at) VALUES ('s1', 'a1', 1)");
    const schema = new StorageSchema(state.storage, CONVERSATION_STORAGE_MIGRATIONS);
    expect(schema.migrate()).toEqual({ from: 3, to: 4 });
    expect(sql.exec("SELECT start_id, anchor_id, summary_id FROM prompt_blocks").toArray()).toEqual([
      { start_id: "s1", anchor_id: "a1", summary_id: null },
    ]);
    expect(columns(sql, "prompt_summaries")).toEqual([
      "through_id",
      "previous_id",
      "content",
      "model",
      "created_at",
    ]);
  });
});

it("a failing migration rolls back with its version record", async () => {
  const broken: Migration = {
    version: NEXT,
    description: "half done",
    up: (sql) => {
      sql.exec("ALTER TABLE answers ADD COLUMN half TEXT");
      sql.exec("SELECT * FROM no_such_table");
    },
  };
  await runInDurableObject(stub(`broken-${crypto.randomUUID()}`), (_instance, state) => {
    const schema = new StorageSchema(state.storage, [...CONVERSATION_STORAGE_MIGRATIONS, broken]);
    expect(() => schema.migrate()).toThrow(/no_such_table/);
    expect(schema.version()).toBe(NEXT - 1);
    expect(columns(state.storage.sql, "answers")).not.toContain("half");
  });
});

it("migrations must be numbered 1, 2, … in order", () => {
  const m = (version: number): Migration => ({ version, description: "", up: () => {} });
  expect(() => new StorageSchema({} as DurableObjectStorage, [m(1), m(3)])).toThrow(/expected 2/);
});
