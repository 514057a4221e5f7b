/** Qwen-Omni audio is base64 PCM s16le, mono, 24 kHz (PROTOCOL.md §4.1). Each delta carries 20 ms. */
const SAMPLE_RATE_HZ = 24_000;
const SAMPLES_PER_DELTA = SAMPLE_RATE_HZ / 50;
const TONE_HZ = 440;
const AMPLITUDE = 8_000;

/**
 * Deterministic audio deltas: a quiet 440 Hz tone whose phase is offset by the PRNG.
 * @param {{ next(): number }} prng
 * @param {number} count number of audio deltas
 * @returns {string[]} base64 strings, one per delta
 */
export function audioPieces(prng, count) {
  const phase = prng.next() * 2 * Math.PI;
  const pieces = [];
  for (let d = 0; d < count; d++) {
    const pcm = Buffer.alloc(SAMPLES_PER_DELTA * 2);
    for (let i = 0; i < SAMPLES_PER_DELTA; i++) {
      const t = (d * SAMPLES_PER_DELTA + i) / SAMPLE_RATE_HZ;
      pcm.writeInt16LE(Math.round(AMPLITUDE * Math.sin(2 * Math.PI * TONE_HZ * t + phase)), i * 2);
    }
    pieces.push(pcm.toString("base64"));
  }
  return pieces;
}
