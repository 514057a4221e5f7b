import { logError } from "./log/log";

/**
 * One model's price (`MODEL_PRICES` and the built-in table in `chat/pricing.ts`), in USD per
 * million tokens, by the tier the request's prompt size falls in.
 */
export interface ModelPrice {
  /** Ascending by `upToPromptTokens`; the last tier may omit it. */
  tiers: {
    upToPromptTokens?: number;
    input: number;
    output: number;
    /** Implicit context-cache hits; default 20% of `input` (PROTOCOL.md §8). */
    cachedInput?: number;
    /** Explicit context-cache hits; default 10% of `input` (§8). */
    explicitCachedInput?: number;
    /** Tokens written to the explicit context cache; default 125% of `input` (§8). */
    cacheCreationInput?: number;
  }[];
}

/** Runtime configuration with every default in one place (README "Configuration" mirrors this). */
export interface Config {
  dashscopeBaseUrl: string;
  dashscopeApiKey: string;
  defaultModel: string;
  /**
   * The model that titles an untitled conversation after its first completed answer
   * (`TITLE_MODEL`): a cheap one that answers non-streamed calls. `null` (`TITLE_MODEL = "off"`):
   * conversations are not titled.
   */
  titleModel: string | null;
  defaultSystemPrompt: string;
  /** Context window assumed for a model missing from the model table, in tokens. */
  defaultContextTokens: number;
  /** Context windows that extend or override the built-in model table (`MODEL_CONTEXT_TOKENS`, JSON). */
  modelContextTokens: Record<string, number>;
  /** Input limits that extend or override the built-in table (`MODEL_MAX_INPUT_TOKENS`, JSON). */
  modelMaxInputTokens: Record<string, number>;
  /** Tokens reserved for the reply when a turn sets no `max_tokens`. */
  defaultReplyTokens: number;
  /**
   * A call's answer bound without `max_tokens`, per choice, for a model missing from the table
   * (`DEFAULT_MAX_OUTPUT_TOKENS`): what DashScope itself allows by default (its `max_tokens`
   * default is the model's maximum output, PROTOCOL.md §6).
   */
  defaultMaxOutputTokens: number;
  /** Maximum outputs that extend or override the built-in table (`MODEL_MAX_OUTPUT_TOKENS`, JSON). */
  modelMaxOutputTokens: Record<string, number>;
  /** A thinking call's reasoning bound without `thinking_budget`, per choice (`DEFAULT_MAX_REASONING_TOKENS`). */
  defaultMaxReasoningTokens: number;
  /** Maximum chains of thought that extend or override the built-in table (`MODEL_MAX_REASONING_TOKENS`, JSON). */
  modelMaxReasoningTokens: Record<string, number>;
  upstreamFirstByteTimeoutMs: number;
  upstreamMaxAttempts: number;
  upstreamRetryBaseMs: number;
  /** Longest wait for the next event of an upstream stream once it has started; `0`: no limit. */
  upstreamIdleTimeoutMs: number;
  maxBodyBytes: number;
  /**
   * Body limit of `POST /v1/ui/conversations` (`MAX_UI_CHAT_BODY_BYTES`, default 32 MiB): the AI
   * SDK's `useChat` posts the whole history with each send; only the last message is kept.
   */
  maxUiChatBodyBytes: number;
  /** Largest upload of `POST /v1/files`, in bytes (`MAX_FILE_BYTES`, default 7 MiB). */
  maxFileBytes: number;
  /**
   * How long an upload no message refers to is kept before the cron deletes it
   * (`UNATTACHED_FILE_TTL_HOURS`, default 24), in ms.
   */
  unattachedFileTtlMs: number;
  /** Most images (file parts and data-URL images) one message may carry (`MAX_FILES_PER_MESSAGE`). */
  maxFilesPerMessage: number;
  /**
   * Data URL mode (no `fileUrls`): the most image bytes one request to DashScope carries
   * (`MAX_INLINE_IMAGE_BYTES`): a message's own images above it are a 413; older images of the
   * history past it are not sent again.
   */
  maxInlineImageBytes: number;
  /**
   * Where DashScope fetches uploaded images from (`FILE_URL_BASE`, this Worker's public origin)
   * with a short-lived signed URL, and the HMAC key that signs it (`FILE_URL_SECRET`, a secret).
   * `null` unless both are set: images then go upstream as base64 data URLs read from R2.
   */
  fileUrls: { base: string; secret: string; ttlSeconds: number } | null;
  /** Interval of `: ping` comments on answer streams. */
  ssePingIntervalMs: number;
  /**
   * Longest wait for DashScope's HTTP status before an answer stream starts anyway
   * (`STREAM_START_DEADLINE_MS`): after a turn is stored (its later failures then arrive as
   * `message.failed`), and for a streamed `/v1/chat/completions` once its quota is reserved (a
   * failure known by then keeps its HTTP status, a later one arrives as an error frame).
   */
  streamStartDeadlineMs: number;
  /** How long an answer's events stay resumable after it ends. */
  eventLogRetentionMs: number;
  /** Tokens a user may spend per UTC day unless set per user; negative: unlimited. */
  dailyTokenBudget: number;
  /** A reservation not settled by then (its answer's owner vanished) stops counting. */
  quotaReservationTtlMs: number;
  /** How long the change log of `GET /v1/sync` keeps a change; an older `since` is 410 `sync_expired`. */
  syncRetentionMs: number;
  /** Prices extending or overriding the built-in table (`MODEL_PRICES`, JSON). */
  modelPrices: Record<string, ModelPrice>;
  /**
   * Models (and their snapshots) that take explicit context-cache markers, `cache_control` on a
   * content block (`EXPLICIT_CACHE_MODELS`, comma-separated, `none` for none; PROTOCOL.md §8).
   * Elsewhere a marker buys nothing: only the implicit cache applies.
   */
  explicitCacheModels: readonly string[];
  /**
   * Block layout of history (`HISTORY_FOLD`, `"<at>/<to>"` in percent of the prompt budget,
   * default `90/50`; `off`: drop the oldest messages one at a time): when the prompt with the
   * current block of history would pass `at`, the turn folds down to `to` (`chat/history.ts`).
   */
  historyFold: { at: number; to: number } | null;
  /** Newest user turns a fold keeps verbatim whenever they fit the window (`MIN_VERBATIM_TURNS`, 6). */
  minVerbatimTurns: number;
  /**
   * The model that folds older turns into a conversation's running summary (`SUMMARY_MODEL`,
   * default qwen-flash): a cheap one that answers non-streamed calls. `null` (`"off"`), or with
   * `HISTORY_FOLD` off: folds drop what they fold.
   */
  summaryModel: string | null;
  auth: {
    jwksUrl: string;
    issuer: string;
    audience: string;
    clockSkewSeconds: number;
    jwksCacheTtlSeconds: number;
    devJwks: string;
    /** `AUTH_DEV_HOSTS`: private-network addresses where dev tokens are accepted too. */
    devHosts: string;
  };
  /** Lifetime of a cached API key lookup in KV, in seconds (at least KV's minimum of 60). */
  apiKeyCacheTtlSeconds: number;
  /** The operator token (`ADMIN_TOKEN`), or "" when the operator routes are off. Secret. */
  adminToken: string;
  /** Requests per minute of each rate-limit tier, as configured on the tier's binding. */
  rateLimitPerMinute: Record<RateLimitTier, number>;
  /**
   * Browser origins allowed to call the API across origins (`CORS_ALLOWED_ORIGINS`, comma-separated
   * `scheme://host[:port]`); empty: none (the default); `"*"`: any origin.
   */
  corsAllowedOrigins: readonly string[] | "*";
  /**
   * Webhooks when an answer ends (README "Webhooks"): where they are POSTed (`WEBHOOK_URL`; ""
   * = off, nothing is recorded), the Standard Webhooks signing secret (`WEBHOOK_SECRET`,
   * `whsec_` + base64; secret), and the first retry's delay in seconds, doubled per attempt.
   */
  webhook: { url: string; secret: string; retryBaseSeconds: number };
  /**
   * Days without activity after which a conversation is deleted by the daily cron
   * (`RETENTION_DAYS`, a positive number); `null` (unset or empty, the default): kept forever.
   */
  retentionDays: number | null;
}

