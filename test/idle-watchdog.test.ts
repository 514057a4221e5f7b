import { describe, expect, it } from "vitest";
import { IdleWatchdog } from "../src/dashscope/idle-watchdog";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("IdleWatchdog", () => {
  it("fires once, the timeout after the last progress, not after the first", async () => {
    let fired = 0;
    const startedAt = Date.now();
    // Progress every 0.1 s for 0.5 s: longer than the 0.4 s timeout in all, never idle that long.
    const watchdog = new IdleWatchdog(400, () => fired++);
    for (let i = 0; i < 5; i++) {
      await sleep(100);
      watchdog.progress();
    }
    const lastProgressAt = Date.now();
    expect(fired).toBe(0);
    while (fired === 0 && Date.now() - lastProgressAt < 2_000) await sleep(20);
    expect(fired).toBe(1);
    expect(watchdog.hasFired).toBe(true);
    expect(Date.now() - lastProgressAt).toBeGreaterThanOrEqual(400);
    expect(Date.now() - startedAt).toBeGreaterThanOrEqual(900);
    watchdog.check();
    expect(fired).toBe(1);
  });

  it("check() fires as soon as the timeout has passed by its clock (the heartbeat's path)", () => {
    let now = 1_000;
    let fired = 0;
    const watchdog = new IdleWatchdog(
      60_000,
      () => fired++,
      () => now,
    );
    now += 59_999;
    expect(watchdog.check()).toBe(false);
    now += 1;
    expect(watchdog.check()).toBe(true);
    expect(fired).toBe(1);
    watchdog.stop();
  });

  it("never fires once stopped, or with a timeout of 0", async () => {
    let fired = 0;
    const stopped = new IdleWatchdog(50, () => fired++);
    stopped.stop();
    let now = 0;
    const off = new IdleWatchdog(
      0,
      () => fired++,
      () => now,
    );
    now = 1e12;
    await sleep(120);
    expect(stopped.check()).toBe(false);
    expect(off.check()).toBe(false);
    expect(fired).toBe(0);
  });
});
