// `wrangler dev` (pinned in package.json) prints a banner, a table of every binding and variable,
// and "Using secrets defined in …" before it is ready. `npm run dev` prints its own short summary
// instead, so these lines are dropped; request logs, the Worker's logs, warnings and errors pass.
import readline from "node:readline";

const DROPPED_LINES = [
  /^Using secrets defined in /,
  /^\[custom build\] /,
  /^🪵\s+Logs were written to /,
  /^⎔ Starting local server/,
  /^\[wrangler:info\] Ready on /,
  /^Your Worker has access to the following bindings:/,
  /^Binding\s+Resource\s+Mode\s*$/,
  /^env\.\S+ .*\s(local|remote)\s*$/,
  /^No bindings found\.?$/,
  /^\s*$/,
];

/** The request log of `npm run dev`'s own readiness checks, dropped until the Worker answers. */
const READINESS_CHECK = /^\[wrangler:info\] GET \/healthz /;

/**
 * Copies `input` to `output` line by line, leaving out the lines above (and, while
 * `starting()` is true, the readiness checks).
 */
export function filterWranglerOutput(input, output, starting) {
  const lines = readline.createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY });
  lines.on("line", (line) => {
    if (DROPPED_LINES.some((pattern) => pattern.test(line))) return;
    if (starting() && READINESS_CHECK.test(line)) return;
    output.write(`${line}\n`);
  });
}
