/**
 * 400 `invalid_request` from validation failures, shared by the JSON body middleware and the
 * routes (both above this layer): a DashScope schema error, a zod issue, a JSON input problem.
 */
import type { z } from "zod";
import { describeIssue, findJsonInputProblem, type SchemaError } from "../dashscope/schema";
import { type ApiError, invalidRequest } from "./api-error";

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
function zodIssueToInvalidRequest(error: z.ZodError, paramPrefix?: string): ApiError {
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
