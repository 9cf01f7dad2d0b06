/**
 * The gateway's log: one JSON object per line, `{ event, ...fields }`, on the console workerd
 * forwards (`wrangler tail`, `npm start`'s log file). `error` for what someone must look at,
 * `warn` for a backend or client misbehaving, `info` for the audit trail.
 */
export function log(
  level: "info" | "warn" | "error",
  event: string,
  fields: Record<string, unknown>,
): void {
  const line = JSON.stringify({ event, ...fields });
  if (level === "error") console.error(line);
  else if (level === "warn") console.warn(line);
  else console.log(line);
}
