/**
 * Wraps a D1 binding so every round trip to the database is counted: each `batch()` and each
 * executed statement (`first`, `all`, `run`, `raw`) is one. Used to keep the turn path at
 * its budget (one round trip before the upstream call, one after) and to report it.
 */
export function countRoundTrips(db: D1Database, onRoundTrip: () => void): D1Database {
  const originals = new WeakMap<object, D1PreparedStatement>();
  const wrap = (statement: D1PreparedStatement): D1PreparedStatement => {
    const proxy = new Proxy(statement, {
      get(target, prop) {
        if (prop === "bind") return (...args: unknown[]) => wrap(target.bind(...args));
        if (prop === "first" || prop === "all" || prop === "run" || prop === "raw") {
          return (...args: unknown[]) => {
            onRoundTrip();
            return (target[prop] as (...a: unknown[]) => unknown).apply(target, args);
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
          return target.batch(statements.map((s) => originals.get(s) ?? s));
        };
      }
      if (prop === "exec") {
        return (query: string) => {
          onRoundTrip();
          return target.exec(query);
        };
      }
      const value = Reflect.get(target, prop, target) as unknown;
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}
