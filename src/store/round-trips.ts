import type { D1Queries } from "./sessions";

/**
 * Wraps a D1 binding or session so every round trip to the database is counted: each `batch()`
 * and each executed statement (`first`, `all`, `run`, `raw`) is one, and so is a binding's
 * `exec()`; the sessions it opens (`withSession()`) are counted the same way. Used to keep the turn path at its budget (one round trip before the upstream call,
 * one after) and to report it. `onSettled` runs after each round trip that succeeded (a session's
 * bookmark is new then).
 */
export function countRoundTrips<T extends D1Queries>(
  db: T,
  onRoundTrip: () => void,
  onSettled?: () => void,
): T {
  const settled = <R>(result: Promise<R>): Promise<R> =>
    onSettled
      ? result.then((value) => {
          onSettled();
          return value;
        })
      : result;
  const originals = new WeakMap<object, D1PreparedStatement>();
  const wrap = (statement: D1PreparedStatement): D1PreparedStatement => {
    const proxy = new Proxy(statement, {
      get(target, prop) {
        if (prop === "bind") return (...args: unknown[]) => wrap(target.bind(...args));
        if (prop === "first" || prop === "all" || prop === "run" || prop === "raw") {
          return (...args: unknown[]) => {
            onRoundTrip();
            return settled((target[prop] as (...a: unknown[]) => Promise<unknown>).apply(target, args));
          };
        }
        const value = Reflect.get(target, prop, target) as unknown;
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
    originals.set(proxy, statement);
    return proxy;
  };
  return new Proxy(db, {
    get(target, prop) {
      if (prop === "prepare") return (query: string) => wrap(target.prepare(query));
      if (prop === "batch") {
        return (statements: D1PreparedStatement[]) => {
          onRoundTrip();
          // D1 only accepts its own statement objects in a batch.
          return settled(target.batch(statements.map((s) => originals.get(s) ?? s)));
        };
      }
      const value = Reflect.get(target, prop, target) as unknown;
      // A session of a counted database is counted too (the routes query through sessions).
      if (prop === "withSession" && typeof value === "function") {
        return (...args: Parameters<D1Database["withSession"]>) =>
          countRoundTrips((value as D1Database["withSession"]).apply(target, args), onRoundTrip, onSettled);
      }
      if (prop === "exec" && typeof value === "function") {
        return (query: string) => {
          onRoundTrip();
          return settled((value as D1Database["exec"]).call(target, query));
        };
      }
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}
