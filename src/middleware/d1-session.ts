import type { MiddlewareHandler } from "hono";
import type { AppEnv } from "../app-env";
import { invalidRequest } from "../errors/api-error";
import { readBookmark, UserSession } from "../store/sessions";
import { bookmarkShard, userDb } from "../store/shards";

/**
 * The request and response header of D1 bookmarks (README, "Reading your own writes near the
 * user"): the app stores the latest one it was given and sends it back, so its reads see its own
 * writes wherever they are served from.
 */
export const BOOKMARK_HEADER = "x-d1-bookmark";

/**
 * Opens the authenticated user's D1 session (`userD1`, store/sessions.ts) for the routes behind
 * it: at the client's `x-d1-bookmark` when it sends one of the user's shard (reads see at least
 * what that bookmark saw, possibly from a nearby replica), else at the primary
 * (`"first-primary"`, as a plain binding reads); a bookmark of another shard, as an app holds
 * after its user was moved by a reshard, is ignored (store/sessions.ts `readBookmark`). Every
 * response of a request that used the session or reported a write, errors included, carries the
 * latest bookmark, tagged with its shard, in `x-d1-bookmark`. A malformed bookmark is 400
 * `invalid_request` (`param`: the header). Register it after the auth middleware.
 */
export const userD1Session: MiddlewareHandler<AppEnv> = async (c, next) => {
  const header = oneValue(c.req.header(BOOKMARK_HEADER));
  const userId = c.get("userId");
  const shard = bookmarkShard(c.env, userId);
  const given = header === undefined ? ({ ok: true, bookmark: null } as const) : readBookmark(header, shard);
  if (!given.ok)
    throw invalidRequest(
      `${BOOKMARK_HEADER} must be a bookmark this API returned in ${BOOKMARK_HEADER} (e.g. 0001~00000000-00000012-00000000-00000000000000000000000000000000).`,
      BOOKMARK_HEADER,
    );
  const session = new UserSession(userDb(c.env, userId), given.bookmark, shard.index);
  c.set("userD1", session);
  await next();
  const bookmark = session.bookmark();
  if (bookmark !== null) c.header(BOOKMARK_HEADER, bookmark);
};

/**
 * The header's value when it was sent once, or several times alike (a proxy or client that
 * repeats a header reaches the Worker as one value joined by ", ", RFC 9110 §5.3); different
 * repeated values stay joined and are malformed.
 */
function oneValue(header: string | undefined): string | undefined {
  if (header === undefined || !header.includes(",")) return header;
  const values = new Set(header.split(",").map((v) => v.trim()));
  return values.size === 1 ? [...values][0] : header;
}
