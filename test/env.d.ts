// The Worker's bindings (`Cloudflare.Env`, `Cloudflare.GlobalProps`) are generated from wrangler.toml into
// worker-configuration.d.ts (`npm run types`), ASSETS included; tests add the migrations vitest.config.ts
// binds.
declare namespace Cloudflare {
  interface Env {
    TEST_MIGRATIONS: import("cloudflare:test").D1Migration[];
  }
}
