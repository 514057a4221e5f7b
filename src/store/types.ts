/**
 * Row shapes of D1 (`migrations/`, see SCHEMA.md) and the API shapes they map to
 * (`../shared/API.md`, "Resources"). Rows use epoch ms and JSON text; API shapes use ISO 8601
 * strings and parsed JSON.
 */

/**
 * A JSON value, as the JSON columns hold it. Typed rather than `unknown` because a value typed
 * `unknown` is not `Rpc.Serializable`, and a message carrying one drops out of the Durable
 * Object stub's result types. Arrays and objects recurse through interfaces: written as
 * `JsonValue[]`, the recursion makes `Rpc.Serializable` and `Rpc.Stubify` (workers-types)
 * instantiate without end (TS2589), while an interface is expanded only when it is compared.
 */
export type JsonValue = string | number | boolean | null | JsonArray | JsonObject;
interface JsonArray extends Array<JsonValue> {}
export interface JsonObject {
  [key: string]: JsonValue;
}

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
}

/** Conversation as the API returns it. */
export interface Conversation {
  id: string;
  title: string | null;
  system_prompt: string | null;
  /** The stored model; `null` means the server's default model applies to each turn. */
  model: string | null;
  /** Default generation parameters of each turn (a turn's own `parameters` override them). */
  parameters: JsonObject;
  archived: boolean;
  created_at: string;
  updated_at: string;
  last_message_at: string | null;
}

export type MessageRole = "system" | "user" | "assistant" | "tool";

/** `streaming` while an answer is generated; user messages are stored `completed`. */
export type MessageStatus = "streaming" | "completed" | "cancelled" | "interrupted" | "failed";

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

type Nullable<T> = { [K in keyof T]: T[K] | null };

/** Token usage of an answer; `null` on a message while unknown. */
export interface MessageUsage extends TokenUsage {
  /** True when DashScope reported no usage (a stopped or cut-off answer) and these are estimates. */
  estimated: boolean;
}

/** A complete tool call of an answer, as stored in `tool_calls_json`. */
export interface StoredToolCall {
  id: string;
  type: "function";
  function: { name: string; arguments: string };
}

/** Message as the API returns it. */
export interface Message {
  id: string;
  conversation_id: string;
  parent_id: string | null;
  role: MessageRole;
  /** A string or an array of content parts as DashScope accepts them; `null` when absent. */
  content: string | JsonValue[] | null;
  reasoning_content: string | null;
  tool_calls: StoredToolCall[] | null;
  tool_call_id: string | null;
  status: MessageStatus;
  finish_reason: string | null;
  model: string | null;
  usage: MessageUsage | null;
  error: JsonObject | null;
  created_at: string;
  completed_at: string | null;
}

/** One page of a keyset-paginated list; `next_cursor` is `null` on the last page. */
export interface Page<T> {
  data: T[];
  next_cursor: string | null;
}
