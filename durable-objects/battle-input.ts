/**
 * What a battle report may contain (docs/design.md, "Tools" and "Battle state"), as zod schemas and
 * plain validators with no I/O. The mcp1 tools advertise these schemas, so a model sees the limits
 * in `tools/list`; the BattleSession checks them again because its RPC methods are a boundary of
 * their own.
 */
import { z } from "zod";
import { BATTLE_ID_PATTERN, MAX_CLAIMED_BATTLES } from "../common/battle-claims.ts";
import type { Winner } from "./battle-types.ts";

/** Input limits. Lengths count UTF-16 code units (`String.length`); sizes count UTF-8 bytes. */
export const LIMITS = {
  battleIdPattern: BATTLE_ID_PATTERN,
  reportIdPattern: /^[A-Za-z0-9_.:-]{1,128}$/,
  messageChars: 4000,
  reportedByChars: 200,
  agentChars: 200,
  markdownBytes: 64 * 1024,
  detailJsonBytes: 16 * 1024,
} as const;

export const WINNERS = ["green", "blue", "red", "draw"] as const satisfies readonly Winner[];
export type { Winner };

const utf8 = new TextEncoder();

function utf8Bytes(text: string): number {
  return utf8.encode(text).byteLength;
}

const battleId = z
  .string()
  .regex(LIMITS.battleIdPattern, "must be 1 to 128 characters from A-Z a-z 0-9 _ . : -")
  .describe(
    "Identifies the battle; every report with the same battle_id goes to the same battle. " +
      "1-128 characters of letters, digits, '_', '.', ':' or '-'.",
  );

const message = z
  .string()
  .min(1, "must not be empty")
  .max(LIMITS.messageChars, `must be at most ${LIMITS.messageChars} characters`)
  .describe("What happened, in a sentence or a short paragraph.");

const reportedBy = z
  .string()
  .min(1, "must not be empty")
  .max(LIMITS.reportedByChars, `must be at most ${LIMITS.reportedByChars} characters`)
  .describe("Who observed or reports this: a unit, a player or an agent name.");

const detail = z
  .record(z.string(), z.unknown())
  .refine((value) => utf8Bytes(JSON.stringify(value)) <= LIMITS.detailJsonBytes, {
    message: `must be at most ${LIMITS.detailJsonBytes} bytes as JSON`,
  })
  .optional()
  .describe("Optional structured data about the event (a JSON object), e.g. positions or scores.");

const markdownContent = z
  .string()
  .min(1, "must not be empty when given")
  .refine((value) => utf8Bytes(value) <= LIMITS.markdownBytes, {
    message: `must be at most ${LIMITS.markdownBytes} bytes (UTF-8)`,
  })
  .optional()
  .describe("Optional longer write-up in Markdown, e.g. a narrative or a table.");

const reportId = z
  .string()
  .regex(LIMITS.reportIdPattern, "must be 1 to 128 characters from A-Z a-z 0-9 _ . : -")
  .optional()
  .describe(
    "Optional id you choose for this report, unique within the battle, so that a retry is safe: " +
      "sending the same report_id again returns the event already stored instead of adding " +
      "another; the same report_id with a different report is refused (report_id_reused). " +
      "1-128 characters of letters, digits, '_', '.', ':' or '-'.",
  );

/** Arguments of the `update_battle_process` tool. */
export const progressArgsSchema = z.object({
  battle_id: battleId,
  message,
  reported_by: reportedBy,
  detail,
  markdown_content: markdownContent,
  report_id: reportId,
});

/** Arguments of the `report_on_battle_end` tool. */
export const endArgsSchema = progressArgsSchema.extend({
  winner: z.enum(WINNERS).describe("Who won: 'green', 'blue' or 'red', or 'draw' if nobody did."),
});

// The calling agent comes from the proxy (its assertion's `sub`, workers/mcp1/src/caller.ts), not
// from the model. mcp1 always knows it; null only in events stored before mcp1 required it.
const agent = z.string().min(1).max(LIMITS.agentChars).nullable();

// The agent token's battle claims, also from the proxy's assertion (common/battle-claims.ts);
// absent for an agent whose token binds it to no battles.
const access = z
  .object({
    battles: z.array(z.string()).max(MAX_CLAIMED_BATTLES).readonly().optional(),
    battle_role: z.string().max(64).optional(),
  })
  .optional();

const progressInputSchema = progressArgsSchema.extend({ agent, access });
const endInputSchema = endArgsSchema.extend({ agent, access });

/** What BattleSession.appendProgress takes: the tool arguments, the calling agent and its claims. */
export type ProgressInput = z.infer<typeof progressInputSchema>;
/** What BattleSession.reportEnd takes: the tool arguments, the calling agent and its claims. */
export type EndInput = z.infer<typeof endInputSchema>;

export type Validated<T> = { ok: true; value: T } | { ok: false; message: string };

/** Checks an appendProgress input against the limits. */
export function validateProgressInput(raw: unknown): Validated<ProgressInput> {
  return validate(progressInputSchema, raw);
}

/** Checks a reportEnd input against the limits. */
export function validateEndInput(raw: unknown): Validated<EndInput> {
  return validate(endInputSchema, raw);
}

function validate<T>(schema: z.ZodType<T>, raw: unknown): Validated<T> {
  const parsed = schema.safeParse(raw);
  if (parsed.success) return { ok: true, value: parsed.data };
  return { ok: false, message: formatIssues(parsed.error.issues) };
}

// One line naming each offending field, in the shape the MCP SDK uses for bad tool arguments, so
// a refusal reads the same whether the SDK or the Durable Object caught it.
function formatIssues(issues: readonly z.core.$ZodIssue[]): string {
  return issues
    .map((issue) =>
      issue.path.length > 0
        ? `${issue.path.map(String).join(".")}: ${issue.message}`
        : issue.message,
    )
    .join(", ");
}
