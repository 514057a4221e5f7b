/**
 * Routing during a reshard (`RESHARD_FROM` set; store/SCHEMA.md "Shards"): the database of a user
 * whose shard differs between the old and the new shard count. Where such a user lives is the
 * forwarding row in their OLD shard (`shard_moves`, migration 0017): none or `moving` → the old
 * shard, `moved` → the new one.
 *
 * {@link movingUserDb} returns a D1Database whose statements resolve that on every round trip,
 * without an extra one: each goes to the old shard as a `batch()` (one transaction) that first
 * reads the forwarding row (reads) or inserts into `shard_write_checks` (writes: its trigger
 * aborts when the user is `moving` or `moved`), so the answer and the statement cannot be
 * separated by the mover. A `moved` answer re-runs the statement on the new shard (and the
 * isolate remembers it: `moved` is final); a write while `moving` throws {@link UserMovingError}.
 * So a user's reads are served throughout, and writes are refused only between the mover's
 * `moving` and `moved`, the seconds of their own move.
 */

const USER_MOVING = "The user is being moved to another database; retry shortly.";

/** A write refused because its user is being moved to another shard: HTTP 503 `resharding`. */
export class UserMovingError extends Error {
  constructor() {
    super(USER_MOVING);
    this.name = "UserMovingError";
  }
}

/**
 * Whether `err` is a {@link UserMovingError}, also after it crossed a Durable Object call: RPC
 * rethrows an error in the caller as a plain `Error` with the same message, not as its subclass
 * (developers.cloudflare.com/workers/runtime-apis/rpc/error-handling/).
 */
export function isUserMovingError(err: unknown): boolean {
  return err instanceof UserMovingError || (err instanceof Error && err.message === USER_MOVING);
}

/**
 * The `Retry-After` of a refused write, in seconds. A user's move is a few round trips per 100 of
 * their rows (reshard.ts): about a second for hundreds of messages, more for the largest accounts.
 */
export const RESHARD_RETRY_AFTER_SECONDS = 5;

/** The forwarding of one user: the two databases and the routing hash (16 hex digits). */
export interface MovingUser {
  from: D1Database;
  to: D1Database;
  hash: string;
  /** Remembers the hashes found `moved` (per isolate and deployment's shard list). */
  moved: Set<string>;
}

/**
 * Whether `sql` only reads. A statement starting with SELECT, or a WITH whose body is a SELECT
 * (no INSERT, UPDATE, DELETE or REPLACE keyword anywhere), reads; everything else writes. A
 * false "write" only costs the guard's failure on a `moving` user (503 instead of the read), so
 * the rule errs towards writes.
 */
