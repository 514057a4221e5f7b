#!/usr/bin/env node
// `npm run reshard -- --url https://<worker> [--admin-token <token>] [--max-users N]`: moves the
// users whose shard changes when shards are added (README "Adding shards"). Calls
// `POST /admin/v1/reshard` (one bounded step each) with the cursor of the previous step until a
// whole pass over the old shards ends with no user busy (an answer in flight) or failed; then
// starts another pass for those, after a pause. The Worker keeps nothing between steps but the
// cursor this script holds, so the script can be stopped at any moment and run again: the
// users still to move are found in the shards themselves.
import { parseArgs } from "node:util";

const { values } = parseArgs({
  options: {
    url: { type: "string" },
    "admin-token": { type: "string" },
    "max-users": { type: "string", default: "10" },
    "pause-seconds": { type: "string", default: "5" },
  },
});
const token = values["admin-token"] ?? process.env.ADMIN_TOKEN;
if (!values.url || !token) {
  console.error(
    "usage: npm run reshard -- --url https://<worker> [--admin-token <token> | ADMIN_TOKEN=…] [--max-users N]",
  );
  process.exit(2);
}
const endpoint = new URL("/admin/v1/reshard", values.url).toString();
const maxUsers = Number(values["max-users"]);
const pauseMs = Number(values["pause-seconds"]) * 1000;
/** Consecutive failed calls (network, 5xx) tolerated before giving up; each waits twice as long. */
const MAX_FAILURES = 6;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function step(cursor) {
  for (let failures = 0; ; failures++) {
    try {
      const res = await fetch(endpoint, {
        method: "POST",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        body: JSON.stringify({ cursor, max_users: maxUsers }),
        signal: AbortSignal.timeout(120_000),
      });
      const text = await res.text();
      if (res.ok) return JSON.parse(text);
      // 4xx: wrong token, RESHARD_FROM not set, a bad cursor: running again will not help.
      if (res.status < 500) throw Object.assign(new Error(`${res.status} ${text}`), { fatal: true });
      throw new Error(`${res.status} ${text}`);
    } catch (err) {
      if (err.fatal || failures + 1 >= MAX_FAILURES) throw err;
      const wait = 1000 * 2 ** failures;
      console.error(`[reshard] step failed (${err.message}); retrying in ${wait / 1000} s`);
      await sleep(wait);
    }
  }
}

let moved = 0;
let rows = 0;
let slowest = 0;
try {
  await run();
} catch (err) {
  // A 4xx (wrong token, RESHARD_FROM not set) needs a fix first; anything else, only a rerun.
  const next = err.fatal ? "" : " Run again to continue; nothing is lost.";
  console.error(`[reshard] stopped: ${err.message}.${next}`);
  process.exit(1);
}
console.log(
  `[reshard] done: ${moved} user(s) moved, ${rows} rows, slowest move ${slowest} ms. Deploy without RESHARD_FROM now.`,
);

async function run() {
  for (let pass = 1; ; pass++) {
    let cursor = null;
    let left = 0;
    let range = "";
    do {
      const s = await step(cursor);
      range = `${s.from} → ${s.to} shards`;
      moved += s.moved.length;
      for (const m of s.moved) {
        rows += m.rows;
        slowest = Math.max(slowest, m.ms);
      }
      left += s.busy.length + s.failed.length;
      for (const f of s.failed) console.error(`[reshard] ${f.user_id}: ${f.message}`);
      const at = s.cursor ? `shard ${s.cursor.shard}` : "end of pass";
      console.log(
        `[reshard] pass ${pass} (${range}): ${s.scanned} scanned, ${s.moved.length} moved, ${s.busy.length} busy, ${s.failed.length} failed, ${s.queries} queries; at ${at}`,
      );
      cursor = s.cursor;
    } while (cursor);
    if (left === 0) break;
    console.log(`[reshard] ${left} user(s) left for another pass in ${pauseMs / 1000} s`);
    await sleep(pauseMs);
  }
}
