import type { HistoryRow, PromptSource, TurnConversation, VersionStep } from "../store/turns";
import type { Message } from "../store/types";

/**
 * What a conversation's object keeps, in its own SQLite storage, to build a turn's prompt
 * without reading D1 first: the conversation fields, and its newest finished messages (the
 * active path, at most `historyLimit`), at the D1 conversation version they correspond to.
 *
 * Every write to the conversation passes through its object, which applies it here as it
 * stores it in D1 ({@link advance}); a write whose version step does not start at this state's
 * version means someone else changed the conversation meanwhile, and the state is dropped
 * (read again from D1 before the next turn). The turn's commit checks the version in D1, so
 * a state gone stale unnoticed is caught there.
 *
 * Storage, not memory: an evicted object keeps its state, and an idle one costs no heap.
 */
export class PromptState {
  constructor(
    private readonly sql: SqlStorage,
    private readonly historyLimit: number,
  ) {}

  /** The state, or null when the object holds none (new, dropped, or never loaded). */
  get(): PromptSource | null {
    const conversation = this.sql
      .exec<Record<string, SqlStorageValue>>("SELECT * FROM prompt_conversation LIMIT 1")
      .toArray()[0] as unknown as TurnConversation | undefined;
    if (!conversation) return null;
    const rows = this.sql
      .exec<Record<string, SqlStorageValue>>("SELECT * FROM prompt_messages ORDER BY id DESC")
      .toArray() as unknown as HistoryRow[];
    return { conversation, history: activePath(rows) };
  }

  /** The version the state corresponds to, or null without state. */
  version(): number | null {
    const row = this.sql.exec<{ version: number }>("SELECT version FROM prompt_conversation").toArray()[0];
    return row ? row.version : null;
  }

  /** The owner of the conversation, as the state says, or null without state. */
  owner(): string | null {
    const row = this.sql.exec<{ user_id: string }>("SELECT user_id FROM prompt_conversation").toArray()[0];
    return row ? row.user_id : null;
  }

  /** Replaces the state with the conversation as D1 holds it. */
  replace(source: PromptSource): void {
    this.drop();
    const c = source.conversation;
    this.sql.exec(
      `INSERT INTO prompt_conversation (id, user_id, version, system_prompt, model, params_json, active_leaf_id)
       VALUES (?, ?, ?, ?, ?, ?, ?)`,
      c.id,
      c.user_id,
      c.version,
      c.system_prompt,
      c.model,
      c.params_json,
      c.active_leaf_id,
    );
    for (const row of source.history.slice(0, this.historyLimit)) this.putMessage(row);
  }

  /** Forgets the state (the next turn reads D1). */
  drop(): void {
    this.sql.exec("DELETE FROM prompt_conversation");
    this.sql.exec("DELETE FROM prompt_messages");
  }

  /**
   * Applies a write the object made to D1: when `step` starts at this state's version, `apply`
   * changes the state and the state moves to `step.after`; otherwise (another writer came in
   * between, or the conversation is gone) the state is dropped. Returns whether it was applied.
   */
  advance(step: VersionStep, apply: () => void): boolean {
    const version = this.version();
    if (version === null) return false;
    if (step.before !== version || step.after === null) {
      this.drop();
      return false;
    }
    apply();
    this.sql.exec("UPDATE prompt_conversation SET version = ?", step.after);
    this.trim();
    return true;
  }

  /** Adds (or replaces) finished messages of the active path; their parents are already here. */
  putMessages(messages: readonly Message[]): void {
    for (const m of messages) {
      if (m.status === "streaming") continue;
      this.putMessage({
        id: m.id,
        parent_id: m.parent_id,
        role: m.role,
        content_json: m.content === null ? null : JSON.stringify(m.content),
        tool_calls_json: m.tool_calls?.length ? JSON.stringify(m.tool_calls) : null,
        tool_call_id: m.tool_call_id,
        status: m.status,
      });
    }
  }

  /** Moves the active path's leaf (a new answer on it). */
  setActiveLeaf(id: string): void {
    this.sql.exec("UPDATE prompt_conversation SET active_leaf_id = ?", id);
  }

  /** Sets the conversation fields a prompt is built from. */
  setConversation(fields: Pick<TurnConversation, "system_prompt" | "model" | "params_json">): void {
    this.sql.exec(
      "UPDATE prompt_conversation SET system_prompt = ?, model = ?, params_json = ?",
      fields.system_prompt,
      fields.model,
      fields.params_json,
    );
  }

  private putMessage(row: HistoryRow): void {
    this.sql.exec(
      `INSERT OR REPLACE INTO prompt_messages (id, parent_id, role, content_json, tool_calls_json, tool_call_id, status)
       VALUES (?, ?, ?, ?, ?, ?, ?)`,
      row.id,
      row.parent_id,
      row.role,
      row.content_json,
      row.tool_calls_json,
      row.tool_call_id,
      row.status,
    );
  }

  /** Keeps the newest `historyLimit` messages: the window a turn reads, however long the conversation. */
  private trim(): void {
    this.sql.exec(
      "DELETE FROM prompt_messages WHERE id NOT IN (SELECT id FROM prompt_messages ORDER BY id DESC LIMIT ?)",
      this.historyLimit,
    );
  }
}

/**
 * The active path through the kept messages, newest first: from the newest message, each
 * message's parent in turn. Messages already carry `parent_id`, so a conversation with branches
 * needs only its leaf chosen here. A parent the window does not hold (a placeholder left
 * `streaming`, which is never history) is stepped over to the next older message, as the
 * linear history always read it.
 */
function activePath(newestFirst: HistoryRow[]): HistoryRow[] {
  const held = new Set(newestFirst.map((row) => row.id));
  const path: HistoryRow[] = [];
  let next: string | null | undefined;
  for (const row of newestFirst) {
    if (next !== undefined && next !== null && held.has(next) && row.id !== next) continue;
    path.push(row);
    next = row.parent_id;
  }
  return path;
}
