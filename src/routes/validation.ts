import type { z } from "zod";
import { describeIssue, findJsonInputProblem, type SchemaError } from "../dashscope/schema";
import { type ApiError, invalidRequest } from "../errors/api-error";

/** The 400 `invalid_request` of a schema validation failure, naming the field at fault (`param`) when there is one. */
export function toInvalidRequest(error: SchemaError): ApiError {
  return invalidRequest(error.message, error.param || undefined);
}

/**
 * Turns the first issue of a failed zod parse of a request body into 400 `invalid_request`
 * with a dotted `param` path (`title`, `content.0.text`), worded like the DashScope parameter
 * errors. Parse with `{ reportInput: true }` ({@link parseBody} does) so a missing field reads
 * "is required" and a wrong type names the type expected.
 */
export function zodIssueToInvalidRequest(error: z.ZodError, paramPrefix?: string): ApiError {
  const issue = error.issues[0];
  if (!issue) return invalidRequest("The request is invalid.");
  return toInvalidRequest(describeIssue(issue, paramPrefix));
}

/**
 * Every parsed JSON body passes here first, before anything walks it: 400 `invalid_request`
 * naming the field for nesting deeper than `MAX_JSON_DEPTH` or text that is not well-formed
 * Unicode (see `findJsonInputProblem`). Returns `body` unchanged.
 */
export function checkJsonInput(body: unknown): unknown {
  const problem = findJsonInputProblem(body);
  if (problem) throw toInvalidRequest(problem);
  return body;
}

/** Parses a request body (or a part of one) with a zod schema; the first problem is a 400 naming its field. */
export function parseBody<T>(schema: z.ZodType<T>, body: unknown, paramPrefix?: string): T {
  const parsed = schema.safeParse(body, { reportInput: true });
  if (!parsed.success) throw zodIssueToInvalidRequest(parsed.error, paramPrefix);
  return parsed.data;
}

/** Largest page a list route returns. */
export const MAX_PAGE_LIMIT = 100;
/** Page size when a list request sets no `limit`. */
export const DEFAULT_PAGE_LIMIT = 20;

/**
 * Parses the `limit` query value of a list route: a plain decimal integer from 1 to
 * {@link MAX_PAGE_LIMIT}, {@link DEFAULT_PAGE_LIMIT} when absent; anything else is 400 (param `limit`).
 */
export function parsePageLimit(raw: string | undefined): number {
  if (raw === undefined || raw === "") return DEFAULT_PAGE_LIMIT;
  const n = /^\d{1,4}$/.test(raw) ? Number(raw) : NaN;
  if (!(n >= 1 && n <= MAX_PAGE_LIMIT)) {
    throw invalidRequest(`limit must be an integer from 1 to ${MAX_PAGE_LIMIT}.`, "limit");
  }
  return n;
}

/**
 * Decodes the `cursor` query value of a list route with the list's own decoder: `undefined` when
 * absent or empty (the first page); a value the decoder rejects is 400 (param `cursor`).
 */
export function parseCursor<T>(raw: string | undefined, decode: (cursor: string) => T | null): T | undefined {
  if (!raw) return undefined;
  const cursor = decode(raw);
  if (cursor === null)
    throw invalidRequest("The cursor is invalid; pass a next_cursor value unchanged.", "cursor");
  return cursor;
}
