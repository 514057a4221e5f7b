import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";

/** The Durable Object that owns a conversation. */
export const conversationObject = (conversationId: string) =>
  env.CONVERSATION_GENERATION.get(env.CONVERSATION_GENERATION.idFromName(conversationId));

/**
 * What a conversation's object stores: rows of its own tables (everything but the schema's
 * version record and SQLite's and the runtime's internal tables), key-value entries, and alarm.
 */
export function objectStorage(conversationId: string) {
  return runInDurableObject(conversationObject(conversationId), async (_instance, state) => {
    const tables = state.storage.sql
      .exec<{ name: string }>(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_cf_%' AND name <> 'schema_migrations'",
      )
      .toArray()
      .map((t) => t.name);
    let rows = 0;
    for (const name of tables)
      rows += state.storage.sql.exec<{ n: number }>(`SELECT COUNT(*) AS n FROM "${name}"`).one().n;
    const entries = (await state.storage.list()).size;
    return { rows, entries, alarm: await state.storage.getAlarm() };
  });
}
