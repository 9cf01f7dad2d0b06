/**
 * How a cost grows with the size it is measured at: the exponent b of cost ∝ size^b between two
 * sizes, and its name. b = 1 + ln(per-item ratio) / ln(size ratio), so the per-item cost staying
 * the same is linear, and a total that does not move is flat. Used by bench/scale.ts.
 */

export type GrowthLabel = "flat" | "sub-linear" | "linear" | "worse than linear";

export interface Growth {
  /** b in cost ∝ size^b, from the smallest to the largest size measured. */
  exponent: number;
  /**
   * b between the two largest sizes: what one more item costs once a fixed part (a floor every
   * request pays) no longer dominates. The label is this step's.
   */
  lastExponent: number;
  label: GrowthLabel;
  /** Per-item cost at the largest size over that at the smallest (cost / size each). */
  perItemRatio: number;
}

// Bands around 0 and 1 wide enough for this machine's run-to-run noise (10–30 %, BENCHMARKS.md):
// over a 100× size range, 30 % more or less moves b by about ±0.06; over 10×, by ±0.11.
const FLAT_BELOW = 0.15;
const LINEAR_FROM = 0.85;
const LINEAR_TO = 1.15;

/** The name of exponent `b`. */
export function labelOf(exponent: number): GrowthLabel {
  if (exponent < FLAT_BELOW) return "flat";
  if (exponent < LINEAR_FROM) return "sub-linear";
  if (exponent <= LINEAR_TO) return "linear";
  return "worse than linear";
}

/**
 * The growth of `cost` over `points` (any order, at least two distinct positive sizes and positive
 * costs): its exponent from the smallest size to the largest and over the last step, named by the
 * last step; undefined when it cannot be told.
 */
export function growthOf(points: readonly { size: number; cost: number }[]): Growth | undefined {
  const usable = points.filter(
    (p) => Number.isFinite(p.size) && Number.isFinite(p.cost) && p.size > 0 && p.cost > 0,
  );
  if (usable.length < 2) return undefined;
  const sorted = [...usable].sort((a, b) => a.size - b.size);
  const first = sorted[0] as { size: number; cost: number };
  const last = sorted[sorted.length - 1] as { size: number; cost: number };
  if (last.size === first.size) return undefined;
  const exponentOf = (a: { size: number; cost: number }, b: { size: number; cost: number }) =>
    Math.log(b.cost / a.cost) / Math.log(b.size / a.size);
  const exponent = exponentOf(first, last);
  const before = sorted.filter((p) => p.size < last.size).at(-1) ?? first;
  const lastExponent = exponentOf(before, last);
  return {
    exponent,
    lastExponent,
    label: labelOf(lastExponent),
    perItemRatio: last.cost / last.size / (first.cost / first.size),
  };
}

/** "linear (last step b = 1.02; all b = 0.95)" for a table, or "n/a". */
export function describeGrowth(growth: Growth | undefined): string {
  if (!growth) return "n/a";
  const b = (value: number) => (Math.abs(value) < 0.005 ? "0.00" : value.toFixed(2));
  return `${growth.label} (last step b = ${b(growth.lastExponent)}; all b = ${b(growth.exponent)})`;
}
