/** The benchmark's growth classification (bench/growth.ts): exponents and their names. */
import { describe, expect, it } from "vitest";
import { describeGrowth, growthOf, labelOf } from "../../bench/growth.ts";

describe("growthOf", () => {
  it("calls a cost that does not move with size flat", () => {
    const growth = growthOf([
      { size: 1, cost: 2 },
      { size: 50, cost: 2.1 },
    ]);
    expect(growth?.label).toBe("flat");
    expect(growth?.exponent).toBeCloseTo(Math.log(1.05) / Math.log(50), 6);
    expect(growth?.perItemRatio).toBeCloseTo(2.1 / 50 / 2, 6);
  });

  it("calls a constant per-item cost linear, whatever the order of the points", () => {
    const growth = growthOf([
      { size: 100_000, cost: 1000 },
      { size: 10, cost: 0.1 },
      { size: 1000, cost: 10 },
    ]);
    expect(growth?.label).toBe("linear");
    expect(growth?.exponent).toBeCloseTo(1, 9);
    expect(growth?.perItemRatio).toBeCloseTo(1, 9);
  });

  it("names the growth by its last step, where a fixed floor no longer hides it", () => {
    // 20 ms paid once, then 25 µs an item: sub-linear overall, linear at the end.
    const cost = (size: number) => 20 + 0.025 * size;
    const growth = growthOf([10, 1000, 100_000].map((size) => ({ size, cost: cost(size) })));
    expect(growth?.exponent).toBeLessThan(0.85);
    expect(growth?.lastExponent).toBeGreaterThan(0.85);
    expect(growth?.label).toBe("linear");
  });

  it("calls a quadratic cost worse than linear, and a square-root one sub-linear", () => {
    const square = growthOf([
      { size: 10, cost: 100 },
      { size: 1000, cost: 1_000_000 },
    ]);
    expect(square?.label).toBe("worse than linear");
    expect(square?.exponent).toBeCloseTo(2, 9);
    expect(square?.perItemRatio).toBeCloseTo(100, 6);
    expect(
      growthOf([
        { size: 100, cost: 10 },
        { size: 10_000, cost: 100 },
      ])?.label,
    ).toBe("sub-linear");
  });

  it("tells nothing from one size, equal sizes, or unusable numbers", () => {
    expect(growthOf([{ size: 10, cost: 1 }])).toBeUndefined();
    expect(
      growthOf([
        { size: 10, cost: 1 },
        { size: 10, cost: 2 },
      ]),
    ).toBeUndefined();
    expect(
      growthOf([
        { size: 10, cost: Number.NaN },
        { size: 100, cost: 0 },
        { size: 1000, cost: 5 },
      ]),
    ).toBeUndefined();
    expect(describeGrowth(undefined)).toBe("n/a");
  });
});

describe("labelOf", () => {
  it("puts the band edges where the noise allows", () => {
    expect(labelOf(-0.3)).toBe("flat");
    expect(labelOf(0.14)).toBe("flat");
    expect(labelOf(0.15)).toBe("sub-linear");
    expect(labelOf(0.85)).toBe("linear");
    expect(labelOf(1.15)).toBe("linear");
    expect(labelOf(1.16)).toBe("worse than linear");
  });

  it("describes a growth with its exponent and per-item ratio", () => {
    const text = describeGrowth(
      growthOf([
        { size: 1, cost: 1 },
        { size: 10, cost: 10 },
      ]),
    );
    expect(text).toBe("linear (last step b = 1.00; all b = 1.00)");
  });
});
