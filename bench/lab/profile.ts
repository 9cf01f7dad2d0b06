/**
 * Turns a V8 CPU profile (Node's inspector, or workerd's) into the few lines a reader needs: where
 * the self time went, by function and by package.
 */
import type { Profiler } from "node:inspector";

/** Where a generated position came from: the original source file and 1-based line. */
export type Resolve = (url: string, line0: number, column0: number) => string | undefined;

const BASE64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/**
 * A lookup from a bundle's positions to its sources (source map v3, "mappings" decoded from
 * base64 VLQ), so a workerd profile names `workers/proxy/src/index.ts:88`, not `index.js:45206`.
 */
export function sourceMapResolver(map: { sources: string[]; mappings: string }) {
  // Per generated line: [generated column, source index, original line] segments, in order.
  const lines: [number, number, number][][] = [];
  let source = 0;
  let original = 0;
  for (const text of map.mappings.split(";")) {
    const segments: [number, number, number][] = [];
    let column = 0;
    for (const segment of text.split(",")) {
      if (!segment) continue;
      const values: number[] = [];
      let value = 0;
      let shift = 0;
      for (const char of segment) {
        const digit = BASE64.indexOf(char);
        value += (digit & 31) << shift;
        if (digit & 32) {
          shift += 5;
        } else {
          values.push(value & 1 ? -(value >>> 1) : value >>> 1);
          value = 0;
          shift = 0;
        }
      }
      column += values[0] ?? 0;
      if (values.length >= 4) {
        source += values[1] ?? 0;
        original += values[2] ?? 0;
        segments.push([column, source, original]);
      }
    }
    lines.push(segments);
  }
  return (line0: number, column0: number): string | undefined => {
    const segments = lines[line0];
    if (!segments?.length) return undefined;
    let found = segments[0];
    for (const segment of segments) {
      if (segment[0] > column0) break;
      found = segment;
    }
    if (!found) return undefined;
    const file = map.sources[found[1]];
    return file === undefined ? undefined : `${file.replace(/^(\.\.\/)+/, "")}:${found[2] + 1}`;
  };
}

export interface ProfileLine {
  name: string;
  ms: number;
  /** Share of all sampled time, 0..1. */
  share: number;
}

export interface ProfileSummary {
  sampledMs: number;
  byPackage: ProfileLine[];
  byFunction: ProfileLine[];
}

/** The package (or repo folder) a script URL belongs to. */
export function packageOf(url: string): string {
  if (!url) return "(V8/runtime)";
  const cut = url.lastIndexOf("node_modules/");
  if (cut >= 0) {
    const parts = url.slice(cut + "node_modules/".length).split("/");
    return parts[0]?.startsWith("@") ? `${parts[0]}/${parts[1]}` : (parts[0] ?? url);
  }
  if (url.startsWith("node:")) return "(node internals)";
  // A file of this repository: the file is the unit, since each has one job.
  const repo =
    /(?:^|\/)((?:workers|common|durable-objects|local-backends|bench|keys)\/.*?)(?::\d+)?$/.exec(
      url,
    );
  if (repo?.[1]) return repo[1];
  // A bundled Worker: one script, so the function name has to say the rest.
  return url.replace(/^.*\//, "");
}

/** A script URL short enough for a table: from the package (or repo folder) on. */
function shortUrl(url: string): string {
  const cut = url.lastIndexOf("node_modules/");
  if (cut >= 0) return url.slice(cut + "node_modules/".length);
  const repo = url.search(/\/(workers|common|durable-objects|local-backends|bench)\//);
  return repo >= 0 ? url.slice(repo + 1) : url.replace(/^.*\//, "");
}

function top(map: Map<string, number>, total: number, n: number): ProfileLine[] {
  return [...map.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([name, us]) => ({
      name,
      ms: Math.round(us) / 1000,
      share: total ? Math.round((us / total) * 1000) / 1000 : 0,
    }));
}

/**
 * Self time by package and by function, the `n` largest of each. Time is counted as samples ×
 * `intervalUs`, not from the timestamps: in workerd an isolate is sampled only while it runs, so
 * the gap to the next sample holds time spent elsewhere (waiting on I/O, other isolates).
 */
export function summarizeProfile(
  profile: Profiler.Profile,
  intervalUs: number,
  n = 15,
  resolve?: Resolve,
): ProfileSummary {
  const selfUs = new Map<number, number>();
  for (const id of profile.samples ?? []) selfUs.set(id, (selfUs.get(id) ?? 0) + intervalUs);
  const byPackage = new Map<string, number>();
  const byFunction = new Map<string, number>();
  let total = 0;
  for (const node of profile.nodes) {
    const us = selfUs.get(node.id) ?? 0;
    if (us === 0) continue;
    const { functionName, url, lineNumber, columnNumber } = node.callFrame;
    if (functionName === "(idle)") continue;
    total += us;
    const original = url ? resolve?.(url, lineNumber, columnNumber) : undefined;
    const pkg = packageOf(original ?? url);
    byPackage.set(pkg, (byPackage.get(pkg) ?? 0) + us);
    const where = original ? ` ${original}` : url ? ` ${shortUrl(url)}:${lineNumber + 1}` : "";
    const key = `${functionName || "(anonymous)"}${where}`;
    byFunction.set(key, (byFunction.get(key) ?? 0) + us);
  }
  return {
    sampledMs: Math.round(total) / 1000,
    byPackage: top(byPackage, total, n),
    byFunction: top(byFunction, total, n),
  };
}

/**
 * `profile` with each bundled frame's URL replaced by its source position (`path:line`), so that
 * a saved profile names the proxy's files, not the bundle's lines.
 */
export function resolvedProfile(profile: Profiler.Profile, resolve?: Resolve): Profiler.Profile {
  if (!resolve) return profile;
  const nodes = profile.nodes.map((node) => {
    const { url, lineNumber, columnNumber } = node.callFrame;
    const original = url ? resolve(url, lineNumber, columnNumber) : undefined;
    return original ? { ...node, callFrame: { ...node.callFrame, url: original } } : node;
  });
  return { ...profile, nodes };
}
