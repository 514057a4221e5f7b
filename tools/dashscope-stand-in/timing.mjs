/**
 * Waits `ms` milliseconds, resolving early (with `false`) when the signal aborts so a closed client does not
 * keep timers alive. Zero or negative waits resolve immediately without touching the timer queue.
 * @param {number} ms
 * @param {AbortSignal} signal
 * @returns {Promise<boolean>} true when the full wait elapsed
 */
export function sleep(ms, signal) {
  if (signal.aborted) return Promise.resolve(false);
  if (!(ms > 0)) return Promise.resolve(true);
  return new Promise((resolve) => {
    const onAbort = () => {
      clearTimeout(timer);
      resolve(false);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve(true);
    }, ms);
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * Writes to the response, waiting for `drain` when the socket buffer is full (large benchmark streams).
 * @param {import("node:http").ServerResponse} res
 * @param {string} text
 * @param {AbortSignal} signal
 * @returns {Promise<boolean>} false when the client went away
 */
export function writeWithBackpressure(res, text, signal) {
  if (signal.aborted || res.destroyed) return Promise.resolve(false);
  if (res.write(text)) return Promise.resolve(true);
  return new Promise((resolve) => {
    const done = (/** @type {boolean} */ ok) => {
      res.off("drain", onDrain);
      signal.removeEventListener("abort", onAbort);
      resolve(ok);
    };
    const onDrain = () => done(true);
    const onAbort = () => done(false);
    res.on("drain", onDrain);
    signal.addEventListener("abort", onAbort, { once: true });
  });
}
