/** Why an upstream stream was given up: no event arrived for `idleMs` milliseconds. */
export class UpstreamIdleTimeout extends Error {
  constructor(readonly idleMs: number) {
    super(`The model sent nothing for ${Math.round(idleMs / 1000)} s.`);
    this.name = "UpstreamIdleTimeout";
  }
}

/**
 * Calls `onIdle` once when {@link progress} has not been called for `timeoutMs` milliseconds.
 *
 * Progress is whatever the owner says it is; for an upstream answer it is a complete SSE event
 * (a chunk, an error frame, `[DONE]`). Comment lines and partial events are not: an upstream or a
 * proxy that sends keep-alive comments but no tokens is as stuck, to the user, as a silent one.
 *
 * One timer at a time, armed for the remaining time and re-armed only when it fires early, so a
 * fast stream costs a clock read per event rather than a timer per read. `timeoutMs <= 0` disables it.
 */
export class IdleWatchdog {
  private last: number;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private fired = false;
  private stopped = false;

  constructor(
    private readonly timeoutMs: number,
    private readonly onIdle: () => void,
    private readonly now: () => number = Date.now,
  ) {
    this.last = now();
    this.arm(timeoutMs);
  }

  /** Marks progress: the timeout counts from now. */
  progress(): void {
    this.last = this.now();
  }

  /** Whether `onIdle` has been called. */
  get hasFired(): boolean {
    return this.fired;
  }

  /**
   * Fires now when the timeout has passed, without waiting for the timer (for a caller that has
   * its own clock tick, such as a heartbeat); returns whether it has fired.
   */
  check(): boolean {
    if (!this.fired && !this.stopped && this.timeoutMs > 0 && this.now() - this.last >= this.timeoutMs) {
      this.fire();
    }
    return this.fired;
  }

  /** Stops watching (the stream ended); `onIdle` is not called after this. */
  stop(): void {
    this.stopped = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  private arm(ms: number): void {
    if (this.timeoutMs <= 0) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      if (this.stopped || this.fired) return;
      const idle = this.now() - this.last;
      if (idle >= this.timeoutMs) this.fire();
      else this.arm(this.timeoutMs - idle);
    }, ms);
  }

  private fire(): void {
    this.fired = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.onIdle();
  }
}

/**
 * The next read of `reader`, or {@link UpstreamIdleTimeout} (with the body cancelled) when it
 * does not settle by `since + idleMs`; `idleMs <= 0` waits forever. A timer per read, unlike
 * {@link IdleWatchdog}: for a reader whose consumer may stop pulling between reads, where that
 * time must not count (the caller passes as `since` when it last saw progress and started waiting).
 */
export async function readWithin(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  idleMs: number,
  since: number,
): Promise<ReadableStreamReadResult<Uint8Array>> {
  const read = reader.read();
  if (idleMs <= 0) return read;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => {
        const idle = new UpstreamIdleTimeout(idleMs);
        read.catch(() => {});
        reader.cancel(idle).catch(() => {});
        reject(idle);
      },
      Math.max(0, since + idleMs - Date.now()),
    );
  });
  try {
    return await Promise.race([read, expired]);
  } finally {
    clearTimeout(timer);
  }
}
