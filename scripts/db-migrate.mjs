#!/usr/bin/env node
// `npm run db:migrate -- --local|--remote`: applies migrations/ to every user shard bound in
// wrangler.toml (`DB`, `DB_1`, …; src/store/shards.ts), one `wrangler d1 migrations apply` per
// shard, in shard order. Stops at the first shard that fails (the ones before it stay migrated;
// running it again continues, as wrangler skips applied migrations).
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { applyMigrations, shardDatabases } from "./dev/migrations.mjs";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const wrangler = [process.execPath, path.join(root, "node_modules", "wrangler", "bin", "wrangler.js")];
const { values } = parseArgs({ options: { local: { type: "boolean" }, remote: { type: "boolean" } } });
if (values.local === values.remote) {
  console.error("usage: npm run db:migrate -- --local | --remote");
  process.exit(2);
}
const where = values.remote ? "remote" : "local";
const env = { ...process.env, WRANGLER_HIDE_BANNER: "true", WRANGLER_SEND_METRICS: "false" };
for (const { binding, databaseName } of shardDatabases(root)) {
  const run = applyMigrations(wrangler, root, env, binding, where);
  if (!run.ok) {
    process.stderr.write(run.output);
    console.error(`[db:migrate] ${binding} (${databaseName}, ${where}): failed (output above)`);
    process.exit(1);
  }
  console.log(`[db:migrate] ${binding} (${databaseName}, ${where}): applied ${run.applied} migration(s)`);
}
