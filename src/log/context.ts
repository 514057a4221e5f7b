import { AsyncLocalStorage } from "node:async_hooks";

/** What every log line written while handling one request (or one turn) carries. */
export interface LogContext {
  request_id?: string;
  user_id?: string;
  conversation_id?: string;
}

/*
 * A plain AsyncLocalStorage (workerd provides `node:async_hooks` under `nodejs_compat`) rather
 * than Hono's `contextStorage()`: that one stores the whole Hono context, which would tie the
 * logger to the Worker's Hono types, and the Durable Object, which logs too, has no Hono context.
 */
const storage = new AsyncLocalStorage<LogContext>();

/** Runs `fn` with `context` added to every log line written inside it, awaited work included. */
export function withLogContext<T>(context: LogContext, fn: () => T): T {
  return storage.run({ ...storage.getStore(), ...context }, fn);
}

/**
 * Adds fields to the current context (e.g. `user_id` once auth knows it); lines written afterwards
 * inside the same {@link withLogContext} carry them. Outside one, does nothing.
 */
export function addLogContext(fields: LogContext): void {
  const current = storage.getStore();
  if (current) Object.assign(current, fields);
}

/** The fields of the current context (empty outside one). */
export function currentLogContext(): LogContext {
  return storage.getStore() ?? {};
}
