import { describe, expect, it } from "vitest";
import { createIdGenerator, idTimestampMs, isId, newId, UUID_V7_PATTERN } from "../src/store/ids";

const realRandom = (bytes: Uint8Array) => {
  crypto.getRandomValues(bytes);
};

describe("newId (UUIDv7)", () => {
  it("has the RFC 9562 layout: version 7 and variant 0b10", () => {
    for (let i = 0; i < 200; i++) {
      const id = newId();
      expect(id).toMatch(UUID_V7_PATTERN);
      expect(id[14]).toBe("7");
      const variantNibble = parseInt(id[19]!, 16);
      expect(variantNibble >> 2).toBe(0b10);
      expect(isId(id)).toBe(true);
    }
  });

  it("embeds the current Unix time in milliseconds", () => {
    const generate = createIdGenerator();
    const before = Date.now();
    const id = generate();
    const after = Date.now();
    expect(idTimestampMs(id)).toBeGreaterThanOrEqual(before);
    expect(idTimestampMs(id)).toBeLessThanOrEqual(after);
  });

  it("sorts 10k ids made in a tight loop in creation order, with no duplicates", () => {
    const ids = Array.from({ length: 10_000 }, () => newId());
    for (let i = 1; i < ids.length; i++) {
      if (!(ids[i - 1]! < ids[i]!)) throw new Error(`id ${i} (${ids[i]}) does not sort after ${ids[i - 1]}`);
    }
    expect(new Set(ids).size).toBe(ids.length);
  });

  it("stays monotonic when the clock stands still past the counter's range (timestamp bump)", () => {
    const frozen = 1_700_000_000_000;
    const generate = createIdGenerator({ now: () => frozen, fillRandom: realRandom });
    const ids = Array.from({ length: 20_000 }, generate);
    for (let i = 1; i < ids.length; i++) {
      if (!(ids[i - 1]! < ids[i]!)) throw new Error(`id ${i} does not sort after its predecessor`);
    }
    expect(idTimestampMs(ids[0]!)).toBe(frozen);
    // 20k ids need at most 20k / 2048 extra milliseconds of borrowed time.
    expect(idTimestampMs(ids[ids.length - 1]!)).toBeGreaterThan(frozen);
    expect(idTimestampMs(ids[ids.length - 1]!)).toBeLessThanOrEqual(frozen + Math.ceil(20_000 / 2048));
  });

  it("stays monotonic when the clock goes backwards", () => {
    let now = 1_700_000_000_500;
    const generate = createIdGenerator({ now: () => now, fillRandom: realRandom });
    const first = generate();
    now -= 400;
    const second = generate();
    expect(second > first).toBe(true);
    expect(idTimestampMs(second)).toBe(1_700_000_000_500);
  });

  it("restarts from the new millisecond when the clock advances, with a random counter seed", () => {
    let now = 1_700_000_000_000;
    const generate = createIdGenerator({ now: () => now, fillRandom: (b) => b.fill(0xff) });
    generate();
    now += 1;
    const id = generate();
    expect(idTimestampMs(id)).toBe(now);
    // rand_a seed = 0xffff % 0x800 = 0x7ff: always in the lower half, leaving room to count.
    expect(id.slice(14, 18)).toBe("77ff");
  });
});
