#!/usr/bin/env node
/**
 * Storage per message, measured: `npm run bench:capacity` (README "Capacity plan" holds the last run).
 *
 * For each kind of content, a fresh local Worker (Miniflare, the deployable bundle, the DashScope
 * stand-in) with its storage persisted to a temporary directory gets turns through the real API
 * (`POST /v1/conversations/{id}/messages`, `stream: false`), 10 turns per conversation, one user per
 * 100 turns. Then the Worker is stopped and the SQLite files are read with the `sqlite3` shell:
 * the D1 database's size (`page_count × page_size`, what D1's 10 GB limit counts) and, by table,
 * the bytes in use (`dbstat`: pages minus their unused bytes), before and after; and the
 * Durable Objects' files (one per conversation: event log and prompt state).
 *
 * Options (environment): CAPACITY_TURNS (turns per kind, default 300).
 */
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { convertV4MiniflareOptions, Miniflare } from "miniflare";
import { startStandIn } from "../tools/dashscope-stand-in/server.mjs";
import { createDevAuth } from "./lib/auth.mjs";
import { buildWorker } from "./lib/build.mjs";
import { table } from "./lib/format.mjs";
import { applyMigrations } from "./lib/seed.mjs";
import { jsonRequest } from "./lib/stream-client.mjs";
import { readWorkerConfig } from "./lib/worker-config.mjs";

const root = path.resolve(import.meta.dirname, "..");
const TURNS = Number(process.env.CAPACITY_TURNS || 300);
const TURNS_PER_CONVERSATION = 10;
const TURNS_PER_USER = 100;
const STAND_IN_API_KEY = "sk-capacity-stand-in";

/**
 * What people send: a short question, in English or Chinese (3 UTF-8 bytes a character), cycled.
 * The stand-in's directive (`[[stand-in …]]`, ~35 bytes) is stored with each question, as any text.
 */
const QUESTIONS = [
  "Can you suggest a quick dinner with chickpeas and spinach?",
  "What's the difference between a Roth IRA and a traditional one?",
  "帮我把这段话翻译成英文：明天下午三点在会议室开会。",
  "Why does my sourdough come out so dense?",
  "Explain recursion to a ten year old.",
  "東京で雨の日に子供と行ける場所はありますか？",
];

/**
 * The kinds of turn: answer length in tokens (the stand-in writes English words from a fixed
 * vocabulary, ~5.5 bytes a token), reasoning tokens when thinking. A phone chat answer is often
 * 100–300 tokens; a long one (code, an essay) 1,000+; a thinking model's reasoning is often longer
 * than its answer.
 */
const KINDS = [
  { name: "short chat answer", tokens: 60, reasoning: 0 },
  { name: "long answer", tokens: 1200, reasoning: 0 },
  { name: "short answer with reasoning", tokens: 60, reasoning: 400 },
  { name: "long answer with reasoning", tokens: 1200, reasoning: 1500 },
];

/** D1 tables grouped as the capacity plan counts them. */
const GROUPS = {
  messages: /^(messages|sqlite_autoindex_messages.*|messages_.*)$/,
  search: /^(search_.*)$/,
  "sync log": /^(changes|sqlite_autoindex_changes.*)$/,
  conversations: /^(conversations|sqlite_autoindex_conversations.*|conversations_.*)$/,
  usage: /^(usage_.*|sqlite_autoindex_usage.*|quota_.*|sqlite_autoindex_quota.*)$/,
};

const sqlite = (file, query) =>
  execFileSync("sqlite3", ["-readonly", "-json", file, query], { encoding: "utf8" }).trim() || "[]";

/** Every `*.sqlite` file under `dir`, recursively. */
function sqliteFiles(dir) {
  const out = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...sqliteFiles(p));
    else if (entry.name.endsWith(".sqlite")) out.push(p);
  }
  return out;
}

/** Tables whose rows the plan counts per turn (the FTS5 index's shadow tables are in its bytes). */
const COUNTED = ["messages", "search_docs", "changes", "usage_records", "conversations"];

