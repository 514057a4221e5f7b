import type { Env } from "./env";

/** Runtime configuration with every default in one place (README "Configuration" mirrors this). */
export interface Config {
  dashscopeBaseUrl: string;
  dashscopeApiKey: string;
  defaultModel: string;
  defaultSystemPrompt: string;
  /** Context window assumed for a model missing from the model table, in tokens. */
  defaultContextTokens: number;
  /** Context windows that extend or override the built-in model table (`MODEL_CONTEXT_TOKENS`, JSON). */
  modelContextTokens: Record<string, number>;
  /** Tokens reserved for the reply when a turn sets no `max_tokens`. */
  defaultReplyTokens: number;
  upstreamFirstByteTimeoutMs: number;
  upstreamMaxAttempts: number;
  upstreamRetryBaseMs: number;
  maxBodyBytes: number;
  /** Interval of `: ping` comments on answer streams. */
  ssePingIntervalMs: number;
  /** How long an answer's events stay resumable after it ends. */
  eventLogRetentionMs: number;
  auth: {
    jwksUrl: string;
    issuer: string;
    audience: string;
    clockSkewSeconds: number;
    jwksCacheTtlSeconds: number;
    devJwks: string;
  };
}

export const DEFAULT_BASE_URL = "https://dashscope-intl.aliyuncs.com/compatible-mode/v1";

const num = (value: string | undefined, fallback: number): number => {
  if (value === undefined || value.trim() === "") return fallback;
  const n = Number(value);
  return Number.isFinite(n) ? n : fallback;
};

const cache = new WeakMap<object, Config>();

/** Reads the configuration from the Worker's environment (memoised per env object). */
export function loadConfig(env: Env): Config {
  const hit = cache.get(env);
  if (hit) return hit;
  const config: Config = {
    dashscopeBaseUrl: (env.DASHSCOPE_BASE_URL || DEFAULT_BASE_URL).replace(/\/+$/, ""),
    dashscopeApiKey: env.DASHSCOPE_API_KEY ?? "",
    defaultModel: env.DEFAULT_MODEL || "qwen-plus",
    defaultSystemPrompt: env.DEFAULT_SYSTEM_PROMPT ?? "You are a helpful assistant.",
    defaultContextTokens: num(env.DEFAULT_CONTEXT_TOKENS, 131_072),
    modelContextTokens: parseContextTable(env.MODEL_CONTEXT_TOKENS),
    defaultReplyTokens: num(env.DEFAULT_REPLY_TOKENS, 8_192),
    upstreamFirstByteTimeoutMs: num(env.UPSTREAM_FIRST_BYTE_TIMEOUT_MS, 60_000),
    upstreamMaxAttempts: Math.max(1, num(env.UPSTREAM_MAX_ATTEMPTS, 3)),
    upstreamRetryBaseMs: num(env.UPSTREAM_RETRY_BASE_MS, 250),
    maxBodyBytes: num(env.MAX_BODY_BYTES, 1_048_576),
    ssePingIntervalMs: num(env.SSE_PING_INTERVAL_MS, 15_000),
    eventLogRetentionMs: num(env.EVENT_LOG_RETENTION_SECONDS, 86_400) * 1000,
    auth: {
      jwksUrl: env.AUTH_JWKS_URL ?? "",
      issuer: env.AUTH_ISSUER ?? "",
      audience: env.AUTH_AUDIENCE ?? "",
      clockSkewSeconds: num(env.AUTH_CLOCK_SKEW_SECONDS, 60),
      jwksCacheTtlSeconds: num(env.JWKS_CACHE_TTL_SECONDS, 3600),
      devJwks: env.AUTH_DEV_JWKS ?? "",
    },
  };
  cache.set(env, config);
  return config;
}

/** `{"model": tokens, ...}`; entries that are not positive integers are ignored. */
function parseContextTable(json: string | undefined): Record<string, number> {
  if (!json) return {};
  try {
    const value = JSON.parse(json) as unknown;
    if (!value || typeof value !== "object" || Array.isArray(value)) return {};
    return Object.fromEntries(
      Object.entries(value).filter(([, n]) => typeof n === "number" && Number.isInteger(n) && n > 0),
    ) as Record<string, number>;
  } catch {
    console.error(JSON.stringify({ level: "error", message: "MODEL_CONTEXT_TOKENS is not valid JSON; ignoring it" }));
    return {};
  }
}
