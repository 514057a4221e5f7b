/** Building blocks of the document's operations: responses, bodies, parameters. */
import { codesOfStatus, type ErrorStatus } from "../errors/codes";
import { type ComponentName, ref } from "./components";

/** What each error status means on every route that can return it. */
const STATUS_MEANING: Readonly<Record<ErrorStatus, string>> = {
  400: "Invalid request: a body that is not valid JSON or not UTF-8, or a field at fault (named by `param`).",
  401: "Missing or invalid bearer token.",
  403: "Not allowed with this credential.",
  404: "Not found; another user's resource is also 404.",
  409: "Conflict (`turn_in_progress` while the conversation is answering; `conversation_deleted` when it was deleted while the answer was opening).",
  410: "The sync token can no longer be continued (older than the change log's retention, or from before an account deletion): sync again without `since` for a snapshot.",
  413: "The request body is too large.",
  415: "The request body is not declared as JSON (`Content-Type: application/json`, UTF-8); for an upload, the file is not an image of a supported kind.",
  422: "Blocked by the model provider's content moderation.",
  429: "Rate limited or quota exhausted; see `Retry-After`.",
  500: "Internal error.",
  502: "The model provider failed.",
  503: "A database shard did not answer (operator totals across users), or, on a write, the user's data is being moved to another shard (`resharding`, for the seconds of the move; see `Retry-After`); try again shortly.",
  504: "The model provider did not answer in time.",
};

/** An error status's description: its meaning and the codes sent with it (from `ERROR_STATUS`). */
function statusText(status: ErrorStatus): string {
  const codes = codesOfStatus(status).map((code) => `\`${code}\``);
  return `${STATUS_MEANING[status]} ${codes.length === 1 ? "Code" : "Codes"}: ${codes.join(", ")}.`;
}

/** Which error envelope a route uses. */
export type Envelope = "Error" | "OpenAIError";

const retryAfterHeader = {
  "Retry-After": { description: "Seconds to wait before retrying.", schema: { type: "integer", minimum: 1 } },
};

/** The RFC 6750 challenge of every 401 (src/auth/auth-errors.ts). */
const wwwAuthenticateHeader = {
  "WWW-Authenticate": {
    description:
      'The bearer challenge (RFC 6750): `Bearer` when no credentials were sent, else `Bearer error="invalid_request"` or `Bearer error="invalid_token"`.',
    schema: { type: "string" },
  },
};

/**
 * The per-user request limit's headers, in OpenAI's style, on every response of a rate-limited
 * route (src/middleware/rate-limit.ts); the binding tells no remaining count, so
 * `x-ratelimit-remaining-requests` is sent on its 429 only (where it is 0).
 */
export const rateLimitHeaders = {
  "x-ratelimit-limit-requests": {
    description: "The caller's requests per minute on this route (their tier's limit).",
    schema: { type: "integer", minimum: 1 },
  },
  "x-ratelimit-reset-requests": {
    description: "Longest time until the limit's window resets, as a duration (`1m0s`).",
    schema: { type: "string" },
  },
};
const rateLimitedHeaders = {
  ...rateLimitHeaders,
  "x-ratelimit-remaining-requests": {
    description: "`0`, on the 429 `rate_limited` only.",
    schema: { type: "integer", minimum: 0 },
  },
};

/**
 * The error responses of an operation (500 always included), in `envelope`, with the headers each
 * carries: `WWW-Authenticate` on 401, `Retry-After` on 429, and with `rateLimited` (a route under
 * the per-user request limit) the rate-limit headers on 429 too.
 */
export function errorResponses(
  statuses: ErrorStatus[],
  envelope: Envelope,
  options: { rateLimited?: boolean } = {},
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const status of [...statuses, 500] as const) {
    const headers = {
      ...(options.rateLimited && status === 429 ? rateLimitedHeaders : {}),
      ...(status === 401 ? wwwAuthenticateHeader : {}),
      ...(status === 429 || status === 503 ? retryAfterHeader : {}),
    };
    out[String(status)] = {
      description: statusText(status),
      ...(Object.keys(headers).length > 0 ? { headers } : {}),
      content: { "application/json": { schema: ref(envelope) } },
    };
  }
  return out;
}

/** `application/json` content of a component. */
export const json = (name: ComponentName) => ({ "application/json": { schema: ref(name) } });

/** A required JSON request body of a component. */
export const jsonBody = (name: ComponentName, description?: string) => ({
  required: true,
  ...(description ? { description } : {}),
  content: json(name),
});

/** The `{id}` path parameter. */
export const pathId = (what: string) => ({
  name: "id",
  in: "path",
  required: true,
  description: `The ${what}'s id.`,
  schema: { type: "string" },
});

/** `limit` and `cursor` of keyset-paginated lists. */
export const pageParameters = [
  {
    name: "limit",
    in: "query",
    required: false,
    description: "Page size.",
    schema: { type: "integer", minimum: 1, maximum: 100, default: 20 },
  },
  {
    name: "cursor",
    in: "query",
    required: false,
    description: "`next_cursor` of the previous page.",
    schema: { type: "string" },
  },
];

/** `from` and `to` of a usage report (`GET /v1/usage` and the operators' copy). */
export const usageRangeParameters = [
  {
    name: "from",
    in: "query",
    required: false,
    description: "First UTC day (inclusive); default `to`.",
    schema: { type: "string", format: "date" },
  },
  {
    name: "to",
    in: "query",
    required: false,
    description: "Last UTC day (inclusive); default today.",
    schema: { type: "string", format: "date" },
  },
];