const rowCounts = (file) =>
  Object.fromEntries(
    COUNTED.map((t) => [t, JSON.parse(sqlite(file, `SELECT COUNT(*) AS n FROM ${t}`))[0].n]),
  );

/** A SQLite file's size as D1 counts it, and the bytes in use per table and index. */
function measureDatabase(file) {
  const [{ size }] = JSON.parse(
    sqlite(
      file,
      "SELECT (SELECT page_count FROM pragma_page_count) * (SELECT page_size FROM pragma_page_size) AS size",
    ),
  );
  const used = JSON.parse(
    sqlite(file, "SELECT name, SUM(pgsize - unused) AS bytes FROM dbstat GROUP BY name"),
  );
  return { size, used: Object.fromEntries(used.map((r) => [r.name, r.bytes])) };
}

function grouped(used) {
  const out = Object.fromEntries(Object.keys(GROUPS).map((g) => [g, 0]));
  out.other = 0;
  for (const [name, bytes] of Object.entries(used)) {
    const group = Object.keys(GROUPS).find((g) => GROUPS[g].test(name));
    out[group ?? "other"] += bytes;
  }
  return out;
}

async function startWorker({ scriptPath, persist, standIn, auth }) {
  const config = readWorkerConfig(path.join(root, "wrangler.toml"));
  const mf = new Miniflare({
    ...convertV4MiniflareOptions({
      // The Worker logs a line per turn; only its errors are shown.
      handleStructuredLogs: ({ level, message }) => {
        if (level === "error") process.stderr.write(`${message}\n`);
      },
      workers: [
        {
          name: "edge-chat",
          // The bundle as deployed (wrangler's output directory is outside this repository).
          modulesRoot: path.dirname(scriptPath),
          modules: [{ type: "ESModule", path: scriptPath, contents: readFileSync(scriptPath, "utf8") }],
          compatibilityDate: config.compatibilityDate,
          compatibilityFlags: config.compatibilityFlags,
          d1Databases: { DB: "capacity-db" },
          kvNamespaces: { CACHE: "capacity-kv" },
          r2Buckets: { FILES: "capacity-files" },
          durableObjects: {
            CONVERSATION_GENERATION: { className: "ConversationGeneration", useSQLite: true },
          },
          ratelimits: {
            RATE_LIMIT_STANDARD: { namespace_id: "1001", simple: { limit: 1_000_000, period: 60 } },
            RATE_LIMIT_RELAXED: { namespace_id: "1002", simple: { limit: 1_000_000, period: 60 } },
            RATE_LIMIT_STRICT: { namespace_id: "1003", simple: { limit: 1_000_000, period: 60 } },
          },
          bindings: {
            ...config.vars,
            DAILY_TOKEN_BUDGET: "unlimited",
            // Titles would add a call per conversation; a title is one short row, counted apart.
            TITLE_MODEL: "off",
            DASHSCOPE_BASE_URL: standIn.baseUrl,
            DASHSCOPE_API_KEY: STAND_IN_API_KEY,
            AUTH_DEV_JWKS: auth.jwksJson,
          },
          unsafeDirectSockets: [{ host: "127.0.0.1", port: 0 }],
        },
      ],
    }),
    resourcePersistencePath: persist,
  });
  await mf.ready;
  return { mf, origin: (await mf.unsafeGetDirectURL("edge-chat")).origin };
}

