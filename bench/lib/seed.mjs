import { readD1Migrations } from "@cloudflare/vitest-plugin";

/** D1 setup for the bench: schema migrations, and long conversations written straight into the table. */

/** Rows per INSERT statement and statements per batch: well inside D1's statement-size limits. */
const ROWS_PER_INSERT = 100;
const STATEMENTS_PER_BATCH = 50;
/** A stored message of ordinary chat length (about 50 tokens). */
const MESSAGE_CHARS = 200;

/**
 * Applies every `migrations/*.sql` in name order. The files are split into statements by the
 * reader the tests use (`readD1Migrations` of @cloudflare/vitest-plugin, which keeps a trigger's
 * `BEGIN … END` whole); a split at every `;` broke the triggers of 0005 and later.
 */
export async function applyMigrations(db, migrationsDir) {
  const migrations = await readD1Migrations(migrationsDir);
  for (const { queries } of migrations) await db.batch(queries.map((q) => db.prepare(q)));
  return migrations.map((m) => m.name);
}

const hex = (n, width) => n.toString(16).padStart(width, "0");

/**
 * UUIDv7 for the i-th seeded message: timestamp `baseMs + i`, so ids sort in insertion order and
 * all before any id the Worker makes now (src/store/ids.ts has the layout).
 */
export function seededId(baseMs, i) {
  const ts = hex(baseMs + i, 12);
  const rand = hex(Math.floor(Math.random() * 2 ** 32), 8) + hex(Math.floor(Math.random() * 2 ** 16), 4);
  return `${ts.slice(0, 8)}-${ts.slice(8)}-7${hex(i % 0x1000, 3)}-${hex(0x8000 | (i % 0x4000), 4)}-${rand}`;
}

const WORDS = [
  "river",
  "lantern",
  "quiet",
  "harbor",
  "copper",
  "meadow",
  "signal",
  "orbit",
  "ember",
  "willow",
  "canyon",
  "pixel",
];

function messageText(i) {
  let text = `Message ${i}:`;
  for (let w = i; text.length < MESSAGE_CHARS; w += 7) text += ` ${WORDS[w % WORDS.length]}`;
  return text;
}

/**
 * Writes `count` completed messages (user and assistant alternating) into a conversation, oldest first,
 * timed one millisecond apart ending a day ago.
 */
export async function seedHistory(db, { userId, conversationId, count }) {
  const baseMs = Date.now() - 24 * 3600 * 1000 - count;
  const sqlText = (s) => `'${s.replaceAll("'", "''")}'`;
  const statements = [];
  for (let start = 0; start < count; start += ROWS_PER_INSERT) {
    const rows = [];
    for (let i = start; i < Math.min(count, start + ROWS_PER_INSERT); i++) {
      const role = i % 2 === 0 ? "user" : "assistant";
      const model = role === "assistant" ? "'qwen-plus'" : "NULL";
      rows.push(
        `(${sqlText(seededId(baseMs, i))}, ${sqlText(conversationId)}, ${sqlText(userId)}, '${role}', ${sqlText(JSON.stringify(messageText(i)))}, 'completed', ${model}, ${baseMs + i}, ${baseMs + i})`,
      );
    }
    statements.push(
      `INSERT INTO messages (id, conversation_id, user_id, role, content_json, status, model, created_at, completed_at) VALUES ${rows.join(",\n")}`,
    );
  }
  for (let i = 0; i < statements.length; i += STATEMENTS_PER_BATCH) {
    await db.batch(statements.slice(i, i + STATEMENTS_PER_BATCH).map((s) => db.prepare(s)));
  }
  const row = await db
    .prepare("SELECT COUNT(*) AS n FROM messages WHERE conversation_id = ?")
    .bind(conversationId)
    .first();
  return row.n;
}
