import { parseArgs } from "node:util";

/** Every scenario, in the order the table shows them. */
export const SCENARIOS = [
  "ttft",
  "ttft-d1",
  "timeline",
  "whole-turn",
  "concurrency",
  "memory",
  "history",
  "stream-cost",
  "footprint",
  "token-economy",
  "photos",
];

/**
 * Bench options from flags and environment:
 *   --quick (BENCH_QUICK=1)      fewer rounds and smaller waves, for a smoke run
 *   --rounds N (BENCH_ROUNDS)    measured rounds per interleaved comparison
 *   --warmup N (BENCH_WARMUP)    discarded warm-up rounds
 *   --only a,b (BENCH_ONLY)      run only these scenarios
 *   --reuse-build                use .bench/build/index.js from an earlier run instead of building
 * @param {string[]} argv
 */
export function readOptions(argv = process.argv.slice(2), env = process.env) {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: "boolean" },
      rounds: { type: "string" },
      warmup: { type: "string" },
      only: { type: "string" },
      "reuse-build": { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    console.log(
      `Usage: npm run bench -- [--quick] [--rounds N] [--warmup N] [--only ${SCENARIOS.join(",")}] [--reuse-build]`,
    );
    process.exit(0);
  }
  const quick = values.quick ?? env.BENCH_QUICK === "1";
  const int = (flag, envValue, fallback) => {
    const raw = flag ?? envValue;
    if (raw === undefined || raw === "") return fallback;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < 0) throw new Error(`Expected a whole number, got "${raw}"`);
    return n;
  };
  const only = (values.only ?? env.BENCH_ONLY ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  for (const name of only)
    if (!SCENARIOS.includes(name))
      throw new Error(`Unknown scenario "${name}" (known: ${SCENARIOS.join(", ")})`);
  const rounds = int(values.rounds, env.BENCH_ROUNDS, quick ? 10 : 60);
  return {
    quick,
    rounds,
    warmup: int(values.warmup, env.BENCH_WARMUP, quick ? 2 : 5),
    /** Rounds of the 1,000-token comparisons, which take longer each. */
    longRounds: Math.max(3, Math.round(rounds / 3)),
    /** Sizes of the concurrency waves of edge-chat turns. */
    waves: quick ? [20, 50] : [50, 200],
    historySizes: [10, 1000, 10000],
    scenarios: only.length ? only : SCENARIOS,
    reuseBuild: values["reuse-build"] ?? false,
  };
}
