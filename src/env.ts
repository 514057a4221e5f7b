/** Bindings, variables and secrets of the edge-chat Worker (see wrangler.toml and README "Configuration"). */
export interface Env {
  /** D1: users, conversations, messages. */
  DB: D1Database;
  /** KV: cached key material (JWKS). */
  CACHE: KVNamespace;
  /** Durable Objects owning in-flight answers, one per conversation. */
  GENERATIONS: DurableObjectNamespace<import("./generation/conversation-generation").ConversationGeneration>;

  DASHSCOPE_BASE_URL?: string;
  /** Secret. */
  DASHSCOPE_API_KEY?: string;
  DEFAULT_MODEL?: string;
  DEFAULT_SYSTEM_PROMPT?: string;
  DEFAULT_CONTEXT_TOKENS?: string;
  DEFAULT_REPLY_TOKENS?: string;
  /** JSON object of model → context window in tokens, over the built-in table. */
  MODEL_CONTEXT_TOKENS?: string;
  UPSTREAM_FIRST_BYTE_TIMEOUT_MS?: string;
  UPSTREAM_MAX_ATTEMPTS?: string;
  UPSTREAM_RETRY_BASE_MS?: string;
  MAX_BODY_BYTES?: string;
  SSE_PING_INTERVAL_MS?: string;
  EVENT_LOG_RETENTION_SECONDS?: string;

  AUTH_JWKS_URL?: string;
  AUTH_ISSUER?: string;
  AUTH_AUDIENCE?: string;
  AUTH_CLOCK_SKEW_SECONDS?: string;
  JWKS_CACHE_TTL_SECONDS?: string;
  /** Local development only (from `.dev.vars`): a public JWKS trusted for requests to localhost. */
  AUTH_DEV_JWKS?: string;
}
