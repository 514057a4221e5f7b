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

/**
 * A bookmark as this API hands it out (`x-d1-bookmark`, `d1_bookmark`): the binding index of the
 * shard database it is a position of (`DB` = 0, `DB_1` = 1, …) in 4 decimal digits, `~`, and the
 * D1 bookmark, e.g. `0001~00000000-00000012-00000000-00000000000000000000000000000000`.
 *
 * A D1 bookmark means something in one database's history only: what D1 does with another
 * database's bookmark is undocumented (it may wait for a position that database never reaches),
 * and after a reshard an app still holds one of its user's old shard. Binding indexes never change
 * meaning (a reshard only adds bindings), so the tag names the database across shard-count
 * changes. The fixed-width tag first keeps the apps' rule "of two bookmarks keep the greater
 * string" (README) right across a move: a reshard moves users only to a new, higher-numbered
 * shard (Jump Consistent Hash, store/shards.ts), so the new shard's bookmarks sort after the
 * old's.
 */
const TAGGED = /^([0-9]{4})~([0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{32})$/;

/**
 * The bookmark to hand out for D1 bookmark `bookmark` of shard `shard` ({@link TAGGED}); null
 * stays null. `shard` is below 10,000 (a Worker's bindings are far fewer).
 */
export function tagBookmark(bookmark: string | null, shard: number): string | null {
  return bookmark === null ? null : `${String(shard).padStart(4, "0")}~${bookmark}`;
}

/**
 * A client's bookmark, read: `bookmark` is the D1 bookmark to open the session at, or null to
 * start at the primary (`"first-primary"`); `ok: false` when the value is malformed.
 */
export type ClientBookmark = { ok: true; bookmark: string | null } | { ok: false };

/**
 * Reads a client's `x-d1-bookmark` for a user whose bookmarks are of shard `shard.index` among
 * `shard.count` shards (store/shards.ts `bookmarkShard`). A tagged bookmark ({@link TAGGED}) of
 * that shard is used; one of another shard is ignored (null: the session starts at the primary,
 * which has every write of the user's, so read-your-writes holds and only the nearby replica is
 * given up for that one request).
 *
 * An untagged D1 bookmark ({@link BOOKMARK}), the form handed out before bookmarks were tagged, is
 * used only when the deployment has one shard (its only database wrote it); with more shards it
 * may be of any of them, so it is ignored as well. Anything else is malformed.
 */
export function readBookmark(value: string, shard: { index: number; count: number }): ClientBookmark {
  const tagged = TAGGED.exec(value);
  if (tagged) return { ok: true, bookmark: Number(tagged[1]) === shard.index ? tagged[2]! : null };
  if (BOOKMARK.test(value)) return { ok: true, bookmark: shard.count === 1 ? value : null };
  return { ok: false };
}

/**
 * The later of two bookmarks of one database (either may be null: none known). During a reshard a
 * forwarded user's two may be of different databases (old and new shard); the result is then
 * arbitrary but harmless: it is tagged with the old shard (store/shards.ts `bookmarkShard`) and so
 * never used as a read position, neither during the reshard nor after it.
 */
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
   * @param given the client's D1 bookmark ({@link readBookmark}): reads see at least what it saw;
   *   null: the first query goes to the primary.
   * @param tag the shard index its bookmarks are tagged with ({@link tagBookmark}).
   */
  constructor(
    private readonly shard: Pick<D1Database, "withSession">,
    private readonly given: string | null,
    private readonly tag: number,
  ) {}

  /** The session the request's queries run in, opened on first use (opening costs no round trip). */
  get db(): D1DatabaseSession {
    this.session ??= this.shard.withSession(this.given ?? "first-primary");
    return this.session;
  }

  /** Adds the (untagged) D1 bookmark of a write made for this request outside the session (null: none). */
  report(bookmark: string | null): void {
    this.reported = laterBookmark(this.reported, bookmark);
  }

  /**
   * The latest bookmark of this request: of its session's last query or of a reported write,
   * whichever is later, tagged with its shard ({@link tagBookmark}). Null when the request
   * neither used the session nor reported a write.
   */
  bookmark(): string | null {
    return tagBookmark(laterBookmark(this.session?.getBookmark() ?? null, this.reported), this.tag);
  }
}
