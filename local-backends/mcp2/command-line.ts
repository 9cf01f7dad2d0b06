/**
 * One `docker …` command line → argv, the way a POSIX shell would split its words, but refusing
 * everything a shell would do beyond splitting: operators, redirections, substitutions, globs,
 * variables, comments. Nothing is ever run through a shell; the refusals exist so that what the
 * agent wrote means exactly what runs (a `;` an agent meant as a separator must not silently
 * become a literal argument). Pure: no I/O.
 */
import { parse } from "shell-quote";

export type SplitResult = { ok: true; argv: string[] } | { ok: false; reason: string };

/** Longest command line accepted, in characters. */
export const MAX_COMMAND_LENGTH = 8192;

/** Splits `line` into argv, or says which shell feature it refuses. */
export function splitCommandLine(line: string): SplitResult {
  if (line.length > MAX_COMMAND_LENGTH) {
    return refuse(`the command is longer than ${MAX_COMMAND_LENGTH} characters`);
  }
  // `$` and backticks are refused even quoted: `$(…)`, `${…}` and `…` are what an agent would
  // expect a shell to expand, and nothing here expands them.
  const substitution = /[$`]/.exec(line);
  if (substitution) {
    return refuse(
      `"${substitution[0]}" (variable or command substitution) is not supported: ` +
        "no shell runs your command, so write values out literally",
    );
  }
  // biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point
  const control = /[\u0000-\u0008\u000b-\u001f\u007f]/.exec(line);
  if (control) {
    return refuse(`control character U+${hex(control[0])} in the command`);
  }
  const unquoted = firstUnquoted(line, "\n[");
  if (unquoted === "\n") return refuse("a newline outside quotes (a second command)");
  if (unquoted === "[") return refuse(`"[" outside quotes (a glob pattern); quote it`);

  const tokens = parse(line, (name) => ({ variable: name }));
  const argv: string[] = [];
  for (const token of tokens) {
    if (typeof token === "string") {
      argv.push(token);
      continue;
    }
    // Anything shell-quote does not return as a plain word is shell syntax.
    if ("comment" in token) return refuse(`"#" outside quotes (a comment); quote it`);
    if ("op" in token && token.op === "glob") {
      return refuse(`"${token.pattern}" is a glob pattern; quote it to pass it literally`);
    }
    if ("op" in token) {
      return refuse(
        `the shell operator "${token.op}" is not supported: run_docker runs one docker command, ` +
          "without pipes, redirections, command lists or background jobs",
      );
    }
    return refuse("variable expansion is not supported");
  }
  if (argv.length === 0) return refuse("the command is empty");
  return { ok: true, argv };
}

/**
 * The first of `chars` that appears outside single or double quotes and is not backslash-escaped,
 * following POSIX quoting (XCU 2.2): `'…'` is literal, `"…"` honours `\` before `$ \` " \\` and
 * newline, and a bare `\` escapes the next character.
 */
function firstUnquoted(line: string, chars: string): string | undefined {
  let quote: "'" | '"' | undefined;
  for (let i = 0; i < line.length; i++) {
    const c = line[i] as string;
    if (quote === "'") {
      if (c === "'") quote = undefined;
    } else if (quote === '"') {
      if (c === "\\") i++;
      else if (c === '"') quote = undefined;
    } else if (c === "\\") {
      i++;
    } else if (c === "'" || c === '"') {
      quote = c;
    } else if (chars.includes(c)) {
      return c;
    }
  }
  return undefined;
}

function refuse(reason: string): SplitResult {
  return { ok: false, reason };
}

function hex(char: string): string {
  return (char.codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, "0");
}