/** Rate-limit tiers; each is a Workers Rate Limiting binding (`RATE_LIMIT_<TIER>`). */
export const RATE_LIMIT_TIERS = ["standard", "relaxed", "strict"] as const;
export type RateLimitTier = (typeof RATE_LIMIT_TIERS)[number];
/** The tier of a user without one set by an operator. */
export const DEFAULT_RATE_LIMIT_TIER: RateLimitTier = "standard";

/** KV rejects an `expirationTtl` below 60 seconds. */
const KV_MIN_TTL_SECONDS = 60;

/**
 * Models with explicit caching as Alibaba's context-cache guide lists them (docs.qwencloud.com/
 * developer-guides/text-generation/context-cache, 2026: Max qwen3-max; Plus qwen3.6-plus,
 * qwen3.5-plus, qwen-plus; Flash qwen3.5-flash, qwen-flash; Coder qwen3-coder-plus,
 * qwen3-coder-flash; the same list as alibabacloud.com/help/en/model-studio/context-cache). The
 * list changes; `EXPLICIT_CACHE_MODELS` replaces it.
 */
const DEFAULT_EXPLICIT_CACHE_MODELS =
  "qwen3-max,qwen3.6-plus,qwen3.5-plus,qwen-plus,qwen3.5-flash,qwen-flash,qwen3-coder-plus,qwen3-coder-flash";

