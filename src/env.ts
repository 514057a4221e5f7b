/** Bindings, variables and secrets of the edge-chat Worker (see wrangler.toml and README "Configuration"). */
export interface Env {
  /** D1: users, conversations, messages. */
  DB: D1Database;
  /** KV: cached key material (JWKS), API key lookups, users' rate-limit tiers. */
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
  /** JSON object of model → most input tokens, over the built-in table. */
  MODEL_MAX_INPUT_TOKENS?: string;
  UPSTREAM_FIRST_BYTE_TIMEOUT_MS?: string;
  UPSTREAM_MAX_ATTEMPTS?: string;
  UPSTREAM_RETRY_BASE_MS?: string;
  MAX_BODY_BYTES?: string;
  SSE_PING_INTERVAL_MS?: string;
  UPSTREAM_IDLE_TIMEOUT_MS?: string;
  EVENT_LOG_RETENTION_SECONDS?: string;
  /** Daily tokens per user (default 1000000; "unlimited" for none). */
  DAILY_TOKEN_BUDGET?: string;
  QUOTA_RESERVATION_TTL_SECONDS?: string;
  /** JSON: model → {tiers: [{upToPromptTokens?, input, output, cachedInput?}]} in USD per 1M tokens. */
  MODEL_PRICES?: string;

  AUTH_JWKS_URL?: string;
  AUTH_ISSUER?: string;
  AUTH_AUDIENCE?: string;
  AUTH_CLOCK_SKEW_SECONDS?: string;
  JWKS_CACHE_TTL_SECONDS?: string;
  /** Local development only (from `.dev.vars`): a public JWKS trusted for requests to localhost. */
  AUTH_DEV_JWKS?: string;
  /** Local development only: private-network addresses (emulator, LAN) where dev tokens are accepted too. */
  AUTH_DEV_HOSTS?: string;

  /** How long an API key lookup stays cached in KV (so how long a revoked key may still work elsewhere). */
  API_KEY_CACHE_TTL_SECONDS?: string;
  /** Secret. Bearer token of the operator routes under `/admin/v1`; unset, those routes do not exist. */
  ADMIN_TOKEN?: string;

  /** Workers Rate Limiting bindings, one per tier (`[[ratelimits]]` in wrangler.toml), keyed by user id. */
  RATE_LIMIT_STANDARD?: RateLimit;
  RATE_LIMIT_RELAXED?: RateLimit;
  RATE_LIMIT_STRICT?: RateLimit;
  /** Each tier's `simple.limit` as configured on its binding, reported in `x-ratelimit-limit-requests`. */
  RATE_LIMIT_STANDARD_PER_MINUTE?: string;
  RATE_LIMIT_RELAXED_PER_MINUTE?: string;
  RATE_LIMIT_STRICT_PER_MINUTE?: string;
}
