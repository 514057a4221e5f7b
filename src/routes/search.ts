import { Hono } from "hono";
import type { AppEnv } from "../app-env";
import { invalidRequest } from "../errors/api-error";
import { decodeSearchCursor } from "../store/cursor";
import { MAX_SEARCH_QUERY_LENGTH, MAX_SEARCH_TERMS, search, searchTerms } from "../store/search";
import { hasControlCharacter, MULTILINE_WHITESPACE } from "../text/control-characters";
import { parseCursor, parsePageLimit } from "./validation";

/**
 * The terms of the `q` query value: required, not blank after trimming, at most
 * {@link MAX_SEARCH_QUERY_LENGTH} code units and {@link MAX_SEARCH_TERMS} terms, no control
 * character but tab and line breaks; anything else is 400 (param `q`).
 */
function parseQuery(raw: string | undefined): string[] {
  const q = raw?.trim() ?? "";
  if (q === "") throw invalidRequest("q is required and must not be blank.", "q");
  if (q.length > MAX_SEARCH_QUERY_LENGTH) {
    throw invalidRequest(`q must be at most ${MAX_SEARCH_QUERY_LENGTH} characters.`, "q");
  }
  // A NUL would end the FTS5 query string early (D1: "unterminated string"); no control
  // character has a use in a search.
  if (hasControlCharacter(q, MULTILINE_WHITESPACE)) {
    throw invalidRequest("q must not contain control characters.", "q");
  }
  const terms = searchTerms(q);
  if (terms.length === 0) throw invalidRequest("q has no search terms.", "q");
  if (terms.length > MAX_SEARCH_TERMS) {
    throw invalidRequest(`q must have at most ${MAX_SEARCH_TERMS} terms.`, "q");
  }
  return terms;
}

/**
 * `GET /v1/search?q=&limit=&cursor=` (`../shared/API.md` §2.3), mounted at `/v1` behind auth:
 * the caller's messages and conversation titles containing every term of `q`, best first.
 */
export const searchRoutes = new Hono<AppEnv>().get("/search", async (c) => {
  const terms = parseQuery(c.req.query("q"));
  const limit = parsePageLimit(c.req.query("limit"));
  const after = parseCursor(c.req.query("cursor"), decodeSearchCursor);
  return c.json(await search(c.get("userD1").db, c.get("userId"), terms, { limit, after }));
});
