/**
 * Summaries kept per conversation; making one records it, and the oldest beyond this are
 * forgotten (a path whose summaries are all forgotten starts a new one at its next fold).
 */
const KEPT_SUMMARIES = 64;

/** A running summary as stored: what it says and which summary it extended. */
export interface StoredSummary {
  /** The newest message it covers: it covers the path up to and with this message. */
  through: string;
  /** The summary it extended (its `through`), or null for a path's first. */
  previous: string | null;
  content: string;
  /** The model that wrote it. */
  model: string;
}

/**
 * The running summaries of a conversation (`prompt_summaries`, storage version 4). A summary is
 * named by the newest message it covers; since a message id names the one path to it, a path
 * uses only summaries whose message is on it, so every branch has its own (an edit before that
 * message starts a path without it). Like blocks, summaries outlive a drop of the prompt state.
 */
export class PromptSummaries {
  constructor(
    private readonly sql: SqlStorage,
    private readonly now: () => number = Date.now,
  ) {}

  /** Every stored summary, by the message it covers through. */
  all(): ReadonlyMap<string, StoredSummary> {
    const rows = this.sql.exec<{
      through_id: string;
      previous_id: string | null;
      content: string;
      model: string;
    }>("SELECT through_id, previous_id, content, model FROM prompt_summaries");
    return new Map(
      [...rows].map((r) => [
        r.through_id,
        { through: r.through_id, previous: r.previous_id, content: r.content, model: r.model },
      ]),
    );
  }

  /** Records a summary (again: replaced). */
  record(summary: StoredSummary): void {
    this.sql.exec(
      "INSERT OR REPLACE INTO prompt_summaries (through_id, previous_id, content, model, created_at) VALUES (?, ?, ?, ?, ?)",
      summary.through,
      summary.previous,
      summary.content,
      summary.model,
      this.now(),
    );
    this.sql.exec(
      `DELETE FROM prompt_summaries WHERE through_id NOT IN
         (SELECT through_id FROM prompt_summaries ORDER BY created_at DESC, through_id DESC LIMIT ?)`,
      KEPT_SUMMARIES,
    );
  }
}
