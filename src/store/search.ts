import type { SearchHit, SearchPage } from "../resources/search";
import { snippetOf } from "../text/snippet";
import { encodeSearchCursor, type SearchCursor } from "./cursor";
import type { D1Queries } from "./sessions";
import { join, query, raw, type Sql, sql } from "./sql";
import { toIso } from "./time";

export type { SearchPage } from "../resources/search";

/**
 * Search over a user's messages and conversation titles (migration 0007; src/store/SCHEMA.md,
 * "Search"). A query is a list of terms, each matched as a substring of the text, case-insensitively;
 * a hit contains every term.
 */

/** Longest query, in UTF-16 code units after trimming. */
export const MAX_SEARCH_QUERY_LENGTH = 256;

/** Most terms in one query: each costs up to 3 bound values, and D1 allows 100 per statement. */
export const MAX_SEARCH_TERMS = 16;

/**
 * The trigram index finds substrings of 3 or more characters (code points). A query whose terms
 * are all shorter (a two-character Chinese word: 天气) reads instead the user's newest this many
 * texts and keeps those containing every term.
 */
export const SHORT_QUERY_SCAN_LIMIT = 10_000;

/** Characters a trigram needs; a shorter term cannot use the index. */
const TRIGRAM = 3;

/**
 * The terms of a query: runs of non-space characters, or `"…"` for a phrase with spaces. Every
 * character is taken literally (`*`, `-`, `:`, `NEAR(`, a lone `"`): terms reach FTS5 quoted.
 */
export function searchTerms(q: string): string[] {
  const terms: string[] = [];
  for (const m of q.matchAll(/"([^"]*\S[^"]*)"|(\S+)/gu)) {
    const term = m[1]?.trim() ?? m[2];
    if (term !== undefined && !terms.includes(term)) terms.push(term);
  }
  return terms;
}

export interface SearchOptions {
  limit: number;
  /** Where the page starts: the previous page's `next_cursor`, decoded (`decodeSearchCursor`). */
  after?: SearchCursor;
}

interface SearchRow {
  ref_id: string;
  message_id: string | null;
  conversation_id: string;
  conversation_title: string | null;
  role: "user" | "assistant" | null;
  created_at: number;
  body: string;
  score: number;
}

/** A term as an FTS5 string: in double quotes, a quote inside doubled (sqlite.org/fts5.html, 3.1). */
const ftsString = (term: string) => `"${term.replace(/"/g, '""')}"`;

/**
 * SQLite's `lower()` folds ASCII only (D1 has no ICU), so the terms compared with `lower(body)`
 * are folded the same way.
 */
const asciiLower = (text: string) => text.replace(/[A-Z]+/g, (s) => s.toLowerCase());

const codePoints = (text: string) => [...text].length;

/**
 * The hit's score, higher first: BM25's term-frequency saturation and length normalisation
 * (k1 = 1.2, b = 0.75) summed over the terms, with a fixed reference length of 200 characters in
 * place of the corpus average and no inverse document frequency. Both of those are table-wide
 * statistics that change with every write of any user, and FTS5's own `bm25()` would move a
 * hit's score between two page reads (a keyset cursor would then skip or repeat hits); this
 * score depends only on the hit's text and the query. `lb` is `lower(body)`, `dl` its length.
 */
function scoreSql(terms: readonly string[]): Sql {
  const parts = terms.map((term) => {
    const needle = asciiLower(term);
    const tf = sql`((length(lb) - length(replace(lb, ${needle}, ''))) / ${codePoints(needle)})`;
    return sql`(${tf} * 2.2 / (${tf} + 1.2 * (0.25 + 0.75 * dl / 200.0)))`;
  });
  return join(parts, " + ");
}

/**
 * One page of the user's hits for `terms` (from {@link searchTerms}, 1 to {@link MAX_SEARCH_TERMS}),
 * best score first, then newest first. Keyset pagination on `(score, id)`; one row more than
 * `limit` is read to learn whether another page exists. Only texts of the user's live
 * conversations: a deleted conversation's texts are deleted with it, in its transaction.
 */
export async function search(
  db: D1Queries,
  userId: string,
  terms: readonly string[],
  options: SearchOptions,
): Promise<SearchPage> {
  const long = terms.filter((t) => codePoints(t) >= TRIGRAM);
  const short = terms.filter((t) => codePoints(t) < TRIGRAM);
  // The index finds the long terms' texts of every user; the join keeps the caller's.
  const [from, where] =
    long.length > 0
      ? [
          sql`search_text t JOIN search_docs d ON d.doc_id = t.rowid`,
          sql`t.search_text MATCH ${long.map(ftsString).join(" AND ")} AND d.user_id = ${userId}`,
        ]
      : [
          sql`(SELECT * FROM search_docs WHERE user_id = ${userId} ORDER BY ref_id DESC
               LIMIT ${SHORT_QUERY_SCAN_LIMIT}) d JOIN search_text t ON t.rowid = d.doc_id`,
          sql`TRUE`,
        ];
  const contains = short.map((t) => sql`AND instr(lower(t.body), ${asciiLower(t)}) > 0`);
  const after = options.after
    ? sql`WHERE (score, ref_id) < (${options.after.s}, ${options.after.i})`
    : raw("");
  const { statement } = query<SearchRow>(
    db,
    sql`SELECT * FROM (
          SELECT ref_id, message_id, conversation_id, conversation_title, role, created_at, body,
                 ${scoreSql(terms)} AS score
          FROM (
            SELECT d.ref_id, d.message_id, d.conversation_id, c.title AS conversation_title, d.role,
                   d.created_at, t.body, lower(t.body) AS lb, length(t.body) AS dl
            FROM ${from} JOIN conversations c ON c.id = d.conversation_id AND c.user_id = ${userId}
            WHERE ${where} ${contains.length > 0 ? join(contains, " ") : raw("")}
          )
        ) ${after}
        ORDER BY score DESC, ref_id DESC LIMIT ${options.limit + 1}`,
  );
  const { results } = await statement.all<SearchRow>();
  const rows = results.slice(0, options.limit);
  const last = rows[rows.length - 1];
  return {
    data: rows.map((row) => hitFromRow(row, terms)),
    next_cursor: results.length > options.limit && last ? encodeSearchCursor(last.score, last.ref_id) : null,
  };
}

function hitFromRow(row: SearchRow, terms: readonly string[]): SearchHit {
  return {
    conversation_id: row.conversation_id,
    conversation_title: row.conversation_title,
    message_id: row.message_id,
    role: row.role,
    ...snippetOf(row.body, terms),
    created_at: toIso(row.created_at),
  };
}