export const DEFAULT_BASE_URL = "https://dashscope-intl.aliyuncs.com/compatible-mode/v1";

const num = (value: string | undefined, fallback: number): number => {
  if (value === undefined || value.trim() === "") return fallback;
  const n = Number(value);
  return Number.isFinite(n) ? n : fallback;
};

const cache = new WeakMap<object, Config>();

/**
 * Reads the configuration from the Worker's environment (memoised per env object). Any setting may be
 * missing (a secret that was never put, an environment a test builds): the generated `Env`
 * (worker-configuration.d.ts) types each as present, so `Partial` keeps the defaults below honest.
 */
export function loadConfig(env: Partial<Env>): Config {
  const hit = cache.get(env);
  if (hit) return hit;
  const config: Config = {
    dashscopeBaseUrl: (env.DASHSCOPE_BASE_URL || DEFAULT_BASE_URL).replace(/\/+$/, ""),
    dashscopeApiKey: env.DASHSCOPE_API_KEY ?? "",
    defaultModel: env.DEFAULT_MODEL || "qwen-plus",
    // qwen-flash: USD 0.05 in / 0.40 out per 1M tokens against qwen-plus's 0.40 / 1.20
    // (chat/pricing.ts), and it answers non-streamed calls, thinking off by default (PROTOCOL.md §2.6).
    titleModel: /^off$/i.test(env.TITLE_MODEL ?? "") ? null : env.TITLE_MODEL || "qwen-flash",
    defaultSystemPrompt: env.DEFAULT_SYSTEM_PROMPT ?? "You are a helpful assistant.",
    defaultContextTokens: num(env.DEFAULT_CONTEXT_TOKENS, 131_072),
    modelContextTokens: parseContextTable(env.MODEL_CONTEXT_TOKENS, "MODEL_CONTEXT_TOKENS"),
    modelMaxInputTokens: parseContextTable(env.MODEL_MAX_INPUT_TOKENS, "MODEL_MAX_INPUT_TOKENS"),
    defaultReplyTokens: num(env.DEFAULT_REPLY_TOKENS, 8_192),
    // The largest documented maximum output (qwen3-max, 65,536) and chain of thought (Qwen3-VL,
    // 80K), PROTOCOL.md §7.1: a bound below a model's real one would cut answers DashScope would
    // finish; one above it only reserves more while the call runs.
    defaultMaxOutputTokens: num(env.DEFAULT_MAX_OUTPUT_TOKENS, 65_536),
    modelMaxOutputTokens: parseContextTable(env.MODEL_MAX_OUTPUT_TOKENS, "MODEL_MAX_OUTPUT_TOKENS"),
    defaultMaxReasoningTokens: num(env.DEFAULT_MAX_REASONING_TOKENS, 81_920),
    modelMaxReasoningTokens: parseContextTable(env.MODEL_MAX_REASONING_TOKENS, "MODEL_MAX_REASONING_TOKENS"),
    upstreamFirstByteTimeoutMs: num(env.UPSTREAM_FIRST_BYTE_TIMEOUT_MS, 60_000),
    upstreamMaxAttempts: Math.max(1, num(env.UPSTREAM_MAX_ATTEMPTS, 3)),
    upstreamRetryBaseMs: num(env.UPSTREAM_RETRY_BASE_MS, 250),
    // 2 minutes without a single event. Thinking models stream their reasoning, so thinking is
    // not silence; silence is the model generating something DashScope does not stream: a tool
    // call's object or array arguments may arrive in one piece (PROTOCOL §5.1, `tool_stream`), and
    // at a typical 50–100 tokens/s, 120 s covers 6,000–12,000 tokens of them. It is twice the
    // first-byte budget (UPSTREAM_FIRST_BYTE_TIMEOUT_MS) and well under DashScope's own 300 s
    // limit for a whole non-streamed answer (PROTOCOL §3, RequestTimeOut).
    upstreamIdleTimeoutMs: num(env.UPSTREAM_IDLE_TIMEOUT_MS, 120_000),
    maxBodyBytes: num(env.MAX_BODY_BYTES, 1_048_576),
    maxUiChatBodyBytes: num(env.MAX_UI_CHAT_BODY_BYTES, 33_554_432),
    maxFileBytes: num(env.MAX_FILE_BYTES, 7_340_032),
    unattachedFileTtlMs: Math.max(0, num(env.UNATTACHED_FILE_TTL_HOURS, 24)) * 3_600_000,
    // Four photos: a typical "these photos" pick from a phone's gallery. What bounds memory is
    // MAX_INLINE_IMAGE_BYTES below, not the count.
    maxFilesPerMessage: Math.max(1, num(env.MAX_FILES_PER_MESSAGE, 4)),
    // 16 MiB: in data URL mode a turn holds an image about five times while it builds and sends
    // the request (the bytes read from R2, the base64 data URL, the request's JSON text and its
    // UTF-8 body: 1 + 3 × 4/3), so 16 MiB of images is about 80 MB of a Worker's 128 MB
    // (BENCHMARKS.md, photos: one 5 MiB photo raised the isolate's memory by 39 MiB).
    maxInlineImageBytes: Math.max(0, num(env.MAX_INLINE_IMAGE_BYTES, 16_777_216)),
    fileUrls:
      env.FILE_URL_BASE && env.FILE_URL_SECRET
        ? {
            base: env.FILE_URL_BASE.replace(/\/+$/, ""),
            secret: env.FILE_URL_SECRET,
            ttlSeconds: Math.max(1, num(env.FILE_URL_TTL_SECONDS, 600)),
          }
        : null,
    ssePingIntervalMs: num(env.SSE_PING_INTERVAL_MS, 15_000),
    streamStartDeadlineMs: Math.max(0, num(env.STREAM_START_DEADLINE_MS, 1_000)),
    eventLogRetentionMs: num(env.EVENT_LOG_RETENTION_SECONDS, 86_400) * 1000,
    dailyTokenBudget: /^unlimited$/i.test(env.DAILY_TOKEN_BUDGET ?? "")
      ? -1
      : num(env.DAILY_TOKEN_BUDGET, 1_000_000),
    quotaReservationTtlMs: num(env.QUOTA_RESERVATION_TTL_SECONDS, 7_200) * 1000,
    syncRetentionMs: num(env.SYNC_RETENTION_DAYS, 30) * 86_400_000,
    modelPrices: parseJsonObject<ModelPrice>(env.MODEL_PRICES, "MODEL_PRICES", (v) =>
      Array.isArray((v as ModelPrice)?.tiers),
    ),
    explicitCacheModels: /^none$/i.test(env.EXPLICIT_CACHE_MODELS ?? "")
      ? []
      : (env.EXPLICIT_CACHE_MODELS || DEFAULT_EXPLICIT_CACHE_MODELS)
          .split(",")
          .map((m) => m.trim())
          .filter((m) => m !== ""),
    historyFold: parseHistoryFold(env.HISTORY_FOLD),
    minVerbatimTurns: Math.max(0, num(env.MIN_VERBATIM_TURNS, 6)),
    // qwen-flash, as for titles: an eighth of qwen-plus's input price (chat/pricing.ts).
    summaryModel: /^off$/i.test(env.SUMMARY_MODEL ?? "") ? null : env.SUMMARY_MODEL || "qwen-flash",
    auth: {
      jwksUrl: env.AUTH_JWKS_URL ?? "",
      issuer: env.AUTH_ISSUER ?? "",
      audience: env.AUTH_AUDIENCE ?? "",
      clockSkewSeconds: num(env.AUTH_CLOCK_SKEW_SECONDS, 60),
      jwksCacheTtlSeconds: num(env.JWKS_CACHE_TTL_SECONDS, 3600),
      devJwks: env.AUTH_DEV_JWKS ?? "",
      devHosts: env.AUTH_DEV_HOSTS ?? "",
    },
    apiKeyCacheTtlSeconds: Math.max(KV_MIN_TTL_SECONDS, num(env.API_KEY_CACHE_TTL_SECONDS, 300)),
    adminToken: env.ADMIN_TOKEN ?? "",
    rateLimitPerMinute: {
      standard: num(env.RATE_LIMIT_STANDARD_PER_MINUTE, 60),
      relaxed: num(env.RATE_LIMIT_RELAXED_PER_MINUTE, 600),
      strict: num(env.RATE_LIMIT_STRICT_PER_MINUTE, 10),
    },
    corsAllowedOrigins: parseOrigins(env.CORS_ALLOWED_ORIGINS),
    webhook: {
      url: env.WEBHOOK_URL ?? "",
      secret: env.WEBHOOK_SECRET ?? "",
      retryBaseSeconds: Math.max(1, num(env.WEBHOOK_RETRY_BASE_SECONDS, 10)),
    },
    retentionDays: parseRetentionDays(env.RETENTION_DAYS),
  };
  cache.set(env, config);
  return config;
}

