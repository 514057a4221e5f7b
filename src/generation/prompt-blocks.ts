import type { BlockStarts } from "../chat/prepare-turn";

/**
 * Blocks kept per conversation; a fold records one, and the oldest beyond this are forgotten (a
 * branch whose block is forgotten folds afresh on its next long turn). 64 blocks of at least
 * half a window each is far more history than `HISTORY_LIMIT` messages hold.
 */
const KEPT_BLOCKS = 64;

/**
 * The history blocks of a conversation (`prompt_blocks`, storage version 3): each fold records
 * the first message of the block it opens and its anchor, the message that ends the block's
 * stable prefix. A path's current block is the newest recorded start on it, so every branch has
 * its own. Unlike the prompt state, blocks outlive a drop of that state: they name messages,
 * which do not change.
 */
export class PromptBlocks {
  constructor(
    private readonly sql: SqlStorage,
    private readonly now: () => number = Date.now,
  ) {}

  /** Every recorded block: first message id → its anchor id and the summary it carries. */
  all(): BlockStarts {
    const rows = this.sql.exec<{ start_id: string; anchor_id: string; summary_id: string | null }>(
      "SELECT start_id, anchor_id, summary_id FROM prompt_blocks",
    );
    return new Map([...rows].map((r) => [r.start_id, { anchor: r.anchor_id, summary: r.summary_id }]));
  }

  /**
   * Records the block a fold opened (again: its anchor, summary and time are replaced); `summary`
   * is the `through` of the running summary its prompts carry (storage version 4), or null.
   */
  record(start: string, anchor: string, summary: string | null = null): void {
    this.sql.exec(
      "INSERT OR REPLACE INTO prompt_blocks (start_id, anchor_id, summary_id, created_at) VALUES (?, ?, ?, ?)",
      start,
      anchor,
      summary,
      this.now(),
    );
    this.sql.exec(
      `DELETE FROM prompt_blocks WHERE start_id NOT IN
         (SELECT start_id FROM prompt_blocks ORDER BY created_at DESC, start_id DESC LIMIT ?)`,
      KEPT_BLOCKS,
    );
  }
}
