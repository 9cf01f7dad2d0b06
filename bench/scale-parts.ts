/** The scale section's parts (bench/scale.ts), named here so the plan can check them cheaply. */
export const PARTS = ["backends", "policy", "battle", "audit"] as const;
export type Part = (typeof PARTS)[number];