/**
 * `RETENTION_DAYS`: a positive number of days, or null (keep forever) when unset or empty. Anything
 * else is logged and read as null: a mistyped value must not delete conversations.
 */
function parseRetentionDays(value: string | undefined): number | null {
  if (value === undefined || value.trim() === "") return null;
  const days = Number(value);
  if (Number.isFinite(days) && days > 0) return days;
  logError("config.invalid", {
    message: "RETENTION_DAYS is not a positive number; keeping conversations forever",
  });
  return null;
}

/** `{"model": tokens, ...}`; entries that are not positive integers are ignored. */
function parseContextTable(json: string | undefined, name: string): Record<string, number> {
  if (!json) return {};
  try {
    const value = JSON.parse(json) as unknown;
    if (!value || typeof value !== "object" || Array.isArray(value)) return {};
    return Object.fromEntries(
      Object.entries(value).filter(([, n]) => typeof n === "number" && Number.isInteger(n) && n > 0),
    ) as Record<string, number>;
  } catch {
    logError("config.invalid", { message: `${name} is not valid JSON; ignoring it` });
    return {};
  }
}

/** A JSON object of entries that pass `valid`; anything else is ignored (and logged). */
function parseJsonObject<T>(
  json: string | undefined,
  name: string,
  valid: (v: unknown) => boolean,
): Record<string, T> {
  if (!json) return {};
  try {
    const value = JSON.parse(json) as unknown;
    if (!value || typeof value !== "object" || Array.isArray(value)) throw new Error("not an object");
    return Object.fromEntries(Object.entries(value).filter(([, v]) => valid(v))) as Record<string, T>;
  } catch {
    logError("config.invalid", { message: `${name} is not a JSON object; ignoring it` });
    return {};
  }
}

