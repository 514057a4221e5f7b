// Reading and writing `.dev.vars` (dotenv syntax, read by `wrangler dev`, never uploaded by
// `wrangler deploy`), one variable at a time, keeping every other line as it is.
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";

const lineOf = (name) => new RegExp(`^\\s*(export\\s+)?${name}\\s*=\\s*(.*)$`);

/** The value of `name` in dotenv text (quotes removed), or undefined when it is not set. */
export function devVar(text, name) {
  for (const line of text.split(/\r?\n/)) {
    const match = lineOf(name).exec(line);
    if (match) return (match[2] ?? "").trim().replace(/^(['"])(.*)\1$/, "$2");
  }
  return undefined;
}

/** Sets `name=value` in dotenv text: replaces its line, or appends one. */
export function setDevVar(text, name, value) {
  const line = `${name}=${value}`;
  const lines = text === "" ? [] : text.replace(/\r?\n$/, "").split(/\r?\n/);
  const at = lines.findIndex((l) => lineOf(name).test(l));
  if (at === -1) lines.push(line);
  else lines[at] = line;
  return `${lines.join("\n")}\n`;
}

/** Path of the repository's `.dev.vars`. */
export const devVarsPath = (rootDir) => path.join(rootDir, ".dev.vars");

/** The text of `.dev.vars`, or "" when there is none. */
export async function readDevVars(rootDir) {
  const file = devVarsPath(rootDir);
  return existsSync(file) ? readFile(file, "utf8") : "";
}

/**
 * Makes sure `.dev.vars` has an `ADMIN_TOKEN` for the operator routes (`/admin/v1`): keeps one
 * that is set (there or in the environment), else writes a random one (32 bytes, base64url:
 * 43 characters, above the Worker's minimum of 32). Returns whether it wrote one.
 */
export async function ensureAdminToken(rootDir) {
  const text = await readDevVars(rootDir);
  if (process.env.ADMIN_TOKEN || devVar(text, "ADMIN_TOKEN")) return false;
  const token = randomBytes(32).toString("base64url");
  await writeFile(devVarsPath(rootDir), setDevVar(text, "ADMIN_TOKEN", token), { mode: 0o600 });
  return true;
}
