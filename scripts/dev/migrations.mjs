// Applies the D1 migrations to every user shard. wrangler prints a table per migration (four
// tables for four migrations); `npm run dev` prints one line per shard, and wrangler's full
// output only when applying failed.
import { spawnSync } from "node:child_process";
import path from "node:path";
import { unstable_readConfig } from "wrangler";

/** A shard binding: `DB` (shard 0), `DB_1`, `DB_2`, … (src/store/shards.ts). */
const SHARD_BINDING = /^DB(?:_([1-9]\d*))?$/;

/**
 * The shard databases bound in `rootDir`'s wrangler.toml, shard 0 first.
 * @returns {{ binding: string, databaseName: string }[]}
 */
export function shardDatabases(rootDir) {
  const config = unstable_readConfig({ config: path.join(rootDir, "wrangler.toml") }, { hideWarnings: true });
  return config.d1_databases
    .map((d) => ({ binding: d.binding, databaseName: d.database_name, match: SHARD_BINDING.exec(d.binding) }))
    .filter((d) => d.match !== null)
    .sort((a, b) => Number(a.match[1] ?? 0) - Number(b.match[1] ?? 0))
    .map(({ binding, databaseName }) => ({ binding, databaseName }));
}

/**
 * Runs `wrangler d1 migrations apply <binding> --local|--remote` in `rootDir`; `wrangler` is the
 * command (program and leading arguments).
 * @returns {{ ok: boolean, applied: number, output: string }} `applied`: migrations applied now
 */
export function applyMigrations(wrangler, rootDir, env, binding, where) {
  const [program, ...leading] = wrangler;
  const run = spawnSync(program, [...leading, "d1", "migrations", "apply", binding, `--${where}`], {
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

/**
 * Applies the migrations to every shard's local database, stopping at the first failure.
 * @returns {{ ok: boolean, applied: number, output: string, shards: number }} `applied`: in all shards
 */
export function applyLocalMigrations(wrangler, rootDir, env) {
  const shards = shardDatabases(rootDir);
  let applied = 0;
  for (const { binding } of shards) {
    const run = applyMigrations(wrangler, rootDir, env, binding, "local");
    if (!run.ok) return { ...run, applied, shards: shards.length };
    applied += run.applied;
  }
  return { ok: true, applied, output: "", shards: shards.length };
}
