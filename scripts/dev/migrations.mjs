// Applies the D1 migrations to the local database quietly: wrangler prints a table per migration
// (four tables for four migrations); `npm run dev` prints one line, and wrangler's full output
// only when applying failed.
import { spawnSync } from "node:child_process";

/**
 * Runs `wrangler d1 migrations apply DB --local` in `rootDir`; `wrangler` is the command
 * (program and leading arguments).
 * @returns {{ ok: boolean, applied: number, output: string }} `applied`: migrations applied now
 */
export function applyLocalMigrations(wrangler, rootDir, env) {
  const [program, ...leading] = wrangler;
  const run = spawnSync(program, [...leading, "d1", "migrations", "apply", "DB", "--local"], {
    cwd: rootDir,
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
    // CI=true answers wrangler's "continue?" prompt with its default (yes).
    env: { ...env, CI: "true" },
  });
  const output = `${run.stdout ?? ""}${run.stderr ?? ""}${run.error ? String(run.error) : ""}`;
  const applied = Number(/About to apply (\d+) migration/.exec(output)?.[1] ?? 0);
  return { ok: run.status === 0, applied, output };
}
