import type { TestProject } from "vitest/node";
// @ts-expect-error plain ESM module without type declarations
import { startStandIn } from "../tools/dashscope-stand-in/server.mjs";

const STAND_IN_API_KEY = "sk-stand-in-test-key";

/** Starts the DashScope stand-in once for the whole run and hands its address to the Worker. */
export default async function setup(project: TestProject) {
  const standIn = await startStandIn({ host: "127.0.0.1", port: 0, apiKey: STAND_IN_API_KEY });
  project.provide("standInBaseUrl", standIn.baseUrl);
  project.provide("standInApiKey", STAND_IN_API_KEY);
  project.provide("standInControlUrl", standIn.origin);
  return async () => {
    await standIn.close();
  };
}

declare module "vitest" {
  export interface ProvidedContext {
    standInBaseUrl: string;
    standInApiKey: string;
    standInControlUrl: string;
  }
}
