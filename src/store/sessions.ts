/**
 * D1 sessions (the Sessions API of D1 read replication): a user's request reads and writes its
 * shard through one session, so its reads may be served by a nearby replica while still seeing
 * everything the request's bookmark saw, and it ends with the session's latest bookmark for the
 * client to send back (store/SCHEMA.md "Sessions").
 *
 * A session opened with `"first-primary"` sends its first query to the primary (what a plain
 * binding does for every query); one opened with a bookmark reads from any replica at least as
 * new as that bookmark. Within a session every query sees the session's own writes.
 */

/** What a store function needs of a database: a plain D1 binding and a D1 session both fit. */
export type D1Queries = Pick<D1Database, "prepare" | "batch">;

/**
 * A D1 bookmark as D1 writes it: four lowercase hex groups of 8, 8, 8 and 32 digits, e.g.
 * `00000000-00000012-00000000-00000000000000000000000000000000` (what local D1 returns; the
 * bookmarks of Cloudflare's documentation have the same shape). Bookmarks of one database
 * compare lexically: a greater one is a later point of its history.
 *
 * Checked here because D1 does not: local D1 (miniflare 4) accepts any string in
 * `withSession()`, and the session keeps the lexically greatest bookmark it has seen, so a
 * garbage value such as `"zzz"` would stick as the session's "latest" bookmark.
 */
const BOOKMARK = /^[0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{32}$/;

/** Whether `value` has the shape of a D1 bookmark ({@link BOOKMARK}). */
export function isBookmark(value: string): boolean {
  return BOOKMARK.test(value);
}

/** The later of two bookmarks of one database (either may be null: none known). */
export function laterBookmark(a: string | null, b: string | null): string | null {
  if (a === null) return b;
  if (b === null) return a;
  return a >= b ? a : b;
}

/**
 * One request's session on a user's shard. Queries go through {@link db}; bookmarks of writes made
 * elsewhere for the same request (by a conversation's Durable Object) are added with
 * {@link report}; {@link bookmark} is what the response gives back.
 */
export class UserSession {
  private session: D1DatabaseSession | null = null;
  private reported: string | null = null;

  /**
   * @param shard the user's shard (store/shards.ts `userDb`).
   * @param given the client's bookmark ({@link isBookmark}): reads see at least what it saw;
   *   null: the first query goes to the primary.
   */
  constructor(
    private readonly shard: Pick<D1Database, "withSession">,
    private readonly given: string | null,
  ) {}

  /** The session the request's queries run in, opened on first use (opening costs no round trip). */
  get db(): D1DatabaseSession {
    this.session ??= this.shard.withSession(this.given ?? "first-primary");
    return this.session;
  }

  /** Adds the bookmark of a write made for this request outside the session (null: none). */
  report(bookmark: string | null): void {
    this.reported = laterBookmark(this.reported, bookmark);
  }

  /**
   * The latest bookmark of this request: of its session's last query or of a reported write,
   * whichever is later. Null when the request neither used the session nor reported a write.
   */
  bookmark(): string | null {
    return laterBookmark(this.session?.getBookmark() ?? null, this.reported);
  }
}
