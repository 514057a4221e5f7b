/**
 * Keeps a passing `npm test` free of workerd's logs of failures the tests cause on purpose.
 *
 * The Workers Vitest pool runs workerd with `--verbose` and writes every structured log line of
 * it to this process's stdout/stderr; it offers no hook of its own (its `handleStructuredLogs`
 * is fixed, and `verbose: false` would also hide a real unhandled rejection in a Durable
 * Object's `waitUntil`). So the lines below, and only these, are dropped here. Each is a network
 * or stream failure that the code under test receives as an ordinary exception and handles;
 * workerd logs it a second time with a native stack. Anything else, and any assertion failure
 * or unhandled error that Vitest reports, still shows.
 */

/**
 * A workerd log message that a test provokes deliberately. `followUps`: lines (matching `next`)
 * that workerd writes right after it for the same failure; dropped when they arrive within
 * FOLLOW_UP_WINDOW_MS, at most `count` per match.
 * @typedef {{ pattern: RegExp, followUps?: { next: RegExp, count: number } }} ExpectedLog
 */

const NETWORK_LOST =
  /^uncaught exception; (source = Uncaught \(in promise\); stack = Error: Network connection lost\.|exception = workerd\/jsg\/value\.h:\d+: disconnected: jsg\.Error: Network connection lost\.)/;

/** @type {ExpectedLog[]} */
const EXPECTED = [
  // The stand-in's `disconnect=N` cuts an upstream answer mid-body; the reader gets the error.
  { pattern: /^exception = rust\/worker\/ffi\.rs:\d+: disconnected: HTTP body: error reading a body/ },
  // A fetch fails before any response (test/dashscope-client.test.ts calls a closed port, the
  // stand-in drops a connection). The fetch rejects and is handled, yet workerd's fetch also
  // leaves one internal promise unhandled and reports it in two lines.
  {
    pattern:
      /^exception = rust\/worker\/ffi\.rs:\d+: disconnected: (Connection refused|client error \(SendRequest\))/,
    followUps: { next: NETWORK_LOST, count: 2 },
  },
  // A turn whose commit refuses aborts the upstream call it started at once; when that call's
  // request body (a prompt of hundreds of kilobytes) is still being sent, workerd reports the
  // abort reason once more from inside its fetch (`CALL_ABANDONED` in conversation-generation.ts).
  {
    pattern:
      /^uncaught exception; exception = workerd\/jsg\/value\.h:\d+: failed: jsg\.Error: upstream call abandoned: the turn's commit refused$/m,
  },
  // A test client cancels an answer's SSE response, as a phone that goes away does.
  { pattern: /^exception = kj\/async-io\.c\+\+:\d+: disconnected: abortRead\(\) has been called/ },
  // Tests abort a conversation's Durable Object on purpose (`state.abort(...)` with these
  // reasons); a stream it was sending over RPC then ends early.
  {
    pattern:
      /^uncaught exception; exception = workerd\/api\/actor-state\.c\+\+:\d+: failed: broken\.outputGateBroken; jsg\.Error: (restart|owner killed by the test)$/m,
    followUps: { next: /ReadableStream received over RPC disconnected prematurely/, count: 1 },
  },
  // test/reshard.test.ts: a write of a user being moved to another shard, refused inside a
  // conversation's Durable Object, is rethrown to the route by RPC (503 `resharding`); workerd
  // logs the object's rejected call once.
  {
    pattern:
      /^uncaught exception; source = Uncaught \(in promise\); stack = UserMovingError: The user is being moved to another database; retry shortly\./,
  },
];

/** How long after its cause a follow-up line is still recognised as one, in ms. */
const FOLLOW_UP_WINDOW_MS = 5_000;

/** Wraps `process.stdout` and `process.stderr` so that expected workerd log lines are dropped. */
export function dropExpectedWorkerdLogs() {
  /** @type {{ next: RegExp, left: number, until: number }[]} */
  const pending = [];
  const expected = (/** @type {string} */ text) => {
    const now = Date.now();
    for (let i = pending.length - 1; i >= 0; i--) {
      const follow = pending[i];
      if (!follow || follow.until < now || follow.left <= 0) pending.splice(i, 1);
    }
    const follow = pending.find((f) => f.next.test(text));
    if (follow) {
      follow.left -= 1;
      return true;
    }
    const match = EXPECTED.find((e) => e.pattern.test(text));
    if (!match) return false;
    if (match.followUps) {
      pending.push({
        next: match.followUps.next,
        left: match.followUps.count,
        until: now + FOLLOW_UP_WINDOW_MS,
      });
    }
    return true;
  };
  for (const stream of [process.stdout, process.stderr]) {
    const write = stream.write.bind(stream);
    // The pool writes each workerd message (with its `stack:` line) in one call.
    stream.write = /** @type {typeof stream.write} */ (
      (/** @type {any} */ chunk, /** @type {any[]} */ ...rest) => {
        if (typeof chunk === "string" && expected(chunk)) {
          const callback = rest.find((arg) => typeof arg === "function");
          callback?.();
          return true;
        }
        return write(chunk, ...rest);
      }
    );
  }
}
