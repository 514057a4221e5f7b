import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";

/** Linux process counters of the workerd process, read from /proc. */

let clockTicksPerSecond;

/** `getconf CLK_TCK`: the unit of utime/stime in /proc/<pid>/stat (100 on practically every Linux). */
export function clockTicks() {
  if (clockTicksPerSecond === undefined) {
    try {
      clockTicksPerSecond = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
    } catch {
      clockTicksPerSecond = 100;
    }
  }
  return clockTicksPerSecond;
}

/** Fields of /proc/<pid>/stat after the command name, which may itself contain spaces and parentheses. */
function statFields(pid) {
  const text = readFileSync(`/proc/${pid}/stat`, "utf8");
  return {
    comm: text.slice(text.indexOf("(") + 1, text.lastIndexOf(")")),
    rest: text.slice(text.lastIndexOf(")") + 2).split(" "),
  };
}

/**
 * CPU time the process has used so far (user + system, all threads), in milliseconds.
 * utime and stime are fields 14 and 15 of /proc/<pid>/stat, i.e. indexes 11 and 12 after the name.
 * @param {number} pid
 */
export function cpuTimeMs(pid) {
  const { rest } = statFields(pid);
  return ((Number(rest[11]) + Number(rest[12])) * 1000) / clockTicks();
}

/** Resident set size of the process in MiB (`VmRSS` of /proc/<pid>/status). */
export function rssMiB(pid) {
  const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return match ? Number(match[1]) / 1024 : Number.NaN;
}

/**
 * The pid of the workerd child that Miniflare spawned from this process.
 * @returns {number}
 */
export function findWorkerdPid(parentPid = process.pid) {
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const { comm, rest } = statFields(entry);
      if (comm === "workerd" && Number(rest[1]) === parentPid) return Number(entry);
    } catch {
      // The process ended while we were looking.
    }
  }
  throw new Error("No workerd child process found.");
}

/**
 * Samples the RSS of `pid` every `intervalMs` until `stop()`; returns the peak in MiB.
 * @param {number} pid
 * @param {number} intervalMs
 */
export function sampleRss(pid, intervalMs) {
  let peak = rssMiB(pid);
  const timer = setInterval(() => {
    const v = rssMiB(pid);
    if (v > peak) peak = v;
  }, intervalMs);
  return {
    stop() {
      clearInterval(timer);
      return Math.max(peak, rssMiB(pid));
    },
  };
}
