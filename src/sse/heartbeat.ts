import { commentBytes } from "./encode";

/** The keep-alive comment: SSE readers ignore it, proxies and mobile networks see traffic. */
export const PING = commentBytes("ping");

/**
 * The one keep-alive of every event stream: sends {@link PING} through `send` whenever
 * `intervalMs` pass without a {@link touch}, from {@link start} until {@link stop}. A stream that
 * calls `touch()` on each write pings only when it has been quiet that long; one that never
 * does pings at a fixed cadence. `intervalMs <= 0` disables it.
 *
 * One timer runs at a time whatever the write rate: `touch()` only records the time, and a timer
 * that fires early for that reason waits out the rest of the interval.
 */
export class Heartbeat {
  private timer: ReturnType<typeof setTimeout> | null = null;
  private lastWrite = 0;

  constructor(
    private readonly intervalMs: number,
    private readonly send: (frame: Uint8Array) => void,
  ) {}

  /** Starts the interval (idempotent). */
  start(): void {
    if (this.timer || this.intervalMs <= 0) return;
    this.lastWrite = Date.now();
    this.arm(this.intervalMs);
  }

  /** Something was written: the next ping is due `intervalMs` from now. */
  touch(): void {
    this.lastWrite = Date.now();
  }

  /** Stops pinging (idempotent). */
  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private arm(delayMs: number): void {
    this.timer = setTimeout(() => {
      const quietMs = Date.now() - this.lastWrite;
      if (quietMs < this.intervalMs) {
        this.arm(this.intervalMs - quietMs);
        return;
      }
      this.lastWrite = Date.now();
      this.arm(this.intervalMs);
      this.send(PING);
    }, delayMs);
  }
}
