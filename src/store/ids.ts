/**
 * UUIDv7 ids (RFC 9562 §5.7), monotonic within an isolate.
 *
 * Layout: 48-bit Unix ms timestamp | version 7 | 12-bit rand_a | variant 0b10 | 62-bit rand_b.
 * rand_a is used as a counter (RFC 9562 §6.2, method 1): seeded randomly in its lower half
 * each new millisecond and incremented for every further id in the same millisecond. When
 * the counter overflows, the timestamp is bumped by 1 ms instead (§6.2, "timestamp
 * increment"), so ids stay strictly increasing. This matters in Workers: `Date.now()` does
 * not advance while a request runs without I/O, so a tight loop sees a single millisecond.
 * Ids are lowercase fixed-width hex, so comparing the strings compares the ids.
 */

/** Largest value of the 12-bit rand_a counter. */
const COUNTER_MAX = 0xfff;
/** Seeds stay below this, leaving at least 2048 increments per millisecond before a bump. */
const COUNTER_SEED_LIMIT = 0x800;

/** Sources the generator reads; injectable so tests can freeze or rewind the clock. */
export interface IdSources {
  /** Current Unix time in milliseconds. */
  now: () => number;
  /** Fills the array with cryptographically random bytes. */
  fillRandom: (bytes: Uint8Array) => void;
}

const defaultSources: IdSources = {
  now: () => Date.now(),
  fillRandom: (bytes) => {
    crypto.getRandomValues(bytes);
  },
};

/**
 * Creates an independent UUIDv7 generator with its own monotonic state.
 * Each returned id sorts (as a string) strictly after the previous one from the same generator,
 * even if the clock stands still or goes backwards.
 */
export function createIdGenerator(sources: IdSources = defaultSources): () => string {
  let lastMs = -1;
  let counter = 0;
  const bytes = new Uint8Array(16);
  const hex: string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));

  return () => {
    sources.fillRandom(bytes);
    const now = Math.floor(sources.now());
    if (now > lastMs) {
      lastMs = now;
      counter = ((bytes[6]! << 8) | bytes[7]!) % COUNTER_SEED_LIMIT;
    } else if (counter < COUNTER_MAX) {
      counter += 1;
    } else {
      // Counter exhausted (or the clock went backwards past an earlier bump): borrow the next ms.
      lastMs += 1;
      counter = ((bytes[6]! << 8) | bytes[7]!) % COUNTER_SEED_LIMIT;
    }
    // 48-bit timestamp, big-endian. Bit operations are 32-bit in JS, so split high and low parts.
    const high = Math.floor(lastMs / 2 ** 32);
    const low = lastMs >>> 0;
    bytes[0] = (high >>> 8) & 0xff;
    bytes[1] = high & 0xff;
    bytes[2] = (low >>> 24) & 0xff;
    bytes[3] = (low >>> 16) & 0xff;
    bytes[4] = (low >>> 8) & 0xff;
    bytes[5] = low & 0xff;
    bytes[6] = 0x70 | (counter >>> 8);
    bytes[7] = counter & 0xff;
    bytes[8] = 0x80 | (bytes[8]! & 0x3f);
    let out = "";
    for (let i = 0; i < 16; i++) {
      if (i === 4 || i === 6 || i === 8 || i === 10) out += "-";
      out += hex[bytes[i]!];
    }
    return out;
  };
}

/** A new UUIDv7 string; ids from this isolate sort in creation order. */
export const newId: () => string = createIdGenerator();

/** Matches the canonical lowercase form of a UUIDv7, as `newId` produces it. */
export const UUID_V7_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** Whether `value` looks like one of our ids (lets routes answer 404 without a query). */
export function isId(value: string): boolean {
  return UUID_V7_PATTERN.test(value);
}

/**
 * The Unix ms timestamp embedded in a UUIDv7.
 * @internal Exported for test/store-ids.test.ts, which checks the generator's clock handling with it.
 */
export function idTimestampMs(id: string): number {
  return parseInt(id.slice(0, 8) + id.slice(9, 13), 16);
}