async function runKind(kind, { scriptPath, standIn, auth }) {
  const persist = mkdtempSync(path.join(tmpdir(), "edge-chat-capacity-"));
  try {
    let { mf, origin } = await startWorker({ scriptPath, persist, standIn, auth });
    await applyMigrations(await mf.getD1Database("DB", "edge-chat"), path.join(root, "migrations"));
    // Measured with the Worker stopped, so every write is in the database file.
    await mf.dispose();
    // Miniflare keeps each database or object in `<kind>/<namespace>/<hash>.sqlite`, beside a
    // `metadata.sqlite` of its own.
    const files = (dir) =>
      sqliteFiles(persist).filter((f) => f.includes(dir) && path.basename(f) !== "metadata.sqlite");
    const d1File = () => files("D1DatabaseObject")[0];
    const before = measureDatabase(d1File());
    const rowsBefore = rowCounts(d1File());
    ({ mf, origin } = await startWorker({ scriptPath, persist, standIn, auth }));

    let conversationId = null;
    let contentBytes = 0;
    for (let i = 0; i < TURNS; i++) {
      const userId = `capacity-user-${Math.floor(i / TURNS_PER_USER)}`;
      const headers = {
        authorization: `Bearer ${await auth.tokenFor(userId)}`,
        "content-type": "application/json",
      };
      if (i % TURNS_PER_CONVERSATION === 0) {
        const res = await jsonRequest("POST", `${origin}/v1/conversations`, headers, {});
        if (res.status !== 201) throw new Error(`creating a conversation: HTTP ${res.status}`);
        conversationId = res.json.id;
      }
      const directive = `[[stand-in tokens=${kind.tokens}${kind.reasoning ? ` reasoning=${kind.reasoning}` : ""}]]`;
      const body = {
        content: `${QUESTIONS[i % QUESTIONS.length]} ${directive}`,
        stream: false,
        ...(kind.reasoning ? { parameters: { enable_thinking: true, thinking_budget: kind.reasoning } } : {}),
      };
      const res = await jsonRequest(
        "POST",
        `${origin}/v1/conversations/${conversationId}/messages`,
        headers,
        body,
      );
      if (res.status !== 200 || res.json?.assistant_message?.status !== "completed")
        throw new Error(`turn ${i}: HTTP ${res.status} ${JSON.stringify(res.json).slice(0, 300)}`);
      const answer = res.json.assistant_message;
      contentBytes +=
        Buffer.byteLength(body.content) +
        Buffer.byteLength(JSON.stringify(answer.content)) +
        Buffer.byteLength(answer.reasoning_content ?? "");
    }
    await mf.dispose();
    const after = measureDatabase(d1File());
    const rowsAfter = rowCounts(d1File());
    const objects = files("ConversationGeneration").map(measureDatabase);
    const objectUsed = (test) =>
      objects.reduce(
        (n, o) =>
          n + Object.entries(o.used).reduce((m, [name, bytes]) => m + (test.test(name) ? bytes : 0), 0),
        0,
      );
    const b = grouped(before.used);
    const a = grouped(after.used);
    const messages = TURNS * 2;
    const perMessage = Object.fromEntries(Object.keys(a).map((g) => [g, (a[g] - b[g]) / messages]));
    return {
      kind,
      messages,
      contentPerMessage: contentBytes / messages,
      rowsPerTurn: Object.fromEntries(COUNTED.map((t) => [t, (rowsAfter[t] - rowsBefore[t]) / TURNS])),
      filePerMessage: (after.size - before.size) / messages,
      perMessage,
      objects: objects.length,
      objectSizePerAnswer: objects.reduce((n, o) => n + o.size, 0) / TURNS,
      eventBytesPerAnswer: objectUsed(/^answer_events/) / TURNS,
      answerRowBytesPerAnswer: objectUsed(/^(answers|answers_.*|sqlite_autoindex_answers.*)$/) / TURNS,
      promptStateBytesPerConversation: objectUsed(/^prompt_/) / objects.length,
    };
  } finally {
    rmSync(persist, { recursive: true, force: true });
  }
}

/**
 * Photos: `PHOTOS` uploads of a `PHOTO_BYTES` JPEG (its signature, then random bytes, which do
 * not compress) through `POST /v1/files`; the D1 rows they add and the bytes R2 keeps on disk.
 */
const PHOTOS = 50;
const PHOTO_BYTES = 400_000;

