import { createHash } from "node:crypto";

/**
 * Everything the stand-in sends is a pure function of the raw request body, so the same body always
 * produces the same bytes: ids, `created`, words, tool arguments and audio all derive from its SHA-256.
 */

/** Base of the synthetic `created` clock (2026-02-02T02:40:00Z); the body hash adds up to one year. */
const CREATED_BASE_S = 1_770_000_000;
const CREATED_SPREAD_S = 365 * 24 * 3600;

/**
 * Hex SHA-256 of a string or bytes.
 * @param {string | Uint8Array} data
 * @returns {string}
 */
export function sha256Hex(data) {
  return createHash("sha256").update(data).digest("hex");
}

/**
 * A uuid-shaped string (8-4-4-4-12 hex) derived from the body hash and a purpose label.
 * DashScope ids are uuids without a fixed version nibble (`428b414f-fdd4-94c6-…`), so no version bits are forced.
 * @param {string} bodyHash
 * @param {string} purpose
 * @returns {string}
 */
export function deterministicUuid(bodyHash, purpose) {
  const h = sha256Hex(`${bodyHash}:${purpose}`);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

/**
 * Tool-call id in DashScope's format: `call_` + 22 hex digits.
 * @param {string} bodyHash
 * @param {number} index
 * @returns {string}
 */
export function deterministicCallId(bodyHash, index) {
  return `call_${sha256Hex(`${bodyHash}:call:${index}`).slice(0, 22)}`;
}

/**
 * Unix seconds used as `created` in every chunk of one response.
 * @param {string} bodyHash
 * @returns {number}
 */
export function deterministicCreated(bodyHash) {
  return CREATED_BASE_S + (parseInt(bodyHash.slice(0, 8), 16) % CREATED_SPREAD_S);
}

/**
 * Small seeded PRNG (mulberry32). Not cryptographic; only has to be stable across runs and platforms.
 * @param {string} bodyHash hex string; its first 8 digits seed the generator
 * @param {number} [stream] separates independent sequences (e.g. one per choice)
 * @returns {{ next(): number, int(maxExclusive: number): number, pick<T>(items: readonly T[]): T }}
 */
export function createPrng(bodyHash, stream = 0) {
  let state = parseInt(sha256Hex(`${bodyHash}:prng:${stream}`).slice(0, 8), 16) >>> 0 || 1;
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    int: (maxExclusive) => Math.floor(next() * maxExclusive),
    pick: (items) => /** @type {any} */ (items[Math.floor(next() * items.length)]),
  };
}
