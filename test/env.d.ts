import type { Env as WorkerEnv } from "../src/env";

declare global {
  namespace Cloudflare {
    interface Env extends WorkerEnv {
      TEST_MIGRATIONS: import("cloudflare:test").D1Migration[];
      /** The Worker's static assets (`[assets]` in wrangler.toml), as Cloudflare serves them. */
      ASSETS: Fetcher;
    }
    interface GlobalProps {
      mainModule: typeof import("../src/index");
      durableNamespaces: "ConversationGeneration";
    }
  }
}
