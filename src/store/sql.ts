import sql, { join, type RawValue, raw, type Sql } from "sql-template-tag";
import type { D1Queries } from "./sessions";

/**
 * D1 statements written as tagged templates (`sql-template-tag`): each `${value}` stands in the
 * SQL where it is used and is bound as a `?` parameter, so a reader sees which value is which,
 * and a fragment (a shared condition) nests in a statement with its own values. A value used
 * twice is bound twice; D1 allows 100 bound parameters per statement
 * (developers.cloudflare.com/d1/platform/limits/). `undefined` is not a D1 value: pass `null`.
 */
export { join, raw, type Sql, sql };

/**
 * `(a, b) VALUES (?, ?)`: a row to insert, each value written beside its column's name. A value
 * may be a fragment (a subquery). The names are code, never input: they are not escaped.
 */
export function values(row: Readonly<Record<string, RawValue>>): Sql {
  return sql`(${columnNames(row)}) VALUES (${join(Object.values(row))})`;
}

/**
 * `(a, b) SELECT ?, ?`: {@link values} for `INSERT … SELECT … WHERE`, where a condition after
 * it decides whether the row is written.
 */
export function selectValues(row: Readonly<Record<string, RawValue>>): Sql {
  return sql`(${columnNames(row)}) SELECT ${join(Object.values(row))}`;
}

const columnNames = (row: Readonly<Record<string, RawValue>>) => raw(Object.keys(row).join(", "));

/** A prepared statement and, for the type checker only, the row type it returns. */
export interface Query<Row> {
  readonly statement: D1PreparedStatement;
  /** Never set: carries `Row` to {@link batch}. */
  readonly row?: Row;
}

/** Prepares `text` with its values bound; `Row` is the shape of the rows it returns. */
export function query<Row = never>(db: D1Queries, text: Sql): Query<Row> {
  return { statement: db.prepare(text.sql).bind(...text.values) };
}

type Results<Q extends Record<string, Query<unknown>>> = {
  [K in keyof Q]: D1Result<Q[K] extends Query<infer Row> ? Row : never>;
};

/**
 * Runs named queries as one `batch()` (one round trip, one transaction) in the order they are
 * written, and returns each one's result under its name.
 */
export async function batch<Q extends Record<string, Query<unknown>>>(
  db: D1Queries,
  queries: Q,
): Promise<Results<Q>> {
  const names = Object.keys(queries);
  const results = await db.batch(names.map((name) => queries[name]!.statement));
  // D1 returns one result per statement, in order; the rows' type is what each query declared.
  return Object.fromEntries(names.map((name, i) => [name, results[i]])) as Results<Q>;
}
