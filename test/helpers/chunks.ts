/** Splits `bytes` at the given offsets (any order, duplicates allowed, so empty chunks occur too). */
export function splitAt(bytes: Uint8Array, cuts: number[]): Uint8Array[] {
  const sorted = [...cuts].sort((a, b) => a - b);
  const chunks: Uint8Array[] = [];
  let start = 0;
  for (const cut of sorted) {
    chunks.push(bytes.subarray(start, cut));
    start = cut;
  }
  chunks.push(bytes.subarray(start));
  return chunks;
}
