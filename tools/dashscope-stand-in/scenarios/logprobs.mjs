import { VOCABULARY } from "./words.mjs";

const MAX_TOP_LOGPROBS = 5;

/**
 * One `logprobs.content[]` entry in the captured key order `top_logprobs, logprob, bytes, token`.
 * The chosen token comes first in `top_logprobs`; alternatives get lower log-probabilities.
 * @param {{ int(max: number): number, pick<T>(items: readonly T[]): T }} prng
 * @param {string} token
 * @param {number} topCount requested `top_logprobs` (clamped to 0..5)
 */
export function logprobEntry(prng, token, topCount) {
  const logprob = -prng.int(200) / 100;
  const top = [{ logprob, bytes: utf8Bytes(token), token }];
  const count = Math.max(0, Math.min(MAX_TOP_LOGPROBS, Math.trunc(topCount)));
  for (let i = 1; i < count; i++) {
    const alt = (token.startsWith(" ") ? " " : "") + prng.pick(VOCABULARY);
    const altLogprob = Math.round((logprob - 1 - prng.int(1600) / 100) * 100) / 100;
    top.push({ logprob: altLogprob, bytes: utf8Bytes(alt), token: alt });
  }
  return { top_logprobs: count === 0 ? [] : top, logprob, bytes: utf8Bytes(token), token };
}

/** @param {string} s */
function utf8Bytes(s) {
  return Array.from(new TextEncoder().encode(s));
}
