/** Markdown rendering of the bench's tables. */

/** Milliseconds with two decimals ("—" when not measured). */
export const ms = (v) => (Number.isFinite(v) ? v.toFixed(2) : "—");
/** A ratio with two decimals and a trailing ×. */
export const ratio = (v) => (Number.isFinite(v) ? `${v.toFixed(2)}×` : "—");
/** A signed difference in milliseconds. */
export const deltaMs = (v) => (Number.isFinite(v) ? `${v >= 0 ? "+" : ""}${v.toFixed(2)}` : "—");
/** A number with `digits` decimals. */
export const num = (v, digits = 1) => (Number.isFinite(v) ? v.toFixed(digits) : "—");
/** Bytes as KiB with one decimal. */
export const kib = (bytes) => `${(bytes / 1024).toFixed(1)} KiB`;

/**
 * A markdown table.
 * @param {string[]} headers
 * @param {Array<Array<string | number>>} rows
 */
export function table(headers, rows) {
  const line = (cells) => `| ${cells.join(" | ")} |`;
  return [line(headers), line(headers.map(() => "---")), ...rows.map((r) => line(r.map(String)))].join("\n");
}

/** A titled section: heading, optional lead sentence, table, optional notes. */
export function section(title, lead, tableText, notes = []) {
  return [
    `### ${title}`,
    "",
    ...(lead ? [lead, ""] : []),
    tableText,
    ...(notes.length ? ["", ...notes.map((n) => `- ${n}`)] : []),
  ].join("\n");
}
