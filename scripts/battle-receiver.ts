/**
 * `npm run battle-receiver -- [--port 9100] [--jwks <url>] [--audience <url>]`: a stand-in for the
 * battle platform's backend, for demos and the tests. It takes mcp1's deliveries at
 * `POST /battles/<id>`, verifies each signature against the published JWKS
 * (`common/battle-webhook.ts`, `verifyDelivery`: plain jose), de-duplicates by Idempotency-Key,
 * and prints one line per delivery. Point mcp1 at it with `BATTLE_WEBHOOK_URL=http://127.0.0.1:9100
 * npm start`.
 *
 * Tests drive it in code (`startBattleReceiver`) and switch how it behaves: `ok` stores and
 * answers 200 (a repeat of a stored key too, marked duplicate), `fail` answers 500 and stores
 * nothing, `hang` stores the event but never answers, as a platform that crashed before its reply.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { parseArgs } from "node:util";
import { createRemoteJWKSet } from "jose";
import {
  IDEMPOTENCY_HEADER,
  SIGNATURE_HEADER,
  verifyDelivery,
  WEBHOOK_JWKS_PATH,
} from "../common/battle-webhook.ts";
import { runMain } from "../keys/cli.ts";

export type ReceiverMode = "ok" | "fail" | "hang";

/** One delivery the receiver believed, first time for its key. */
export interface Received {
  battleId: string;
  key: string;
  seq: number;
  body: { battle_id: string; event: { seq: number; message: string }; winner?: string };
  /** The body as it arrived, and its signature: what a platform would keep as proof. */
  rawBody: string;
  signature: string;
}

export interface BattleReceiver {
  /** Its base URL: what BATTLE_WEBHOOK_URL should be. */
  url: string;
  mode: ReceiverMode;
  /** Stored deliveries, first arrival of each key, in arrival order. */
  received: Received[];
  /** Every request, in arrival order: its key, what was answered (null: left hanging). */
  attempts: { key: string | null; status: number | null }[];
  /** Requests whose signature did not verify, with why. */
  rejected: string[];
  /** Requests with a key already stored. */
  duplicates: number;
  /** The seqs stored for `battleId`, in arrival order. */
  seqs(battleId: string): number[];
  close(): Promise<void>;
}

export interface ReceiverOptions {
  port?: number;
  host?: string;
  /** Where mcp1's public keys are (the proxy's or mcp1's /.well-known/battle-webhook-jwks.json). */
  jwksUrl: string;
  /** The BATTLE_WEBHOOK_URL mcp1 signs for; defaults to this receiver's own URL. */
  audience?: string;
  log?: (line: string) => void;
}

