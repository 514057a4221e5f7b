import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";

/** What the numbers were measured on. */
export function describeMachine(root) {
  const version = (pkg) => {
    try {
      return JSON.parse(readFileSync(path.join(root, "node_modules", pkg, "package.json"), "utf8")).version;
    } catch {
      return "?";
    }
  };
  let workerd = "?";
  try {
    workerd = execFileSync(path.join(root, "node_modules", ".bin", "workerd"), ["--version"], {
      encoding: "utf8",
    }).trim();
  } catch {
    // reported as unknown
  }
  const cpus = os.cpus();
  return {
    cpus: os.availableParallelism(),
    cpuModel: cpus[0]?.model?.trim() ?? "?",
    memoryGiB: (os.totalmem() / 2 ** 30).toFixed(1),
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
    workerd,
    miniflare: version("miniflare"),
    wrangler: version("wrangler"),
  };
}
