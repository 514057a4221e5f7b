/**
 * The bench's Worker entry around the deployable bundle (`./index.js`, which the harness puts next to
 * this module): the same app and Durable Object class, with every D1 call of both delayed by a fixed
 * time, to stand for the round trip from a far edge location to the database's primary (one region
 * for a D1 database's writes). Production code never sees it: `src/` is bundled as deployed, and only
 * the `DB` binding handed to it is wrapped.
 *
 * The delay is set at run time with `POST /__bench/d1-delay` `{ "ms": N }` (answer: `{ "ms": N }`), so
 * one run can measure several delays side by side. It lives in this module's scope: locally the
 * Worker and every instance of its Durable Object class run in one isolate, so one setting reaches
 * both (the bench checks it: the time to the upstream call grows by the delay).
 *
 * Every executed statement (`first`, `all`, `run`, `raw`), every `batch()` and every `exec()` waits
 * the delay before it goes to D1, as one round trip would, also on the sessions a binding opens
 * (`withSession()`). Nothing waits at 0 ms.
 */
import app, { ConversationGeneration as DeployedConversationGeneration } from "./index.js";

let delayMs = 0;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Runs `call` after the delay (at once when it is 0). */
function delayed(call) {
  const ms = delayMs;
  return ms > 0 ? sleep(ms).then(call) : call();
}

/** The wrapped statements' originals: D1's `batch()` accepts only its own statement objects. */
const originals = new WeakMap();

function wrapStatement(statement) {
  const proxy = new Proxy(statement, {
    get(target, prop) {
      if (prop === "bind") return (...args) => wrapStatement(target.bind(...args));
      if (prop === "first" || prop === "all" || prop === "run" || prop === "raw")
        return (...args) => delayed(() => target[prop](...args));
      const value = Reflect.get(target, prop, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  originals.set(proxy, statement);
  return proxy;
}

function wrapDatabase(db) {
  return new Proxy(db, {
    get(target, prop) {
      if (prop === "prepare") return (query) => wrapStatement(target.prepare(query));
      if (prop === "batch")
        return (statements) => delayed(() => target.batch(statements.map((s) => originals.get(s) ?? s)));
      if (prop === "exec") return (query) => delayed(() => target.exec(query));
      // The app queries through D1 sessions (src/store/sessions.ts): a session's calls wait too.
      if (prop === "withSession") return (...args) => wrapDatabase(target.withSession(...args));
      const value = Reflect.get(target, prop, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

/**
 * One wrapped env per original env object: the app memoises its configuration per env object
 * (src/config.ts), so a new object per request would re-read it every time.
 */
const wrappedEnvs = new WeakMap();
function withDelayedDb(env) {
  let wrapped = wrappedEnvs.get(env);
  if (!wrapped) {
    // Every shard binding (`DB`, `DB_1`, …: src/store/shards.ts) gets the delay.
    wrapped = { ...env };
    for (const name of Object.keys(env))
      if (/^DB(_\d+)?$/.test(name)) wrapped[name] = wrapDatabase(env[name]);
    wrappedEnvs.set(env, wrapped);
  }
  return wrapped;
}

/** The deployed Durable Object class, constructed with the wrapped shards (it keeps `env` from its constructor). */
export class ConversationGeneration extends DeployedConversationGeneration {
  constructor(ctx, env) {
    super(ctx, withDelayedDb(env));
  }
}

export default {
  async fetch(request, env, ctx) {
    const url = new URL(request.url);
    if (url.pathname === "/__bench/d1-delay" && request.method === "POST") {
      const { ms } = await request.json();
      if (!Number.isFinite(ms) || ms < 0) return Response.json({ error: "ms must be ≥ 0" }, { status: 400 });
      delayMs = ms;
      return Response.json({ ms: delayMs });
    }
    return app.fetch(request, withDelayedDb(env), ctx);
  },
};
