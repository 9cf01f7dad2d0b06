/**
 * The textual diff the policy preview shows: both policies written the same way (keys sorted,
 * two-space indent), compared line by line. Plain functions over strings, no DOM.
 */

/** `value` as JSON with every object's keys sorted, so reordering alone is no difference. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortKeys(value), null, 2);
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (typeof value !== "object" || value === null) return value;
  const entries = Object.entries(value).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return Object.fromEntries(entries.map(([key, inner]) => [key, sortKeys(inner)]));
}

export type DiffLine = { op: "same" | "add" | "del"; text: string } | { op: "skip"; count: number };

/** Beyond this many cells the table of common subsequences is not built: every line differs. */
const MAX_CELLS = 4_000_000;

/**
 * The lines of `before` and `after` as kept, removed and added (a longest common subsequence),
 * with runs of unchanged lines longer than twice `context` folded into a `skip`.
 */
export function lineDiff(before: string, after: string, context = 3): DiffLine[] {
  const a = before.split("\n");
  const b = after.split("\n");
  const lines: DiffLine[] = [];
  if (a.length * b.length > MAX_CELLS) {
    lines.push(...a.map((text) => ({ op: "del" as const, text })));
    lines.push(...b.map((text) => ({ op: "add" as const, text })));
    return lines;
  }
  // common[i][j]: the longest common subsequence of a[i..] and b[j..].
  const width = b.length + 1;
  const common = new Uint32Array((a.length + 1) * width);
  for (let i = a.length - 1; i >= 0; i--) {
    for (let j = b.length - 1; j >= 0; j--) {
      common[i * width + j] =
        a[i] === b[j]
          ? (common[(i + 1) * width + j + 1] ?? 0) + 1
          : Math.max(common[(i + 1) * width + j] ?? 0, common[i * width + j + 1] ?? 0);
    }
  }
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    if (i < a.length && j < b.length && a[i] === b[j]) {
      lines.push({ op: "same", text: a[i++] as string });
      j++;
    } else if (
      i < a.length &&
      (j === b.length || (common[(i + 1) * width + j] ?? 0) >= (common[i * width + j + 1] ?? 0))
    ) {
      lines.push({ op: "del", text: a[i++] as string });
    } else {
      lines.push({ op: "add", text: b[j++] as string });
    }
  }
  return fold(lines, context);
}

/** Folds unchanged runs, keeping `context` lines next to each change. */
function fold(lines: DiffLine[], context: number): DiffLine[] {
  const folded: DiffLine[] = [];
  let run: DiffLine[] = [];
  const flush = (atStart: boolean, atEnd: boolean) => {
    const keepHead = atStart ? 0 : context;
    const keepTail = atEnd ? 0 : context;
    if (run.length > keepHead + keepTail + 1) {
      folded.push(...run.slice(0, keepHead));
      folded.push({ op: "skip", count: run.length - keepHead - keepTail });
      folded.push(...run.slice(run.length - keepTail));
    } else {
      folded.push(...run);
    }
    run = [];
  };
  let seenChange = false;
  for (const line of lines) {
    if (line.op === "same") {
      run.push(line);
      continue;
    }
    flush(!seenChange, false);
    seenChange = true;
    folded.push(line);
  }
  if (seenChange) flush(false, true);
  else folded.push(...run);
  return folded;
}
