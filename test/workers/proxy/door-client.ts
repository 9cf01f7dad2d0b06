/**
 * How the door tests reach `/servers/<id>/mcp`: the v1 SDK client (what most agents run) over the
 * Worker under test, closed after each test, and the text of a tool result.
 */

import { exports } from "cloudflare:workers";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import type { ClientCapabilities } from "@modelcontextprotocol/sdk/types.js";
import { afterEach } from "vitest";
import { ORIGIN, token } from "./client.ts";

const open: { close: () => Promise<void> }[] = [];
afterEach(async () => {
  await Promise.allSettled(open.splice(0).map((client) => client.close()));
});

/** Closes `client` after the test that made it. */
export function closeAfterTest(client: { close: () => Promise<void> }): void {
  open.push(client);
}

/** A fetch into the Worker under test. */
export const gatewayFetch = (url: string | URL, init?: RequestInit) =>
  exports.default.fetch(new Request(url, init));

export const doorUrl = (server: string) => new URL(`${ORIGIN}/servers/${server}/mcp`);

/** A v1 SDK client (2025-era) for `agent` at the door of `server`, `setup` run before connecting. */
export async function connectDoor(
  agent: string,
  server: string,
  capabilities: ClientCapabilities = {},
  setup: (client: Client) => void = () => {},
): Promise<Client> {
  const bearer = await token(agent);
  const transport = new StreamableHTTPClientTransport(doorUrl(server), {
    fetch: gatewayFetch,
    requestInit: { headers: { authorization: `Bearer ${bearer}` } },
  });
  const client = new Client({ name: "door-test", version: "1.0.0" }, { capabilities });
  setup(client);
  await client.connect(transport);
  closeAfterTest(client);
  return client;
}

/** The text of a tool result's first content block. */
export function text(result: unknown): string {
  const [first] = ((result as { content?: unknown }).content ?? []) as { text?: string }[];
  return first?.text ?? "";
}
