/**
 * Configuration documents (the policy, JWKS, backend lists) arrive as JSON strings in bindings.
 * One way to read them: parse, validate with a zod schema, and on failure say which variable and
 * where in it, so the operator can fix it without reading code.
 */
import type { z } from "zod";

/** A value, or the reason there is none. */
export type ParseResult<T> = { ok: true; value: T } | { ok: false; error: string };

/** Parses `json` as the document in variable `name` and checks it against `schema`. */
export function parseDocument<S extends z.ZodType>(
  name: string,
  json: string,
  schema: S,
): ParseResult<z.infer<S>> {
  const raw = parseJson(name, json);
  if (!raw.ok) return raw;
  return validated(name, raw.value, schema);
}

/** Parses `json` as the document in variable `name`, not yet checked. */
export function parseJson(name: string, json: string): ParseResult<unknown> {
  try {
    return { ok: true, value: JSON.parse(json) };
  } catch (e) {
    return { ok: false, error: `${name} is not valid JSON: ${(e as Error).message}` };
  }
}

/** Checks `raw`, the document in variable `name`, against `schema`. */
export function validated<S extends z.ZodType>(
  name: string,
  raw: unknown,
  schema: S,
): ParseResult<z.infer<S>> {
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return {
      ok: false,
      error: `${name} is invalid at ${issue?.path.join(".") || "(root)"}: ${issue?.message}`,
    };
  }
  return { ok: true, value: parsed.data };
}
