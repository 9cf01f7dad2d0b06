/**
 * The live feed of one battle: a WebSocket to /api/battles/:id/live that reconnects with backoff
 * until the battle ends or the token expires. The token travels as a subprotocol entry because a
 * browser cannot set an Authorization header on a WebSocket (and a URL would end up in logs).
 */
import {
  CLOSE_BATTLE_ENDED,
  CLOSE_TOKEN_EXPIRED,
  LIVE_PROTOCOL,
  LIVE_TOKEN_PREFIX,
  type LiveMessage,
} from "../../../durable-objects/battle-types.ts";

export type LiveState = "connecting" | "live" | "reconnecting" | "ended" | "expired";

export interface LiveHandlers {
  message(message: LiveMessage): void;
  state(state: LiveState): void;
}

const PING_EVERY_MS = 30_000;
const MAX_BACKOFF_MS = 15_000;

/** Opens the feed and keeps it open; returns a function that closes it for good. */
export function openLive(battleId: string, token: string, on: LiveHandlers): () => void {
  let socket: WebSocket | null = null;
  let stopped = false;
  let failures = 0;
  let ping: number | undefined;
  let retry: number | undefined;

  const url = new URL(`/api/battles/${encodeURIComponent(battleId)}/live`, location.href);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";

  const connect = () => {
    on.state(failures === 0 ? "connecting" : "reconnecting");
    const ws = new WebSocket(url, [LIVE_PROTOCOL, `${LIVE_TOKEN_PREFIX}${token}`]);
    socket = ws;
    ws.addEventListener("open", () => {
      failures = 0;
      on.state("live");
      // Answered by the Durable Object's runtime without waking it; keeps proxies from idling us out.
      ping = window.setInterval(
        () => ws.readyState === WebSocket.OPEN && ws.send("ping"),
        PING_EVERY_MS,
      );
    });
    ws.addEventListener("message", (event) => {
      if (typeof event.data !== "string" || event.data === "pong") return;
      on.message(JSON.parse(event.data) as LiveMessage);
    });
    ws.addEventListener("close", (event) => {
      window.clearInterval(ping);
      if (stopped) return;
      if (event.code === CLOSE_BATTLE_ENDED) return on.state("ended");
      if (event.code === CLOSE_TOKEN_EXPIRED) return on.state("expired");
      failures++;
      on.state("reconnecting");
      retry = window.setTimeout(connect, Math.min(MAX_BACKOFF_MS, 500 * 2 ** failures));
    });
  };
  connect();

  return () => {
    stopped = true;
    window.clearTimeout(retry);
    window.clearInterval(ping);
    socket?.close(1000, "page closed");
  };
}
