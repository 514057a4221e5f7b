/**
 * `x-d1-bookmark` in the document (middleware/d1-session.ts): a reusable request header parameter
 * and response header, added to every operation of the authenticated `/v1` routes.
 */

import { type Envelope, errorResponses } from "./operations";

const D1_BOOKMARK = "[0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{32}";
const SHARD_TAG = "[0-9]{4}~";
const EXAMPLE = "0001~00000000-00000012-00000000-00000000000000000000000000000000";

/** As handed out: the D1 bookmark tagged with its shard (store/sessions.ts `tagBookmark`). */
const BOOKMARK_SCHEMA = { type: "string", pattern: `^${SHARD_TAG}${D1_BOOKMARK}$`, examples: [EXAMPLE] };

/** As accepted: also the untagged form handed out before the tag (store/sessions.ts `readBookmark`). */
const GIVEN_BOOKMARK_SCHEMA = {
  type: "string",
  pattern: `^(${SHARD_TAG})?${D1_BOOKMARK}$`,
  examples: [EXAMPLE],
};

/** `components.parameters.D1Bookmark`. */
export const d1BookmarkParameter = {
  name: "x-d1-bookmark",
  in: "header",
  required: false,
  description:
    "The latest `x-d1-bookmark` this app received (a response header, or `d1_bookmark` of a stream's terminal event), " +
    "sent back unchanged (treat it as opaque). Reads then see at least what that bookmark saw, possibly from a " +
    "database replica near the caller; without it they read from the primary. A bookmark of another database than " +
    "the caller's current one (the caller's data was moved to a new database since) is ignored: the request reads " +
    "from the primary, and its response carries a bookmark of the current database. A bookmark in the untagged form " +
    "of earlier versions is used only when the deployment has a single database, else ignored the same way. A value " +
    'that is not a bookmark is a 400 `invalid_request` with `param: "x-d1-bookmark"`.',
  schema: GIVEN_BOOKMARK_SCHEMA,
};

/** `components.headers.D1Bookmark`. */
export const d1BookmarkHeader = {
  description:
    "The request's latest D1 bookmark, naming the database it is of, on every response of a request that read or " +
    "wrote the caller's data (errors included): store it and send it back unchanged as `x-d1-bookmark` to read your " +
    "own writes from any replica. A streamed answer is stored after the headers: its bookmark is `d1_bookmark` of " +
    "the terminal event.",
  schema: BOOKMARK_SCHEMA,
};

const PARAMETER_REF = { $ref: "#/components/parameters/D1Bookmark" };
const HEADER_REF = { $ref: "#/components/headers/D1Bookmark" };
const METHODS = new Set(["get", "put", "post", "patch", "delete", "head", "options"]);

/**
 * `paths` with the bookmark parameter and response header on every operation under `/v1/`
 * (every response but the 401, which is sent before the session opens), and a 400 where the
 * operation had none. New objects: the operations' responses may be shared between paths.
 */
export function withD1Bookmarks(
  paths: Record<string, Record<string, unknown>>,
): Record<string, Record<string, unknown>> {
  return Object.fromEntries(
    Object.entries(paths).map(([path, item]) => {
      if (!path.startsWith("/v1/")) return [path, item];
      const operations = Object.entries(item).map(([key, value]) => [
        key,
        METHODS.has(key) && isOperation(value) ? withBookmark(value) : value,
      ]);
      return [path, Object.fromEntries(operations)];
    }),
  );
}

type Response = { headers?: Record<string, unknown> } & Record<string, unknown>;

interface Operation {
  parameters?: unknown[];
  responses: Record<string, Response>;
  [key: string]: unknown;
}

/** An operation object as `buildPaths()` writes them: `responses` always present. */
function isOperation(value: unknown): value is Operation {
  return typeof value === "object" && value !== null && "responses" in value;
}

/** The error envelope an operation's 401 is documented in (`Error` unless it is OpenAI's). */
function envelopeOf(responses: Record<string, Response>): Envelope {
  return JSON.stringify(responses["401"] ?? {}).includes("#/components/schemas/OpenAIError")
    ? "OpenAIError"
    : "Error";
}

function withBookmark(operation: Operation): Operation {
  const all: Record<string, Response> = { ...operation.responses };
  // Any route answers a malformed bookmark with 400, in the envelope of its other errors.
  const badRequest = errorResponses([400], envelopeOf(all))["400"];
  if (!all["400"] && isResponse(badRequest)) all["400"] = badRequest;
  const responses: Record<string, Response> = {};
  for (const [status, response] of Object.entries(all))
    responses[status] =
      status === "401"
        ? response
        : { ...response, headers: { ...response.headers, "x-d1-bookmark": HEADER_REF } };
  return { ...operation, parameters: [...(operation.parameters ?? []), PARAMETER_REF], responses };
}

function isResponse(value: unknown): value is Response {
  return typeof value === "object" && value !== null;
}
