/**
 * `--format` for the answers mcp2 gives itself (`docker info`, `docker version`, `views.ts`): the
 * part of Go's text/template that agents use on them, evaluated over mcp2's view and nothing else.
 * Text, `{{.Field.Sub}}`, `{{json .Field}}`, `{{.}}`, and the CLI's `json` shorthand; anything
 * else (functions, pipelines, `range`, `index`) is refused with what is accepted, and a field the
 * view does not have is refused naming the fields it has, before anything runs. Pure: no I/O.
 */

/** A view's fields, as templates name them (Docker's Go field names), in Docker's order. */
export interface Shape {
  readonly [field: string]: Shape | true;
}

/** A view's values, shaped by its `Shape`. */
export interface ViewValue {
  readonly [field: string]: ViewValue | string | number | boolean;
}

type Part = { text: string } | { path: string[]; json: boolean };

/** A checked `--format` value: the CLI's `json`, or text and actions. */
export type Template = { kind: "json" } | { kind: "actions"; parts: Part[] };

export type TemplateResult = { ok: true; template: Template } | { ok: false; reason: string };

// `{{` `json`? `.Path`? `}}`, spaces allowed inside the braces as Go allows them.
const ACTION = /^\s*(?:(json)\s+)?\.((?:[A-Za-z_][A-Za-z0-9_]*)(?:\.[A-Za-z_][A-Za-z0-9_]*)*)?\s*$/;

// Docker's Go types carry JSON names; of the fields these views show only this one differs.
const JSON_NAMES: Record<string, string> = { APIVersion: "ApiVersion" };

/** Checks `source` against `shape`; `what` names the command in refusals (`docker info`). */
export function parseTemplate(source: string, shape: Shape, what: string): TemplateResult {
  if (source.trim() === "json") return { ok: true, template: { kind: "json" } };
  const accepted =
    `mcp2 answers ${what} itself, from what concerns you, and reads only text, {{.Field}}, ` +
    "{{json .Field}}, {{.}} and json in its --format";
  const parts: Part[] = [];
  let rest = source;
  while (rest !== "") {
    const open = rest.indexOf("{{");
    if (open === -1) {
      parts.push({ text: rest });
      break;
    }
    if (open > 0) parts.push({ text: rest.slice(0, open) });
    const close = rest.indexOf("}}", open + 2);
    if (close === -1) return refuse(`--format: "{{" is never closed. ${accepted}`);
    const body = rest.slice(open + 2, close);
    const action = ACTION.exec(body);
    if (!action) return refuse(`--format: {{${body}}} is not understood here. ${accepted}`);
    const path = action[2] ? action[2].split(".") : [];
    const missing = missingField(path, shape);
    if (missing !== undefined) return refuse(`--format: ${what} here has ${missing}. ${accepted}`);
    parts.push({ path, json: action[1] === "json" });
    rest = rest.slice(close + 2);
  }
  return { ok: true, template: { kind: "actions", parts } };
}

/** `view` through `template`, with the newline the CLI ends its output with. */
export function renderTemplate(template: Template, view: ViewValue): string {
  if (template.kind === "json") return `${toJson(view)}\n`;
  const out = template.parts.map((part) => {
    if ("text" in part) return part.text;
    let value: ViewValue[string] = view;
    for (const field of part.path) value = (value as ViewValue)[field] as ViewValue[string];
    return part.json ? toJson(value) : goValue(value);
  });
  return `${out.join("")}\n`;
}

/** Why `path` is not in `shape` ("no field .Server.KernelVersion; …"), or undefined when it is. */
function missingField(path: string[], shape: Shape): string | undefined {
  let at: Shape | true = shape;
  for (let i = 0; i < path.length; i++) {
    const field = path[i] as string;
    const where = path
      .slice(0, i)
      .map((f) => `.${f}`)
      .join("");
    if (at === true || !Object.hasOwn(at, field)) {
      const fields = at === true ? "none" : Object.keys(at).join(", ");
      return `no field ${where}.${field} (the fields of ${where || "."}: ${fields})`;
    }
    at = at[field] as Shape | true;
  }
  return undefined;
}

/** JSON as Docker's `json` function prints it: compact, with the Go types' JSON names. */
function toJson(value: ViewValue[string]): string {
  if (typeof value !== "object") return JSON.stringify(value);
  const fields = Object.entries(value).map(
    ([name, field]) => `${JSON.stringify(JSON_NAMES[name] ?? name)}:${toJson(field)}`,
  );
  return `{${fields.join(",")}}`;
}

/** A value as Go's `%v` prints it: a struct as `{field field …}`. */
function goValue(value: ViewValue[string]): string {
  if (typeof value !== "object") return String(value);
  return `{${Object.values(value).map(goValue).join(" ")}}`;
}

function refuse(reason: string): { ok: false; reason: string } {
  return { ok: false, reason };
}
