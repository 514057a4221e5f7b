/**
 * A running edge-chat Worker for tests that drive it as an app would, from Node over real HTTP:
 * the bundle `wrangler deploy` would upload, in workerd (Miniflare) on 127.0.0.1, with the
 * DashScope stand-in and a local signing key for tokens. It is the benchmark's harness
 * (bench/lib/harness.mjs), so both run the Worker the same way.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
// @ts-expect-error plain ESM module without type declarations
import { buildWorker } from "../../bench/lib/build.mjs";
// @ts-expect-error plain ESM module without type declarations
import { startHarness } from "../../bench/lib/harness.mjs";

/** The repository's root. */
export const ROOT = path.resolve(import.meta.dirname, "../..");

export interface RunningWorker {
  /** `http://127.0.0.1:<port>`, the Worker's own socket. */
  origin: string;
  /** A bearer token of `userId` the Worker accepts. */
  tokenFor(userId: string): Promise<string>;
  close(): Promise<void>;
}

interface Harness {
  edgeOrigin: string;
  auth: { tokenFor(userId: string): Promise<string> };
  close(): Promise<void>;
}

/** Builds the Worker and starts it (about 5–15 s); `close` stops it and removes the build. */
export async function startRunningWorker(): Promise<RunningWorker> {
  const outDir = mkdtempSync(path.join(tmpdir(), "edge-chat-worker-"));
  const { scriptPath } = (await buildWorker(ROOT, outDir)) as { scriptPath: string };
  const harness = (await startHarness({ root: ROOT, scriptPath })) as Harness;
  return {
    origin: harness.edgeOrigin,
    tokenFor: (userId) => harness.auth.tokenFor(userId),
    async close() {
      await harness.close();
      rmSync(outDir, { recursive: true, force: true });
    },
  };
}
