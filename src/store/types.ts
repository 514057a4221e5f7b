/**
 * Row shapes of D1 (`migrations/`, see SCHEMA.md) and the API shapes they map to
 * (`../shared/API.md`, "Resources"). Rows use epoch ms and JSON text; API shapes use ISO 8601
 * strings and parsed JSON, and their types are inferred from the zod schemas in `src/resources/`
 * that also generate the OpenAPI document.
 */
import type { MessageRole, MessageStatus } from "../resources/message";

export type { Conversation, ConversationPage } from "../resources/conversation";
export type { JsonObject } from "../resources/json";
export type {
  Message,
  MessageError,
  MessagePage,
  MessageStatus,
  MessageUsage,
  StoredToolCall,
} from "../resources/message";

/** A `conversations` row as D1 returns it. */
export interface ConversationRow {
  id: string;
  user_id: string;
  title: string | null;
  system_prompt: string | null;
  model: string | null;
  /** JSON object of default DashScope generation parameters; `'{}'` when none. */
  params_json: string;
  created_at: number;
  updated_at: number;
  last_message_at: number | null;
  archived_at: number | null;
  /** Bumped by trigger on every change to what a turn's prompt is built from (migration 0005). */
  version: number;
  /** The newest message of the active path (migration 0006); null: the newest message. */
  active_leaf_id: string | null;
}

/**
 * A `messages` row as D1 returns it; its `prompt_tokens` … `reasoning_tokens` columns are the
 * {@link TokenUsage} counters, `NULL` while the answer's usage is unknown.
 */
export interface MessageRow extends Nullable<TokenUsage> {
  id: string;
  conversation_id: string;
  user_id: string;
  parent_id: string | null;
  role: MessageRole;
  /** JSON: a string or an array of content parts. */
  content_json: string | null;
  reasoning_content: string | null;
  /** JSON array of complete tool calls. */
  tool_calls_json: string | null;
  tool_call_id: string | null;
  status: MessageStatus;
  finish_reason: string | null;
  model: string | null;
  /** JSON of the API error object (`{code, message, ...}`) of a failed answer. */
  error_json: string | null;
  client_message_id: string | null;
  /** SHA-256 of a retry-safe send's body, to tell a retry from a different message with the same id. */
  request_hash: string | null;
  /** 1 when the token counts are edge-chat's estimate (DashScope reported none before the answer stopped). */
  usage_estimated: number;
  ttft_ms: number | null;
  duration_ms: number | null;
  created_at: number;
  completed_at: number | null;
  /** Selected with {@link SIBLING_COLUMNS}-style subqueries where the API returns the message. */
  sibling_index?: number;
  sibling_count?: number;
}

/**
 * The five token counters edge-chat bills and reports, as the `messages`, `usage_records` and
 * `usage_daily` columns hold them. Counts DashScope did not report are 0.
 */
export interface TokenUsage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  cached_tokens: number;
  reasoning_tokens: number;
}

/**
 * What a call's cost needs of DashScope's context-cache report beyond `cached_tokens` (PROTOCOL.md
 * §8): the input tokens written to the explicit cache (`cache_creation_input_tokens`, billed at
 * 125% of input), and whether the call used the explicit cache (`cache_type: "ephemeral"`; its
 * hits are billed at 10% of input, implicit hits at 20%). Priced into the ledger's cost, not stored.
 */
export interface CacheUsage {
  creation_tokens: number;
  explicit: boolean;
}

type Nullable<T> = { [K in keyof T]: T[K] | null };
