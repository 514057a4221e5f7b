/**
 * One step of a Durable Object's SQLite schema. Versions are consecutive from 1; a step runs
 * once per object, in a transaction with the record of its version.
 */
export interface Migration {
  version: number;
  /** What the step changes (kept in the version record). */
  description: string;
  up(sql: SqlStorage): void;
  /**
   * For the first version only: whether an object's storage already holds this version's
   * schema without a version record (it was created before the record existed), so it is
   * recorded as this version instead of being created again.
   */
  present?(sql: SqlStorage): boolean;
}

/** Where the applied versions are recorded (one row per applied migration). */
const VERSION_TABLE = "schema_migrations";

/**
 * The versioned schema of one Durable Object's SQLite storage: brings it to the latest of
 * `migrations`, applying each missing step in order, each in its own transaction.
 *
 * Versions are recorded in a table rather than `PRAGMA user_version`: a table also records
 * when and what was applied, and needs nothing beyond the plain SQL that workerd's `sql.exec`
 * runs. Names starting `_cf_` are reserved by workerd, hence no leading underscore.
 *
 * The SQLite API is synchronous, so calling {@link migrate} from the object's constructor runs
 * it before any request or alarm reaches the object (no `blockConcurrencyWhile` is needed: there
 * is no await for other events to interleave at).
 */
export class StorageSchema {
  constructor(
    private readonly storage: DurableObjectStorage,
    private readonly migrations: readonly Migration[],
    private readonly now: () => number = Date.now,
  ) {
    migrations.forEach((m, i) => {
      if (m.version !== i + 1) throw new Error(`Migration ${i} has version ${m.version}, expected ${i + 1}.`);
      if (i > 0 && m.present) throw new Error(`Only version 1 may detect an unversioned schema.`);
    });
  }

  /** The latest version the migrations define. */
  get latest(): number {
    return this.migrations.length;
  }

  /** The storage's recorded version (0 when none is recorded). */
  version(): number {
    if (!this.hasVersionTable()) return 0;
    const row = this.storage.sql.exec(`SELECT MAX(version) AS v FROM ${VERSION_TABLE}`).one() as {
      v: number | null;
    };
    return row.v ?? 0;
  }

  /**
   * Applies every migration above the recorded version; returns the versions before and after.
   * A migration that throws rolls back with its version record and rethrows (later ones are not run).
   */
  migrate(): { from: number; to: number } {
    const sql = this.storage.sql;
    sql.exec(`CREATE TABLE IF NOT EXISTS ${VERSION_TABLE} (
      version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at INTEGER NOT NULL)`);
    let current = this.version();
    const first = this.migrations[0];
    if (current === 0 && first?.present?.(sql)) {
      this.record(first, "recorded as present");
      current = 1;
    }
    const from = current;
    for (const m of this.migrations.slice(current)) {
      this.storage.transactionSync(() => {
        m.up(sql);
        this.record(m);
      });
      current = m.version;
    }
    return { from, to: current };
  }

  private record(m: Migration, note?: string): void {
    this.storage.sql.exec(
      `INSERT INTO ${VERSION_TABLE} (version, description, applied_at) VALUES (?, ?, ?)`,
      m.version,
      note ? `${m.description} (${note})` : m.description,
      this.now(),
    );
  }

  private hasVersionTable(): boolean {
    return (
      this.storage.sql
        .exec("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", VERSION_TABLE)
        .toArray().length > 0
    );
  }
}
