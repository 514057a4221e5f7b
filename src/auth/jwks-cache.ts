import type { JSONWebKeySet } from "jose";
import { fetchJwks, parseJwks } from "./jwks";

/** How long a warm isolate trusts its in-memory key set before re-reading KV, in ms. */
export const MEMORY_TTL_MS = 60_000;
/*
 * Refetching on an unknown `kid` must honour a real key rotation quickly without letting
 * tokens with made-up `kid`s turn into one JWKS fetch per request. Two bounds do that:
 *
 * - At most one refetch per JWKS URL every REFETCH_INTERVAL_MS (5 s), in this isolate and,
 *   through a timestamp in KV, approximately per location. Any refetch after the identity
 *   provider publishes a new key brings that key in, whichever token triggered it, so a
 *   rotation is honoured within 5 s plus one fetch even while bogus `kid`s keep arriving.
 *   A flood of distinct bogus `kid`s costs at most 12 fetches a minute per location.
 * - A `kid` that a refetch did not find is not refetched for again for ABSENT_KID_MEMORY_MS
 *   (60 s), so one client replaying one stale token costs about one fetch a minute, as before.
 *   The memory is per isolate and bounded (MAX_ABSENT_KIDS per URL, oldest forgotten first).
 *   A minute also bounds how long a key published shortly after its first token arrived
 *   (a CDN-cached JWKS) can stay refused.
 */
/** Minimum interval between unknown-`kid` refetches of one JWKS URL, in ms. */
export const REFETCH_INTERVAL_MS = 5_000;
/** How long a `kid` a refetch did not find stops triggering refetches, in ms. */
export const ABSENT_KID_MEMORY_MS = 60_000;
/** `kid`s remembered as absent per JWKS URL; the oldest is forgotten beyond this. */
export const MAX_ABSENT_KIDS = 1_000;
/** KV rejects an `expirationTtl` below 60 seconds. */
export const KV_MIN_TTL_SECONDS = 60;

/** The slice of a KV namespace the cache uses. */
export type JwksKv = Pick<KVNamespace, "get" | "put">;

/** Per-isolate state; shared by every `JwksCache` of the isolate unless a test injects its own. */
export interface JwksMemory {
  /** Last key set per JWKS URL; kept past `freshUntil` as a fallback when the IdP is down. */
  sets: Map<string, { jwks: JSONWebKeySet; freshUntil: number }>;
  /** Time (ms) of the last unknown-`kid` refetch per JWKS URL. */
  lastRefetch: Map<string, number>;
  /** Per JWKS URL: `kid`s a refetch did not find, with when (ms) they may trigger one again. */
  absentKids: Map<string, Map<string, number>>;
  /** Refetches in flight per JWKS URL, so concurrent requests share one. */
  inflight: Map<string, Promise<JSONWebKeySet | null>>;
}

/** A fresh, empty {@link JwksMemory}. */
export function createJwksMemory(): JwksMemory {
  return { sets: new Map(), lastRefetch: new Map(), absentKids: new Map(), inflight: new Map() };
}

const isolateMemory = createJwksMemory();

/** What `JwksCache` needs from the outside world. */
export interface JwksCacheDeps {
  kv: JwksKv;
  fetch: typeof fetch;
  /** Current time in ms. */
  now: () => number;
  /** TTL of the KV copy, in seconds (raised to KV's minimum of 60). */
  ttlSeconds: number;
  /** Defaults to the isolate-wide memory. */
  memory?: JwksMemory;
}

/** Thrown when no key set can be obtained: nothing cached and the JWKS endpoint failed. */
export class JwksUnavailableError extends Error {
  constructor(cause: unknown) {
    super("JWKS unavailable", { cause });
    this.name = "JwksUnavailableError";
  }
}

async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** The KV keys of one JWKS URL: derived from its hash, as URLs can exceed KV's 512-byte key limit. */
export async function jwksKvKeys(url: string): Promise<{ set: string; refetch: string }> {
  const hash = await sha256Hex(url);
  return { set: `jwks:v1:${hash}`, refetch: `jwks-refetch:v1:${hash}` };
}

/**
 * The key set of one JWKS URL, cached in isolate memory (≈ 60 s) and in KV (`ttlSeconds`).
 *
 * On an unknown `kid` (key rotation at the IdP) {@link refreshForUnknownKid} refetches the
 * set, at most once per {@link REFETCH_INTERVAL_MS} per URL and not again for a `kid` the
 * last refetch did not find (see the numbers above). The interval is kept in memory and in
 * KV; KV is eventually consistent (a write can take up to a minute to be seen in other
 * locations), so across locations the bound is per location, approximately.
 */
