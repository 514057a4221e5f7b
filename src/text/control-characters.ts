/**
 * Whether `text` holds a C0 control character (U+0000–U+001F) or DEL (U+007F), other than the
 * characters in `allowed`. Labels stored in D1 TEXT columns and shown in lists (titles, key names,
 * user ids) have no use for them, and a NUL truncates the value in many SQLite tools.
 */
export function hasControlCharacter(text: string, allowed = ""): boolean {
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if ((code < 0x20 || code === 0x7f) && !allowed.includes(text[i]!)) return true;
  }
  return false;
}

/** The line breaks and tab that multi-line text may hold: XML 1.0's only allowed C0 characters. */
export const MULTILINE_WHITESPACE = "\t\n\r";
