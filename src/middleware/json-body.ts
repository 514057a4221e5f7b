import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import { validator } from "hono/validator";
import type * as z from "zod";
import type { AppEnv } from "../app-env";
import { invalidRequest } from "../errors/api-error";
import { checkJsonInput, parseBody } from "../errors/invalid-request";
import { discardBody, readBodyText } from "./body-text";
import { jsonMediaTypeProblem } from "./json-media-type";

/** Options of {@link jsonBody}. */
export interface JsonBodyOptions {
  /** A request with no body (or a declared length of 0) is read as `{}` instead of refused. */
  optional?: boolean;
}

/**
 * The one way a JSON request body enters edge-chat. In order: declared as JSON (415
 * `unsupported_media_type`), at most `MAX_BODY_BYTES` (413 `payload_too_large`), valid UTF-8
 * (400), present (400), parsed (400), then, in Hono's `validator("json")`, bounded in nesting and
 * well-formed (`checkJsonInput`) and validated with `parse`: a zod schema, or a function that
 * throws an `ApiError`; the route reads the typed value with `c.req.valid("json")`. A validation
 * failure is 400 `invalid_request` naming the first field at fault. A body refused for its type
 * or size is still read to its end (`discardBody`), so the client receives the error.
 *
 * Hono's validator alone is not enough: it reads a body of any other `Content-Type` as `{}` and
 * has no size limit. The checks above run first and hand the checked text on as the request's
 * body (as Hono's own `bodyLimit` does), which the validator parses.
 */
export function jsonBody<T>(parse: z.ZodType<T> | ((value: unknown) => T), options: JsonBodyOptions = {}) {
  const validate = validator("json", (value: unknown): T => {
    checkJsonInput(value);
    return typeof parse === "function" ? parse(value) : parseBody(parse, value);
  });
  const middleware: typeof validate = async (c, next) => {
    const text = await readJsonText(c, options);
    const headers = new Headers(c.req.raw.headers);
    // The length of the text read is known now; a client's claim no longer applies.
    headers.delete("content-length");
    c.req.raw = new Request(c.req.raw, { headers, body: text });
    let routeReached = false;
    try {
      return await validate(c, async () => {
        routeReached = true;
        await next();
      });
    } catch (err) {
      // Before the route, the validator's only HTTPException is its JSON.parse failure.
      if (!routeReached && err instanceof HTTPException)
        throw invalidRequest("The request body is not valid JSON.");
      throw err;
    }
  };
  return middleware;
}

/** The body's text: declared as JSON, within the size limit, not empty (`{}` for an optional body left out). */
async function readJsonText(c: Context<AppEnv>, options: JsonBodyOptions): Promise<string> {
  const request = c.req.raw;
  const length = request.headers.get("content-length");
  if (options.optional && (length === "0" || (length === null && request.body === null))) return "{}";
  const refused = request.body && jsonMediaTypeProblem(request.headers.get("content-type"));
  if (refused) {
    await discardBody(request.body?.getReader() ?? null, 0);
    throw refused;
  }
  const text = await readBodyText(request, c.get("config").maxBodyBytes);
  if (text.trim() === "") throw invalidRequest("A JSON request body is required.");
  return text;
}