async function runPhotos({ scriptPath, standIn, auth }) {
  const persist = mkdtempSync(path.join(tmpdir(), "edge-chat-capacity-"));
  try {
    let { mf } = await startWorker({ scriptPath, persist, standIn, auth });
    await applyMigrations(await mf.getD1Database("DB", "edge-chat"), path.join(root, "migrations"));
    await mf.dispose();
    const d1File = () =>
      sqliteFiles(persist).find(
        (f) => f.includes("D1DatabaseObject") && path.basename(f) !== "metadata.sqlite",
      );
    const before = measureDatabase(d1File());
    let origin;
    ({ mf, origin } = await startWorker({ scriptPath, persist, standIn, auth }));
    const headers = {
      authorization: `Bearer ${await auth.tokenFor("capacity-photos")}`,
      "content-type": "image/jpeg",
    };
    for (let i = 0; i < PHOTOS; i++) {
      const bytes = Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), randomBytes(PHOTO_BYTES - 4)]);
      const res = await fetch(`${origin}/v1/files?filename=IMG_${1000 + i}.jpg`, {
        method: "POST",
        headers,
        body: bytes,
      });
      if (res.status !== 201) throw new Error(`upload ${i}: HTTP ${res.status} ${await res.text()}`);
    }
    await mf.dispose();
    const after = measureDatabase(d1File());
    const blobs = (dir) =>
      readdirSync(dir, { withFileTypes: true }).reduce((n, e) => {
        const p = path.join(dir, e.name);
        return n + (e.isDirectory() ? blobs(p) : e.name.endsWith(".sqlite") ? 0 : statSync(p).size);
      }, 0);
    return {
      d1PerPhoto: (after.size - before.size) / PHOTOS,
      r2PerPhoto: blobs(path.join(persist, "r2")) / PHOTOS,
    };
  } finally {
    rmSync(persist, { recursive: true, force: true });
  }
}

const out = mkdtempSync(path.join(tmpdir(), "edge-chat-capacity-build-"));
const { scriptPath } = await buildWorker(root, out);
const standIn = await startStandIn({ host: "127.0.0.1", port: 0, apiKey: STAND_IN_API_KEY });
const auth = await createDevAuth();
const results = [];
let photos;
try {
  for (const kind of KINDS) {
    process.stderr.write(`${kind.name}: ${TURNS} turns…\n`);
    results.push(await runKind(kind, { scriptPath, standIn, auth }));
  }
  process.stderr.write(`photos: ${PHOTOS} uploads of ${PHOTO_BYTES} bytes…\n`);
  photos = await runPhotos({ scriptPath, standIn, auth });
} finally {
  await standIn.close();
  rmSync(out, { recursive: true, force: true });
}

const n = (v) => Math.round(v).toLocaleString("en-US");
console.log(`\nD1 bytes per stored message (user question and answer averaged; ${TURNS} turns per kind)\n`);
console.log(
  table(
    [
      "kind",
      "content",
      "database size",
      "messages+idx",
      "search",
      "sync log",
      "conversations",
      "usage",
      "other",
    ],
    results.map((r) => [
      r.kind.name,
      n(r.contentPerMessage),
      n(r.filePerMessage),
      n(r.perMessage.messages),
      n(r.perMessage.search),
      n(r.perMessage["sync log"]),
      n(r.perMessage.conversations),
      n(r.perMessage.usage),
      n(r.perMessage.other),
    ]),
  ),
);
console.log("\nD1 rows per turn (a question and its answer)\n");
console.log(
  table(
    ["kind", ...COUNTED],
    results.map((r) => [r.kind.name, ...COUNTED.map((t) => r.rowsPerTurn[t].toFixed(2))]),
  ),
);
console.log(
  `\nDurable Object storage (one object per conversation of ${TURNS_PER_CONVERSATION} turns; the event log is kept EVENT_LOG_RETENTION_SECONDS after each answer)\n`,
);
console.log(
  table(
    [
      "kind",
      "objects",
      "size per answer",
      "event log per answer",
      "answers row per answer",
      "prompt state per conversation",
    ],
    results.map((r) => [
      r.kind.name,
      String(r.objects),
      n(r.objectSizePerAnswer),
      n(r.eventBytesPerAnswer),
      n(r.answerRowBytesPerAnswer),
      n(r.promptStateBytesPerConversation),
    ]),
  ),
);
console.log(`\nPhotos (${PHOTOS} uploads of ${PHOTO_BYTES.toLocaleString("en-US")} bytes)\n`);
console.log(
  table(["D1 bytes per photo", "R2 bytes per photo"], [[n(photos.d1PerPhoto), n(photos.r2PerPhoto)]]),
);
