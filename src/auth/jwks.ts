import type { JSONWebKeySet } from "jose";
import * as z from "zod";

/** How long a JWKS endpoint may take to answer before the fetch is abandoned, in ms. */
export const JWKS_FETCH_TIMEOUT_MS = 5_000;
/** Largest JWKS body accepted, in bytes; real key sets are a few KiB. */
export const JWKS_MAX_BYTES = 256 * 1024;

// Only the outer shape is checked here; jose validates each key when it is imported.
const jwksSchema = z.object({
  keys: z.array(z.looseObject({ kty: z.string() })),
});

/** Parses a JSON Web Key Set from its JSON text; returns null if it is not one. */
export function parseJwks(text: string): JSONWebKeySet | null {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return null;
  }
  const parsed = jwksSchema.safeParse(value);
  return parsed.success ? (parsed.data as JSONWebKeySet) : null;
}

/**
 * Fetches and parses the JWKS at `url`. Throws on a network error, a non-2xx answer,
 * an oversized body or a body that is not a key set.
 */
export async function fetchJwks(url: string, fetchFn: typeof fetch): Promise<JSONWebKeySet> {
  const res = await fetchFn(url, {
    headers: { accept: "application/json" },
    signal: AbortSignal.timeout(JWKS_FETCH_TIMEOUT_MS),
  });
  if (!res.ok) {
    await res.body?.cancel();
    throw new Error(`JWKS endpoint answered HTTP ${res.status}`);
  }
  const text = await res.text();
  if (text.length > JWKS_MAX_BYTES) throw new Error("JWKS response is too large");
  const jwks = parseJwks(text);
  if (!jwks) throw new Error("JWKS response is not a JSON Web Key Set");
  return jwks;
}