export class JwksCache {
  private readonly memory: JwksMemory;
  private keyPromise: Promise<{ set: string; refetch: string }> | undefined;

  constructor(
    readonly url: string,
    private readonly deps: JwksCacheDeps,
  ) {
    this.memory = deps.memory ?? isolateMemory;
  }

  /** The current key set: memory, else KV, else the network (then stored in both). */
  async getKeys(): Promise<JSONWebKeySet> {
    const mem = this.memory.sets.get(this.url);
    if (mem && this.deps.now() < mem.freshUntil) return mem.jwks;

    const keys = await this.kvKeys();
    const stored = await this.deps.kv.get(keys.set);
    const fromKv = stored === null ? null : parseJwks(stored);
    if (fromKv) {
      this.remember(fromKv);
      return fromKv;
    }

    try {
      return await this.fetchAndStore();
    } catch (err) {
      // A stale copy beats failing every request while the IdP is unreachable.
      if (mem) return mem.jwks;
      throw new JwksUnavailableError(err);
    }
  }

  /**
   * Refetches the key set because a token named `kid` (undefined: the token named none), which
   * is not in it. Returns the new set, or null when no refetch may happen now (one happened less
   * than {@link REFETCH_INTERVAL_MS} ago, or a recent one did not find this `kid`) or the fetch
   * failed; the cached set stays in use. Concurrent callers share one refetch.
   */
  refreshForUnknownKid(kid?: string): Promise<JSONWebKeySet | null> {
    const now = this.deps.now();
    const absentUntil = this.memory.absentKids.get(this.url)?.get(kid ?? "");
    if (absentUntil !== undefined && now < absentUntil) return Promise.resolve(null);
    const pending = this.memory.inflight.get(this.url);
    if (pending) return pending.then((jwks) => this.noteResult(jwks, kid));
    const last = this.memory.lastRefetch.get(this.url);
    if (last !== undefined && now - last < REFETCH_INTERVAL_MS) return Promise.resolve(null);
    // Claimed synchronously so that concurrent requests in this isolate cannot all pass the check.
    this.memory.lastRefetch.set(this.url, now);
    const run = this.refetch(now).finally(() => this.memory.inflight.delete(this.url));
    this.memory.inflight.set(this.url, run);
    return run.then((jwks) => this.noteResult(jwks, kid));
  }

  /** Remembers `kid` as absent when a refetched set still lacks it; passes the set on. */
  private noteResult(jwks: JSONWebKeySet | null, kid: string | undefined): JSONWebKeySet | null {
    if (jwks === null || (kid !== undefined && jwks.keys.some((key) => key.kid === kid))) return jwks;
    const absent = this.memory.absentKids.get(this.url) ?? new Map<string, number>();
    this.memory.absentKids.set(this.url, absent);
    absent.delete(kid ?? "");
    absent.set(kid ?? "", this.deps.now() + ABSENT_KID_MEMORY_MS);
    // A Map iterates in insertion order, so the first key is the oldest.
    if (absent.size > MAX_ABSENT_KIDS) absent.delete(absent.keys().next().value ?? "");
    return jwks;
  }

  private async refetch(now: number): Promise<JSONWebKeySet | null> {
    const keys = await this.kvKeys();
    const other = Number(await this.deps.kv.get(keys.refetch));
    if (Number.isFinite(other) && other > 0 && now - other < REFETCH_INTERVAL_MS) {
      // Another isolate refetched recently and stored its result in KV; use that if it is there.
      this.memory.lastRefetch.set(this.url, other);
      const stored = await this.deps.kv.get(keys.set);
      const fromKv = stored === null ? null : parseJwks(stored);
      if (fromKv) this.remember(fromKv);
      return fromKv;
    }
    await this.deps.kv.put(keys.refetch, String(now), { expirationTtl: KV_MIN_TTL_SECONDS });
    try {
      return await this.fetchAndStore();
    } catch {
      return null;
    }
  }

  private async fetchAndStore(): Promise<JSONWebKeySet> {
    const jwks = await fetchJwks(this.url, this.deps.fetch);
    const keys = await this.kvKeys();
    await this.deps.kv.put(keys.set, JSON.stringify(jwks), {
      expirationTtl: Math.max(KV_MIN_TTL_SECONDS, Math.floor(this.deps.ttlSeconds)),
    });
    this.remember(jwks);
    return jwks;
  }

  private remember(jwks: JSONWebKeySet): void {
    this.memory.sets.set(this.url, { jwks, freshUntil: this.deps.now() + MEMORY_TTL_MS });
  }

  private kvKeys(): Promise<{ set: string; refetch: string }> {
    this.keyPromise ??= jwksKvKeys(this.url);
    return this.keyPromise;
  }
}
