/**
 * Interleaved rounds: every round runs each path once, one request at a time, and the starting path
 * rotates from round to round (A B C, B C A, C A B, …) so no path always follows the same neighbour.
 * The first `warmup` rounds are run and discarded.
 * @template T
 * @param {{ paths: Record<string, () => Promise<T>>, rounds: number, warmup: number }} options
 * @returns {Promise<Record<string, T[]>>} the measured results of each path, in round order
 */
export async function interleave({ paths, rounds, warmup }) {
  const names = Object.keys(paths);
  const results = Object.fromEntries(names.map((n) => [n, []]));
  for (let round = 0; round < warmup + rounds; round++) {
    for (let k = 0; k < names.length; k++) {
      const name = names[(round + k) % names.length];
      const result = await paths[name]();
      if (round >= warmup) results[name].push(result);
    }
  }
  return results;
}