/**
 * `CORS_ALLOWED_ORIGINS`: each entry as the origin a browser sends (`new URL(entry).origin`, so a
 * trailing slash or an upper-case host still matches); an entry that is not an http(s) origin is
 * ignored (and logged). A `*` entry allows every origin.
 */
function parseOrigins(list: string | undefined): readonly string[] | "*" {
  const entries = (list ?? "")
    .split(",")
    .map((entry) => entry.trim())
    .filter((entry) => entry !== "");
  if (entries.includes("*")) return "*";
  const origins: string[] = [];
  for (const entry of entries) {
    const url = URL.parse(entry);
    if (url && (url.protocol === "https:" || url.protocol === "http:") && url.pathname === "/" && !url.search)
      origins.push(url.origin);
    else
      logError("config.invalid", { message: `CORS_ALLOWED_ORIGINS: ${entry} is not an origin; ignoring it` });
  }
  return origins;
}

/**
 * `HISTORY_FOLD`: `"<at>/<to>"` in percent, 0 < to ≤ at ≤ 100, as shares (`"90/50"` → 0.9, 0.5);
 * `off` turns the block layout off. Anything else is ignored (and logged) for the default.
 */
function parseHistoryFold(value: string | undefined): { at: number; to: number } | null {
  if (/^off$/i.test(value ?? "")) return null;
  const match = /^\s*(\d{1,3})\s*\/\s*(\d{1,3})\s*$/.exec(value ?? "");
  const at = Number(match?.[1]);
  const to = Number(match?.[2]);
  if (match && to > 0 && to <= at && at <= 100) return { at: at / 100, to: to / 100 };
  if (value) logError("config.invalid", { message: `HISTORY_FOLD is not "<at>/<to>" or "off"; using 90/50` });
  return { at: 0.9, to: 0.5 };
}
