/**
 * `x-d1-bookmark` in the document (middleware/d1-session.ts): a reusable request header parameter
 * and response header, added to every operation of the authenticated `/v1` routes.
 */

const BOOKMARK_SCHEMA = {
  type: "string",
  pattern: "^[0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{32}$",
  examples: ["00000000-00000012-00000000-00000000000000000000000000000000"],
};

/** `components.parameters.D1Bookmark`. */
export const d1BookmarkParameter = {
  name: "x-d1-bookmark",
  in: "header",
  required: false,
  description:
    "The latest `x-d1-bookmark` this app received (a response header, or `d1_bookmark` of a stream's terminal event). " +
    "Reads then see at least what that bookmark saw, possibly from a database replica near the caller; without it they " +
    'read from the primary. A value that is not a bookmark is a 400 `invalid_request` with `param: "x-d1-bookmark"`.',
  schema: BOOKMARK_SCHEMA,
};

/** `components.headers.D1Bookmark`. */
export const d1BookmarkHeader = {
  description:
    "The request's latest D1 bookmark, on every response of a request that read or wrote the caller's data (errors " +
    "included): store it and send it back as `x-d1-bookmark` to read your own writes from any replica. A streamed " +
    "answer is stored after the headers: its bookmark is `d1_bookmark` of the terminal event.",
  schema: BOOKMARK_SCHEMA,
};

const PARAMETER_REF = { $ref: "#/components/parameters/D1Bookmark" };
const HEADER_REF = { $ref: "#/components/headers/D1Bookmark" };
const METHODS = new Set(["get", "put", "post", "patch", "delete", "head", "options"]);

/**
 * `paths` with the bookmark parameter and response header on every operation under `/v1/`
 * (every response but the 401, which is sent before the session opens). New objects: the
 * operations' responses may be shared between paths.
 */
export function withD1Bookmarks(
  paths: Record<string, Record<string, unknown>>,
): Record<string, Record<string, unknown>> {
  return Object.fromEntries(
    Object.entries(paths).map(([path, item]) => {
      if (!path.startsWith("/v1/")) return [path, item];
      const operations = Object.entries(item).map(([key, value]) =>
        METHODS.has(key) && typeof value === "object" && value !== null
          ? [key, withBookmark(value as Operation)]
          : [key, value],
      );
      return [path, Object.fromEntries(operations)];
    }),
  );
}

interface Operation {
  parameters?: unknown[];
  responses?: Record<string, { headers?: Record<string, unknown> } & Record<string, unknown>>;
  [key: string]: unknown;
}

function withBookmark(operation: Operation): Operation {
  const responses = Object.fromEntries(
    Object.entries(operation.responses ?? {}).map(([status, response]) => [
      status,
      status === "401"
        ? response
        : { ...response, headers: { ...response.headers, "x-d1-bookmark": HEADER_REF } },
    ]),
  );
  return { ...operation, parameters: [...(operation.parameters ?? []), PARAMETER_REF], responses };
}
