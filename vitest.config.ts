import path from "node:path";
import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-plugin";
import type { ProvidedContext } from "vitest";
import { configDefaults, defineConfig } from "vitest/config";
import { buildDocsAssets } from "./scripts/build-docs-assets.mjs";
import { dropExpectedWorkerdLogs } from "./test/support/workerd-log-filter.mjs";

// workerd logs the disconnects that tests cause on purpose; see the file for each one.
dropExpectedWorkerdLogs();
// Reading wrangler.toml, wrangler logs "Using secrets defined in .dev.vars" once per test file when
// `npm run dev` has written one; its warnings and errors still show.
process.env.WRANGLER_LOG ??= "warn";
// The /docs viewer is a static asset that wrangler's build command copies before dev and deploy.
buildDocsAssets(import.meta.dirname);

/** What a project adds to the common Worker test setup. */
interface ProjectExtras {
  /** Global setups run after test/global-setup.ts. */
  globalSetup?: string[];
  /** Bindings made from what the global setups provide. */
  injected?: (
    inject: <K extends keyof ProvidedContext>(key: K) => ProvidedContext[K],
  ) => Record<string, string>;
  /** Queue consumers overriding wrangler.toml's (by queue name). */
  queueConsumers?: Record<string, Record<string, string | number>>;
}

/**
 * A project of Worker tests, inside workerd against real local D1/KV/DO and the stand-in, with
 * `bindings` on top of the common ones.
 */
function workersProject(
  name: string,
  files: { include: string[]; exclude?: string[] },
  bindings = {},
  extras: ProjectExtras = {},
  shards = TEST_SHARDS,
) {
  return {
    plugins: [
      cloudflareTest(async ({ inject }) => {
        const migrations = await readD1Migrations(path.join(import.meta.dirname, "migrations"));
        return {
          wrangler: { configPath: "./wrangler.toml" },
          miniflare: {
            bindings: {
              // The DashScope stand-in started by test/global-setup.ts.
              DASHSCOPE_BASE_URL: inject<string>("standInBaseUrl"),
              DASHSCOPE_API_KEY: inject<string>("standInApiKey"),
              TEST_MIGRATIONS: migrations,
              // A model whose window a test can fill with a few kilobytes; its input limit is the stand-in's.
              // qwen-plus-window-6k: qwen-plus (explicit cache markers, its prices) with a 6k window
              // (test/history-blocks.test.ts).
              MODEL_CONTEXT_TOKENS: JSON.stringify({
                "qwen-tiny-context": 3072,
                "qwen-plus-window-6k": 6144,
              }),
              MODEL_MAX_INPUT_TOKENS: JSON.stringify({ "qwen-tiny-context": 2048 }),
              SSE_PING_INTERVAL_MS: "300",
              // Long enough for the slowest chunk gap of the other tests (0.8 s), short enough for
              // test/upstream-idle-timeout.test.ts to wait it out.
              UPSTREAM_IDLE_TIMEOUT_MS: "2000",
              // The identity provider stand-in started by test/global-setup.ts.
              AUTH_JWKS_URL: inject<string>("authJwksUrl"),
              AUTH_ISSUER: inject<string>("authIssuer"),
              AUTH_AUDIENCE: inject<string>("authAudience"),
              // A developer's .dev.vars may carry a dev JWKS; tests never use it implicitly.
              AUTH_DEV_JWKS: "",
              AUTH_DEV_HOSTS: "",
              // Operator routes (test/admin.test.ts); at least 32 characters.
              ADMIN_TOKEN: "test-admin-token-0123456789abcdef0123456789",
              // The strict tier is tiny in tests, so a test can exceed it without waiting a minute.
              RATE_LIMIT_STRICT_PER_MINUTE: "3",
              // Uploads over the limit without building 7 MiB bodies (test/files.test.ts).
              MAX_FILE_BYTES: "65536",
              // test/cors.test.ts; the second entry as an operator might write it (trailing slash, upper case).
              CORS_ALLOWED_ORIGINS: "https://app.example.test, http://LOCALHOST:5173/",
              // useChat's body over the limit without building 32 MiB (test/ui-chat.test.ts).
              MAX_UI_CHAT_BODY_BYTES: "4194304",
              // Image bytes per message and request in data URL mode, small enough for
              // test/file-part-limits.test.ts to exceed with a few uploads.
              MAX_INLINE_IMAGE_BYTES: "150000",
              ...bindings,
              ...extras.injected?.(inject),
            },
            // The user shards (src/store/shards.ts): `DB` and `DB_1` unless the project runs on one.
            d1Databases: Object.fromEntries(
              Array.from({ length: shards }, (_, i) => [i === 0 ? "DB" : `DB_${i}`, `edge-chat-${i}`]),
            ),
            ratelimits: {
              RATE_LIMIT_STRICT: { namespace_id: "1003", simple: { limit: 3, period: 60 } },
            },
            ...(extras.queueConsumers ? { queueConsumers: extras.queueConsumers } : {}),
          },
        };
      }),
    ],
    test: {
      name,
      globalSetup: ["./test/global-setup.ts", ...(extras.globalSetup ?? [])],
      setupFiles: ["./test/apply-migrations.ts"],
      include: files.include,
      exclude: [...configDefaults.exclude, "test/node/**", ...(files.exclude ?? [])],
      testTimeout: 20_000,
      hookTimeout: 30_000,
    },
  };
}