export function isReadOnly(sql: string): boolean {
  const text = sql.replace(/--[^\n]*|\/\*[\s\S]*?\*\//g, " ").trimStart();
  const first = /^[A-Za-z]+/.exec(text)?.[0]?.toUpperCase();
  if (first === "SELECT") return true;
  if (first !== "WITH") return false;
  return !/\b(INSERT|UPDATE|DELETE|REPLACE)\b/i.test(text);
}

/** What a statement of a {@link movingUserDb} is: its SQL and bound values. */
class ForwardedStatement implements D1PreparedStatement {
  constructor(
    private readonly route: Router,
    readonly sql: string,
    readonly values: readonly unknown[],
  ) {}

  bind(...values: unknown[]): D1PreparedStatement {
    return new ForwardedStatement(this.route, this.sql, values);
  }

  first<T = unknown>(colName: string): Promise<T | null>;
  first<T = Record<string, unknown>>(): Promise<T | null>;
  async first<T>(colName?: string): Promise<T | null> {
    const [result] = await this.route.run([this]);
    const row = result?.results[0] as Record<string, unknown> | undefined;
    if (!row) return null;
    return (colName === undefined ? row : (row[colName] ?? null)) as T | null;
  }

  async run<T = Record<string, unknown>>(): Promise<D1Result<T>> {
    const [result] = await this.route.run<T>([this]);
    return result!;
  }

  async all<T = Record<string, unknown>>(): Promise<D1Result<T>> {
    return this.run<T>();
  }

  raw<T = unknown[]>(options: { columnNames: true }): Promise<[string[], ...T[]]>;
  raw<T = unknown[]>(options?: { columnNames?: false }): Promise<T[]>;
  // Rows come back as objects through batch(): raw() rebuilds the arrays from them, so columns
  // of the same name collapse into one (alias them). Nothing in src/ uses raw().
  async raw<T>(options?: { columnNames?: boolean }): Promise<[string[], ...T[]] | T[]> {
    const [result] = await this.route.run<Record<string, unknown>>([this]);
    const rows = result?.results ?? [];
    const arrays = rows.map((row) => Object.values(row) as T);
    if (!options?.columnNames) return arrays;
    return [Object.keys(rows[0] ?? {}), ...arrays];
  }
}

/** Where a {@link ForwardedStatement} runs: a database, or a session of one. */
interface Target {
  prepare(query: string): D1PreparedStatement;
  batch<T = unknown>(statements: D1PreparedStatement[]): Promise<D1Result<T>[]>;
}

/** Runs forwarded statements for one user, on the old shard with its check, or on the new one. */
class Router {
  constructor(
    private readonly user: MovingUser,
    private readonly from: () => Target,
    private readonly to: () => Target,
  ) {}

  async run<T>(statements: readonly ForwardedStatement[]): Promise<D1Result<T>[]> {
    if (this.user.moved.has(this.user.hash)) return this.on(this.to(), statements);
    const writes = statements.some((s) => !isReadOnly(s.sql));
    const old = this.from();
    const check = writes
      ? old.prepare("INSERT INTO shard_write_checks (routing_hash) VALUES (?)").bind(this.user.hash)
      : old.prepare("SELECT state FROM shard_moves WHERE routing_hash = ?").bind(this.user.hash);
    let results: D1Result[];
    try {
      results = await old.batch([check, ...statements.map((s) => old.prepare(s.sql).bind(...s.values))]);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      if (message.includes("reshard_moving")) throw new UserMovingError();
      if (!message.includes("reshard_moved")) throw err;
      this.user.moved.add(this.user.hash);
      return this.on(this.to(), statements);
    }
    const [state, ...rest] = results;
    if ((state?.results[0] as { state?: string } | undefined)?.state === "moved") {
      this.user.moved.add(this.user.hash);
      return this.on(this.to(), statements);
    }
    return rest as D1Result<T>[];
  }

  private on<T>(target: Target, statements: readonly ForwardedStatement[]): Promise<D1Result<T>[]> {
    return target.batch<T>(statements.map((s) => target.prepare(s.sql).bind(...s.values)));
  }
}

/** The batch of statements made by `prepare` of a forwarded database or session. */
function forwardedBatch<T>(router: Router, statements: D1PreparedStatement[]): Promise<D1Result<T>[]> {
  return router.run<T>(
    statements.map((s) => {
      if (!(s instanceof ForwardedStatement)) throw new TypeError("batch() takes this database's statements");
      return s;
    }),
  );
}

class ForwardedSession implements D1DatabaseSession {
  private readonly router: Router;
  private used: D1DatabaseSession | null = null;

  constructor(user: MovingUser, constraint: string | undefined) {
    let from: D1DatabaseSession | null = null;
    let to: D1DatabaseSession | null = null;
    // A bookmark names a point in one database's history, and the client's may come from either
    // shard (it was sent before or after the move). Such a session starts at the primary instead,
    // which has every write of the user's on that shard: read-your-writes holds, only the nearby
    // replica is given up, for these users and only while RESHARD_FROM is set.
    const anchor =
      constraint === undefined || constraint === "first-unconstrained" ? constraint : "first-primary";
    this.router = new Router(
      user,
      () => (this.used = from ??= user.from.withSession(anchor)),
      () => (this.used = to ??= user.to.withSession(anchor)),
    );
  }

  prepare(query: string): D1PreparedStatement {
    return new ForwardedStatement(this.router, query, []);
  }

  batch<T = unknown>(statements: D1PreparedStatement[]): Promise<D1Result<T>[]> {
    return forwardedBatch<T>(this.router, statements);
  }

  getBookmark(): string | null {
    return this.used?.getBookmark() ?? null;
  }
}

class ForwardedDatabase implements D1Database {
  private readonly router: Router;

  constructor(private readonly user: MovingUser) {
    this.router = new Router(
      user,
      () => user.from,
      () => user.to,
    );
  }

  prepare(query: string): D1PreparedStatement {
    return new ForwardedStatement(this.router, query, []);
  }

  batch<T = unknown>(statements: D1PreparedStatement[]): Promise<D1Result<T>[]> {
    return forwardedBatch<T>(this.router, statements);
  }

  withSession(constraintOrBookmark?: string): D1DatabaseSession {
    return new ForwardedSession(this.user, constraintOrBookmark);
  }

  // exec() runs several statements with no batch to add the check to; the Worker never calls it.
  exec(): Promise<D1ExecResult> {
    return Promise.reject(new TypeError("exec() is not routed during a reshard"));
  }

  dump(): Promise<ArrayBuffer> {
    return Promise.reject(new TypeError("dump() is not routed during a reshard"));
  }
}

/** The database of a user who may be moving between `user.from` and `user.to` (see the file's comment). */
export function movingUserDb(user: MovingUser): D1Database {
  return new ForwardedDatabase(user);
}
