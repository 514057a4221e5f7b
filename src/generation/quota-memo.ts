import { secondsUntilNextUtcDay } from "../store/usage";

/**
 * How long a quota refusal is remembered: long enough that a phone retrying a refused send
 * does not reach DashScope each time, short enough that a budget raised by an operator is felt
 * within a minute even if it were not checked (it is: see {@link QuotaRefusalMemo}).
 */
export const QUOTA_REFUSAL_MEMO_MS = 60_000;

/**
 * Remembers, briefly, that the daily quota refused a user's turn here. A turn normally starts
 * its upstream call at once and commits to D1 concurrently (aborting the call if the commit
 * refuses); while a refusal is remembered, the turn commits first and calls DashScope only once
 * the commit has reserved its quota. The memo only changes that order, never the outcome: the
 * commit reads the budget as it is now, so a budget an operator raised (or a new UTC day) takes
 * effect on the very next send.
 */
export class QuotaRefusalMemo {
  private until = new Map<string, number>();

  remember(userId: string, now: number): void {
    this.until.set(userId, now + Math.min(QUOTA_REFUSAL_MEMO_MS, secondsUntilNextUtcDay(now) * 1000));
  }

  /** Whether the user was refused less than the memo's span ago. */
  holds(userId: string, now: number): boolean {
    const until = this.until.get(userId);
    if (until === undefined) return false;
    if (until > now) return true;
    this.until.delete(userId);
    return false;
  }

  forget(userId: string): void {
    this.until.delete(userId);
  }
}
