import { applyD1Migrations } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { shardDatabases } from "../src/store/shards";

// Setup files run before each test file; applyD1Migrations skips migrations already applied.
// Every shard (`DB`, `DB_1`, …) gets them, as `npm run db:migrate` does.
for (const db of shardDatabases(env)) await applyD1Migrations(db, env.TEST_MIGRATIONS);
