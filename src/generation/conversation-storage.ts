import type { Migration } from "./storage-schema";

/**
 * The schema of a conversation object's SQLite storage (see `src/store/SCHEMA.md`), in order.
 * Append a migration to change it; never edit one that has shipped: objects already past its
 * version never run it again.
 */
export const CONVERSATION_STORAGE_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: "answers and answer_events",
    // Objects created before the schema was versioned made exactly these tables.
    present: (sql) =>
      sql.exec("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'answers'").toArray().length > 0,
    up(sql) {
      sql.exec(`CREATE TABLE answers (
        message_id TEXT PRIMARY KEY, user_id TEXT NOT NULL, conversation_id TEXT NOT NULL,
        user_message_id TEXT NOT NULL, client_message_id TEXT, request_hash TEXT,
        status TEXT NOT NULL, last_event_id INTEGER NOT NULL DEFAULT 0,
        started_at INTEGER NOT NULL, finished_at INTEGER, prompt_estimate INTEGER NOT NULL DEFAULT 0,
        completion_tokens INTEGER NOT NULL DEFAULT 0, day TEXT NOT NULL, model TEXT NOT NULL)`);
      sql.exec(
        "CREATE INDEX answers_by_client_id ON answers (client_message_id) WHERE client_message_id IS NOT NULL",
      );
      sql.exec("CREATE INDEX answers_by_status ON answers (status, finished_at)");
      // One row per flush, holding that batch of events as SSE text (`sse/encode`, read back with
      // `sse/decode`): a token costs a string append, not a SQL statement.
      sql.exec(`CREATE TABLE answer_events (
        message_id TEXT NOT NULL, first_seq INTEGER NOT NULL, last_seq INTEGER NOT NULL, sse TEXT NOT NULL,
        PRIMARY KEY (message_id, first_seq)) WITHOUT ROWID`);
    },
  },
  {
    version: 2,
    description: "prompt state: the conversation and its history window",
    up(sql) {
      // One row: the conversation fields a prompt is built from, its owner, and the D1
      // conversation version they were read at (see `PromptState`).
      sql.exec(`CREATE TABLE prompt_conversation (
        id TEXT PRIMARY KEY, user_id TEXT NOT NULL, version INTEGER NOT NULL,
        system_prompt TEXT, model TEXT, params_json TEXT NOT NULL, active_leaf_id TEXT)`);
      // The newest finished messages of the active path, as D1 holds them (bounded).
      sql.exec(`CREATE TABLE prompt_messages (
        id TEXT PRIMARY KEY, parent_id TEXT, role TEXT NOT NULL, content_json TEXT,
        tool_calls_json TEXT, tool_call_id TEXT, status TEXT NOT NULL) WITHOUT ROWID`);
    },
  },
  {
    version: 3,
    description: "prompt blocks: where each history block starts and its stable prefix ends",
    up(sql) {
      // One row per fold (`PromptBlocks`): the block's first message and its anchor, the newest
      // history message of the folding turn (the end of the prefix the block's prompts repeat).
      sql.exec(`CREATE TABLE prompt_blocks (
        start_id TEXT PRIMARY KEY, anchor_id TEXT NOT NULL, created_at INTEGER NOT NULL) WITHOUT ROWID`);
    },
  },
  {
    version: 4,
    description: "running summaries: what each covers, and the summary each block carries",
    up(sql) {
      // One row per summary made (`PromptSummaries`): the newest message it covers (the path up to
      // and with it; per branch, as message ids name a path), the summary it extended, its text.
      sql.exec(`CREATE TABLE prompt_summaries (
        through_id TEXT PRIMARY KEY, previous_id TEXT, content TEXT NOT NULL, model TEXT NOT NULL,
        created_at INTEGER NOT NULL) WITHOUT ROWID`);
      // The summary a block's prompts carry, fixed for the block (its `through_id`; null: none).
      sql.exec("ALTER TABLE prompt_blocks ADD COLUMN summary_id TEXT");
    },
  },
];
