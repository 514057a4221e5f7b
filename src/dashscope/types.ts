/**
 * Wire types of DashScope's OpenAI-compatible Chat Completions endpoint
 * (`../shared/dashscope/PROTOCOL.md` §2). Every optional field is optional on the wire too:
 * key order, `null` versus absent, and detail objects vary between models and over time.
 */

export type FinishReason = "stop" | "length" | "tool_calls" | "function_call" | (string & {});

export interface ToolCallFragment {
  index: number;
  /** Only the first fragment carries the real id; later ones send `""` or nothing. */
  id?: string | null;
  type?: string | null;
  function?: { name?: string | null; arguments?: string | null } | null;
}

export interface ToolCall {
  id: string;
  type: "function";
  function: { name: string; arguments: string };
}

export interface LogprobToken {
  token: string;
  logprob: number;
  bytes?: number[] | null;
  top_logprobs?: { token: string; logprob: number; bytes?: number[] | null }[];
}

export interface Logprobs {
  content: LogprobToken[] | null;
}

export interface AudioDelta {
  id?: string;
  data?: string;
  transcript?: string;
  expires_at?: number;
}

export interface ChunkDelta {
  role?: "assistant";
  content?: string | null;
  reasoning_content?: string | null;
  tool_calls?: ToolCallFragment[] | null;
  audio?: AudioDelta | null;
}

export interface ChunkChoice {
  index: number;
  delta: ChunkDelta;
  finish_reason?: FinishReason | null;
  logprobs?: Logprobs | null;
}

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  prompt_tokens_details?: { cached_tokens?: number; [k: string]: unknown } | null;
  completion_tokens_details?: { reasoning_tokens?: number; [k: string]: unknown } | null;
}

export interface ChatCompletionChunk {
  id: string;
  object: "chat.completion.chunk";
  created: number;
  model: string;
  choices: ChunkChoice[];
  usage?: Usage | null;
  system_fingerprint?: string | null;
}

export interface CompletionMessage {
  role: "assistant";
  content: string | null;
  reasoning_content?: string | null;
  tool_calls?: ToolCall[] | null;
  audio?: AudioDelta | null;
}

export interface ChatCompletion {
  id: string;
  object: "chat.completion";
  created: number;
  model: string;
  choices: {
    index: number;
    message: CompletionMessage;
    finish_reason: FinishReason | null;
    logprobs?: Logprobs | null;
  }[];
  usage?: Usage | null;
  system_fingerprint?: string | null;
}

/** An error reported inside a 200 stream (PROTOCOL.md §3.4), before it is mapped to our codes. */
export interface StreamErrorInfo {
  /** `openai`: `data: {"error": {...}}`; `native`: `event:error` frame with `:HTTP_STATUS/NNN`. */
  shape: "openai" | "native" | "malformed";
  /** HTTP status carried by a native frame's `:HTTP_STATUS/NNN` comment, if any. */
  status: number | null;
  code: string;
  message: string;
  requestId: string | null;
}

/** What a DashScope stream yields once decoded. */
export type StreamEvent =
  | { type: "chunk"; chunk: ChatCompletionChunk }
  | { type: "error"; error: StreamErrorInfo }
  | { type: "done" };
