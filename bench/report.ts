/** The printed table: one row per figure, its baseline beside it, and the target it is held to. */

export interface Row {
  figure: string;
  proxy: string;
  baseline: string;
  delta: string;
  target: string;
  /** Whether the target is met; undefined when the row has no target. */
  met?: boolean;
}

/** Milliseconds for the table. */
export function ms(value: number | undefined): string {
  if (value === undefined || !Number.isFinite(value)) return "n/a";
  return `${value.toFixed(value < 10 ? 2 : 1)} ms`;
}

/** A signed difference in milliseconds. */
export function plusMs(value: number | undefined): string {
  if (value === undefined || !Number.isFinite(value)) return "n/a";
  return `${value >= 0 ? "+" : ""}${value.toFixed(2)} ms`;
}

/** Microseconds for the table. */
export function us(value: number | undefined): string {
  if (value === undefined || !Number.isFinite(value)) return "n/a";
  return `${value.toFixed(value < 100 ? 1 : 0)} µs`;
}

/** Requests per second, with the error count when there were any. */
export function rps(value: number | undefined, errors?: number): string {
  if (value === undefined || !Number.isFinite(value)) return "n/a";
  return `${Math.round(value)}/s${errors ? ` (${errors} err)` : " (0 err)"}`;
}

/** A ratio as a percentage. */
export function percent(value: number | undefined): string {
  if (value === undefined || !Number.isFinite(value)) return "n/a";
  return `${Math.round(value * 100)}%`;
}

/** The table as fixed-width text. */
export function formatTable(rows: readonly Row[]): string {
  const header: Row = {
    figure: "figure",
    proxy: "proxy",
    baseline: "baseline",
    delta: "delta/ratio",
    target: "target",
  };
  // Long cells (an error message) are cut here; the JSON keeps them whole.
  const cut = (text: string) => (text.length > 72 ? `${text.slice(0, 71)}…` : text);
  const cells = (row: Row) => [
    cut(row.figure),
    cut(row.proxy),
    cut(row.baseline),
    cut(row.delta),
    row.target,
    row.met === undefined ? "" : row.met ? "met" : "MISSED",
  ];
  return textTable([header, ...rows].map(cells));
}

/** Rows of cells (the first the header) as fixed-width text, columns as wide as their widest. */
export function textTable(all: readonly string[][]): string {
  const widths = (all[0] ?? []).map((_, i) => Math.max(...all.map((r) => (r[i] ?? "").length)));
  const line = (r: readonly string[]) =>
    r
      .map((c, i) => c.padEnd(widths[i] ?? 0))
      .join(" | ")
      .trimEnd();
  const [head, ...body] = all;
  return [line(head ?? []), widths.map((w) => "-".repeat(w)).join("-|-"), ...body.map(line)].join(
    "\n",
  );
}

/** The table as Markdown, for BENCHMARKS.md. */
export function markdownTable(rows: readonly Row[]): string {
  const cell = (text: string) => text.replaceAll("|", "\\|");
  return [
    "| figure | proxy | baseline | delta/ratio | target | |",
    "| --- | --- | --- | --- | --- | --- |",
    ...rows.map(
      (r) =>
        `| ${[r.figure, r.proxy, r.baseline, r.delta, r.target, r.met === undefined ? "" : r.met ? "met" : "**missed**"].map(cell).join(" | ")} |`,
    ),
  ].join("\n");
}

/** The row of a figure that could not be measured. */
export function failedRow(figure: string, error: string): Row {
  return { figure, proxy: `error: ${error.slice(0, 60)}`, baseline: "", delta: "", target: "" };
}