/** Starts a receiver; resolves once it listens. */
export async function startBattleReceiver(options: ReceiverOptions): Promise<BattleReceiver> {
  // A short cooldown: in tests mcp1 may start after the receiver, so the first fetch can fail.
  const keys = createRemoteJWKSet(new URL(options.jwksUrl), { cooldownDuration: 1000 });
  const stored = new Map<string, Received>();
  const sockets = new Set<Socket>();
  const log = options.log ?? (() => {});
  let audience = options.audience ?? "";

  const receiver: BattleReceiver = {
    url: "",
    mode: "ok",
    received: [],
    attempts: [],
    rejected: [],
    duplicates: 0,
    seqs: (battleId) => receiver.received.filter((r) => r.battleId === battleId).map((r) => r.seq),
    close: () =>
      new Promise((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };

  const answer = (
    response: ServerResponse,
    key: string | null,
    status: number,
    body: object,
  ): void => {
    receiver.attempts.push({ key, status });
    response.writeHead(status, { "content-type": "application/json" });
    response.end(JSON.stringify(body));
  };

  const handle = async (request: IncomingMessage, response: ServerResponse) => {
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks);
    const match = /^\/battles\/([^/?]+)$/.exec(request.url ?? "");
    const key = request.headers[IDEMPOTENCY_HEADER.toLowerCase()];
    const idempotencyKey = typeof key === "string" ? key : null;
    if (request.method !== "POST" || !match) {
      return answer(response, idempotencyKey, 404, { error: "not_found" });
    }
    const battleId = decodeURIComponent(match[1] as string);
    if (receiver.mode === "fail") {
      return answer(response, idempotencyKey, 500, { error: "receiver is failing (test)" });
    }
    const signature = request.headers[SIGNATURE_HEADER.toLowerCase()];
    const check = await verifyDelivery({
      body: new Uint8Array(body),
      signature: typeof signature === "string" ? signature : null,
      idempotencyKey,
      battleId,
      audience,
      keys,
    });
    if (!check.ok) {
      receiver.rejected.push(check.reason);
      log(`rejected ${idempotencyKey ?? "(no key)"}: ${check.reason}`);
      return answer(response, idempotencyKey, 401, {
        error: "bad_signature",
        reason: check.reason,
      });
    }
    const parsed = JSON.parse(body.toString("utf8")) as Received["body"];
    const duplicate = stored.has(check.idempotencyKey);
    if (duplicate) {
      receiver.duplicates++;
    } else {
      const entry: Received = {
        battleId,
        key: check.idempotencyKey,
        seq: parsed.event.seq,
        body: parsed,
        rawBody: body.toString("utf8"),
        signature: signature as string,
      };
      stored.set(check.idempotencyKey, entry);
      receiver.received.push(entry);
    }
    log(
      `${duplicate ? "duplicate" : "delivered"} ${check.idempotencyKey}: ${parsed.event.message}` +
        (parsed.winner ? ` (winner ${parsed.winner})` : ""),
    );
    if (receiver.mode === "hang") {
      // Stored, but the answer never comes: the sender times out and must try again.
      receiver.attempts.push({ key: idempotencyKey, status: null });
      return;
    }
    answer(response, idempotencyKey, 200, { ok: true, duplicate });
  };

  const server = createServer((request, response) => {
    handle(request, response).catch((error: unknown) => {
      answer(response, null, 500, { error: String(error) });
    });
  });
  server.on("connection", (socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) =>
    server.listen(options.port ?? 0, options.host ?? "127.0.0.1", resolve),
  );
  const { port } = server.address() as AddressInfo;
  receiver.url = `http://${options.host ?? "127.0.0.1"}:${port}`;
  audience ||= receiver.url;
  return receiver;
}

const USAGE = `usage: npm run battle-receiver -- [--port 9100] [--jwks <url>] [--audience <url>]
  --port      where to listen on 127.0.0.1 (default 9100)
  --jwks      mcp1's public keys (default http://127.0.0.1:9003${WEBHOOK_JWKS_PATH}, via the proxy)
  --audience  the BATTLE_WEBHOOK_URL mcp1 was given (default http://127.0.0.1:<port>)`;

async function main(args: string[]): Promise<number> {
  let values: { port?: string; jwks?: string; audience?: string; help?: boolean };
  try {
    ({ values } = parseArgs({
      args,
      options: {
        port: { type: "string" },
        jwks: { type: "string" },
        audience: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    }));
  } catch (error) {
    console.error(`battle-receiver: ${(error as Error).message}\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const port = Number(values.port ?? 9100);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    console.error(`battle-receiver: --port must be a port number\n${USAGE}`);
    return 2;
  }
  const receiver = await startBattleReceiver({
    port,
    jwksUrl: values.jwks ?? `http://127.0.0.1:9003${WEBHOOK_JWKS_PATH}`,
    ...(values.audience ? { audience: values.audience } : {}),
    log: (line) => console.log(`${new Date().toISOString()} ${line}`),
  });
  console.log(`battle receiver at ${receiver.url}: BATTLE_WEBHOOK_URL=${receiver.url} npm start`);
  await new Promise<void>((resolve) => process.once("SIGINT", resolve));
  await receiver.close();
  return 0;
}

if (import.meta.main) runMain("battle-receiver", main);
