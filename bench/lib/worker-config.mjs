import { readFileSync } from "node:fs";

/**
 * The few settings of wrangler.toml the bench's Miniflare needs: compatibility date and flags, and [vars].
 * A line-based reader for the flat `key = "value"` / `key = ["a"]` form our wrangler.toml uses.
 * @param {string} path
 * @returns {{ compatibilityDate: string, compatibilityFlags: string[], vars: Record<string, string> }}
 */
export function readWorkerConfig(path) {
  let section = "";
  let compatibilityDate = "";
  let compatibilityFlags = [];
  const vars = {};
  for (const raw of readFileSync(path, "utf8").split(/\r?\n/)) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const header = /^\[+([^\]]+)\]+$/.exec(line);
    if (header) {
      section = header[1];
      continue;
    }
    const kv = /^([A-Za-z0-9_]+)\s*=\s*(.+)$/.exec(line);
    if (!kv) continue;
    const [, key, value] = kv;
    if (section === "" && key === "compatibility_date") compatibilityDate = JSON.parse(value);
    else if (section === "" && key === "compatibility_flags") compatibilityFlags = JSON.parse(value);
    else if (section === "vars") vars[key] = JSON.parse(value);
  }
  if (!compatibilityDate) throw new Error(`${path} has no compatibility_date`);
  return { compatibilityDate, compatibilityFlags, vars };
}
