/** Rows of the D1 tables tests read directly (columns as in migrations/). */

/** A row of `usage_records`. */
export interface UsageRecordRow {
  id: string;
  user_id: string;
  conversation_id: string | null;
  model: string;
  status: string;
  day: string;
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  cached_tokens: number;
  reasoning_tokens: number;
  estimated: number;
  cost_usd: number;
  settled_by: string;
  created_at: number;
}

/** A row of `quota_reservations`. */
export interface ReservationRow {
  id: string;
  user_id: string;
  day: string;
  tokens: number;
  expires_at: number;
}