/**
 * How many local D1 shards the Worker tests bind: two, so every test runs with users spread over
 * two databases; `TEST_SHARDS=1 npm test` runs the suite on one, as a one-database deployment.
 */
const TEST_SHARDS = Number(process.env.TEST_SHARDS ?? 2);

/** The shard tests, also run on one shard by the `one-shard` project. */
const SHARD_TESTS = "test/shards.test.ts";

/** The reshard tests: three shards bound and RESHARD_FROM=2, a reshard from 2 to 3 in progress. */
const RESHARD_TESTS = "test/reshard.test.ts";

/** The title tests: generated titles on, as in production (wrangler.toml's TITLE_MODEL). */
const TITLE_TESTS = "test/titles.test.ts";
/**
 * The running summary tests: SUMMARY_MODEL on, as in production, with the stand-in's digest model
 * (qwen-flash's prices; its answer shows what it was given, tools/dashscope-stand-in/scenarios/digest.mjs).
 */
const SUMMARY_TESTS = "test/summary-*.test.ts";
/**
 * The webhook tests: WEBHOOK_URL set (the receiver of test/support/webhook-receiver.mjs), so every
 * answer of that project is announced; elsewhere webhooks are off and nothing reaches the queue.
 */
const WEBHOOK_TESTS = "test/webhooks.test.ts";
/** The signed file URL tests: DashScope is given URLs of the Worker's file content route (FILE_URL_BASE). */
const FILE_URL_TESTS = "test/signed-file-urls.test.ts";

export default defineConfig({
  test: {
    // The Worker logs a line per turn; show logs only for failing tests.
    silent: "passed-only",
    projects: [
      // Everything about the Worker. A title call after an untitled conversation's first answer
      // would add a request to the stand-in's log, a record to the ledger and a change to the sync
      // log of nearly every test's conversation, at a moment no test waits for: titles are off here,
      // and so are running summaries (a long conversation's prompts would carry one).
      workersProject(
        "workers",
        {
          include: ["test/**/*.test.ts"],
          exclude: [TITLE_TESTS, SUMMARY_TESTS, WEBHOOK_TESTS, FILE_URL_TESTS, RESHARD_TESTS],
        },
        { TITLE_MODEL: "off", SUMMARY_MODEL: "off" },
      ),
      workersProject("titles", { include: [TITLE_TESTS] }, { SUMMARY_MODEL: "off" }),
      workersProject(
        "summaries",
        { include: [SUMMARY_TESTS] },
        { TITLE_MODEL: "off", SUMMARY_MODEL: "qwen-flash-digest" },
      ),
      workersProject(
        "webhooks",
        { include: [WEBHOOK_TESTS] },
        // Retries 1 s, 2 s, 4 s apart instead of 10 s, 20 s, 40 s.
        { TITLE_MODEL: "off", SUMMARY_MODEL: "off", WEBHOOK_RETRY_BASE_SECONDS: "1" },
        {
          globalSetup: ["./test/support/webhook-receiver-setup.ts"],
          injected: (inject) => ({
            WEBHOOK_URL: inject("webhookUrl"),
            WEBHOOK_SECRET: inject("webhookSecret"),
          }),
          // wrangler.toml's consumers, with no batching wait and 4 attempts instead of 11, so a
          // webhook dies within seconds (1 + 2 + 4 s of backoff).
          queueConsumers: {
            "edge-chat-webhooks": {
              maxBatchSize: 10,
              maxBatchTimeout: 0,
              maxRetries: 3,
              retryDelay: 1,
              deadLetterQueue: "edge-chat-webhooks-dead",
            },
            "edge-chat-webhooks-dead": { maxBatchSize: 10, maxBatchTimeout: 0, maxRetries: 3 },
          },
        },
      ),
      workersProject(
        "file-urls",
        { include: [FILE_URL_TESTS] },
        {
          TITLE_MODEL: "off",
          SUMMARY_MODEL: "off",
          FILE_URL_SECRET: "test-file-url-secret-0123456789abcdef0123",
          FILE_URL_TTL_SECONDS: "600",
        },
        // The relay started by test/global-setup.ts stands for the Worker's public origin.
        { injected: (inject) => ({ FILE_URL_BASE: inject("fileUrlRelayOrigin") }) },
      ),
      // The shard test again with the one binding a default deployment has.
      workersProject(
        "one-shard",
        { include: [SHARD_TESTS] },
        { TITLE_MODEL: "off", SUMMARY_MODEL: "off" },
        {},
        1,
      ),
      // A reshard from 2 shards to 3: DB_2 added, RESHARD_FROM naming the old count.
      workersProject(
        "reshard",
        { include: [RESHARD_TESTS] },
        { TITLE_MODEL: "off", SUMMARY_MODEL: "off", RESHARD_FROM: "2" },
        {},
        3,
      ),
      {
        // Checks of the source tree itself (the layer rule), in Node: they read files and load
        // TypeScript's parser, which workerd's test runner cannot (no file system; a 9 MB module).
        test: {
          name: "node",
          environment: "node",
          include: ["test/node/**/*.test.ts"],
        },
      },
    ],
  },
});
