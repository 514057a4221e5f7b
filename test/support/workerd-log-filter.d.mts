/** Wraps `process.stdout` and `process.stderr` so that expected workerd log lines are dropped (see the .mjs). */
export function dropExpectedWorkerdLogs(): void;
