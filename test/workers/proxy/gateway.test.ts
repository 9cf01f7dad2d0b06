import { exports } from "cloudflare:workers";
import { SignJWT } from "jose";
import { describe, expect, inject, it } from "vitest";
import {
  call,
  foreignRsaKey,
  LEGACY_VERSION,
  message,
  ORIGIN,
  post,
  rpc,
  testKid,
  token,
  toolNames,
} from "./client.ts";

describe("gateway HTTP surface", () => {
  it("answers /healthz", async () => {
    const response = await exports.default.fetch(`${ORIGIN}/healthz`);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({
      status: "ok",
      server: "proxy",
      control: { version: expect.any(Number), checked_ms_ago: expect.any(Number) },
    });
  });

  it("serves RFC 9728 protected resource metadata naming the /mcp resource and its scopes", async () => {
    const response = await exports.default.fetch(`${ORIGIN}/.well-known/oauth-protected-resource`);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({
      resource: `${ORIGIN}/mcp`,
      resource_name: "MCPCP gateway",
      bearer_methods_supported: ["header"],
      scopes_supported: ["list_tools", "call_tools"],
    });
  });

  it("publishes the proxy's public assertion key, and only the public part", async () => {
    const response = await exports.default.fetch(`${ORIGIN}/.well-known/jwks.json`);
    expect(response.status).toBe(200);
    const jwks = (await response.json()) as { keys: Record<string, string>[] };
    const published = JSON.parse(inject("proxyPublicJwks")) as { keys: { kid: string }[] };
    expect(jwks.keys.map((k) => k.kid)).toEqual(published.keys.map((k) => k.kid));
    expect(jwks.keys[0]).toMatchObject({ kty: "OKP", crv: "Ed25519" });
    expect(jwks.keys[0]).not.toHaveProperty("d");
  });

  it("answers an unknown path with 404", async () => {
    expect((await exports.default.fetch(`${ORIGIN}/nope`)).status).toBe(404);
  });
});

describe("authentication", () => {
  const challenge = (error: string) =>
    new RegExp(
      `^Bearer error="${error}", error_description="[^"]+", resource_metadata="${ORIGIN}/.well-known/oauth-protected-resource"$`,
    );

  it("refuses a request without a token with 401 and a challenge pointing at the metadata", async () => {
    const response = await post(rpc("tools/list"));
    expect(response.status).toBe(401);
    expect(response.headers.get("www-authenticate")).toMatch(challenge("invalid_token"));
  });

  it("refuses a token signed by a key outside the JWKS", async () => {
    const privateKey = await foreignRsaKey();
    const forged = await new SignJWT({ scope: "list_tools call_tools" })
      .setProtectedHeader({ alg: "RS256", kid: testKid() })
      .setSubject("agent_name1")
      .setIssuer("https://mcpcp")
      .setAudience("mcpcp-server")
      .setExpirationTime("5m")
      .sign(privateKey);
    const response = await post(rpc("tools/list"), forged);
    expect(response.status).toBe(401);
    expect(response.headers.get("www-authenticate")).toMatch(challenge("invalid_token"));
  });

  it("refuses an expired token and says so", async () => {
    const now = Math.floor(Date.now() / 1000);
    const response = await post(rpc("tools/list"), await token("agent_name1", { exp: now - 120 }));
    expect(response.status).toBe(401);
    expect(response.headers.get("www-authenticate")).toContain(
      'error_description="The access token expired"',
    );
  });

  it("refuses a token in the query string with invalid_request", async () => {
    const response = await exports.default.fetch(
      new Request(`${ORIGIN}/mcp?access_token=${await token("agent_name1")}`, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          accept: "application/json, text/event-stream",
        },
        body: JSON.stringify(rpc("tools/list")),
      }),
    );
    expect(response.status).toBe(401);
    expect(response.headers.get("www-authenticate")).toMatch(challenge("invalid_request"));
  });

  it("needs list_tools to list and call_tools to call, with 403 insufficient_scope", async () => {
    const listOnly = await token("agent_name1", { scope: "list_tools" });
    const refused = await post(
      rpc("tools/call", { name: "mcp1_echo", arguments: { message: "x" } }),
      listOnly,
    );
    expect(refused.status).toBe(403);
    expect(refused.headers.get("www-authenticate")).toContain(
      'error="insufficient_scope", scope="call_tools"',
    );
    expect((await post(rpc("tools/list"), listOnly)).status).toBe(200);

    const callOnly = await token("agent_name1", { scope: "call_tools" });
    const listRefused = await post(rpc("tools/list"), callOnly);
    expect(listRefused.status).toBe(403);
    expect(listRefused.headers.get("www-authenticate")).toContain('scope="list_tools"');
  });

  it("lets a token with either MCP scope initialize, and one with none not even that", async () => {
    const initialize = rpc("initialize", {
      protocolVersion: LEGACY_VERSION,
      capabilities: {},
      clientInfo: { name: "test", version: "1" },
    });
    for (const scope of ["list_tools", "call_tools"]) {
      const response = await post(initialize, await token("agent_name1", { scope }));
      expect(response.status, scope).toBe(200);
      expect((await message(response)).result?.serverInfo.name).toBe("mcpcp");
    }
    for (const scope of ["", "audit_read"]) {
      const response = await post(initialize, await token("agent_name1", { scope }));
      expect(response.status, scope).toBe(403);
      expect(response.headers.get("www-authenticate")).toContain('scope="list_tools"');
    }
  });

  it("needs call_tools to read a resource: a listing token sees names, not contents", async () => {
    const read = rpc("resources/read", { uri: "mcp1+battle://anything" });
    const listing = await post(read, await token("agent_name1", { scope: "list_tools" }));
    expect(listing.status).toBe(403);
    expect(listing.headers.get("www-authenticate")).toContain('scope="call_tools"');
    const door = await exports.default.fetch(
      new Request(`${ORIGIN}/servers/mcp1/mcp`, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          accept: "application/json, text/event-stream",
          authorization: `Bearer ${await token("agent_name1", { scope: "audit_read" })}`,
        },
        body: JSON.stringify(read),
      }),
    );
    expect(door.status).toBe(403);
  });
});

describe("request hygiene", () => {
  it("refuses a browser Origin it does not know with 403", async () => {
    const response = await post(rpc("tools/list"), await token("agent_name1"), {
      origin: "https://evil.example",
    });
    expect(response.status).toBe(403);
  });

  it("accepts its own Origin", async () => {
    const response = await post(rpc("tools/list"), await token("agent_name1"), { origin: ORIGIN });
    expect(response.status).toBe(200);
  });

  it("answers malformed JSON with 400 and a JSON-RPC parse error", async () => {
    const response = await post("{not json", await token("agent_name1"));
    expect(response.status).toBe(400);
    expect((await response.json()) as object).toMatchObject({
      jsonrpc: "2.0",
      error: { code: -32700 },
    });
  });

  it("answers JSON that is not JSON-RPC with 400 and invalid request", async () => {
    const response = await post({ hello: "world" }, await token("agent_name1"));
    expect(response.status).toBe(400);
    expect((await response.json()) as object).toMatchObject({ error: { code: -32600 } });
  });

  it("answers an unknown method with method not found", async () => {
    const reply = await message(await post(rpc("tools/explode"), await token("agent_name1")));
    expect(reply.error?.code).toBe(-32601);
  });

  it("answers a body over the limit with 413", async () => {
    const huge = JSON.stringify(
      rpc("tools/call", { name: "mcp1_echo", arguments: { message: "x".repeat(5 * 1024 * 1024) } }),
    );
    const response = await post(huge, await token("agent_name1"));
    expect(response.status).toBe(413);
  });

  it("answers GET on /mcp with 405: the gateway keeps no server stream", async () => {
    const response = await exports.default.fetch(
      new Request(`${ORIGIN}/mcp`, {
        headers: {
          accept: "text/event-stream",
          authorization: `Bearer ${await token("agent_name1")}`,
        },
      }),
    );
    expect(response.status).toBe(405);
  });
});

describe("policy and routing", () => {
  it("shows agent_name1 mcp1's three tools and mcp3's two, prefixed, in stable order", async () => {
    expect(await toolNames("agent_name1")).toEqual([
      "mcp1_echo",
      "mcp1_update_battle_process",
      "mcp1_report_on_battle_end",
      "mcp3_echo",
      "mcp3_run_python_code",
    ]);
  });

  it("drops a dead backend (mcp2) from agent_name2's list and keeps the live one", async () => {
    expect(await toolNames("agent_name2")).toEqual(["mcp3_echo", "mcp3_run_python_code"]);
  });

  it("shows a narrow grant only its named tool", async () => {
    expect(await toolNames("narrow")).toEqual(["mcp1_echo"]);
  });

  it("shows nothing to an agent with no servers or absent from the policy", async () => {
    expect(await toolNames("nobody")).toEqual([]);
    expect(await toolNames("stranger")).toEqual([]);
  });

  it("routes a call to mcp1 over the service binding and to mcp3 over HTTP", async () => {
    expect((await call("agent_name1", "mcp1_echo", { message: "one" })).result).toMatchObject({
      content: [{ type: "text", text: "Echo: one" }],
    });
    expect((await call("agent_name1", "mcp3_echo", { message: "three" })).result).toMatchObject({
      content: [{ type: "text", text: "Echo: three" }],
    });
  });

  it("answers a hidden tool exactly like a tool that does not exist", async () => {
    const hidden = await call("narrow", "mcp1_update_battle_process", {
      battle_id: "b1",
      message: "m",
      reported_by: "r",
    });
    const missing = await call("narrow", "mcp1_no_such_tool", {});
    const otherServer = await call("agent_name1", "mcp2_echo", { message: "x" });
    expect(hidden.error).toEqual({
      code: -32602,
      message: "Tool mcp1_update_battle_process not found",
    });
    expect(missing.error).toEqual({ code: -32602, message: "Tool mcp1_no_such_tool not found" });
    expect(otherServer.error).toEqual({ code: -32602, message: "Tool mcp2_echo not found" });
  });

  it("answers a tool the backend lacks, under a * grant, like a hidden one", async () => {
    const reply = await call("agent_name1", "mcp1_no_such_tool", {});
    expect(reply.error).toEqual({ code: -32602, message: "Tool mcp1_no_such_tool not found" });
  });

  it("turns a call to a dead backend into a tool error that names it", async () => {
    const reply = await call("agent_name2", "mcp2_echo", { message: "x" });
    expect(reply.result?.isError).toBe(true);
    expect(reply.result?.content[0]?.text).toMatch(/^Server mcp2 is unavailable/);
  });

  it("tells mcp1 which agent called, and the battle records it", async () => {
    const battle = `proxy-test-${crypto.randomUUID()}`;
    const reply = await call("agent_name1", "mcp1_update_battle_process", {
      battle_id: battle,
      message: "green advances",
      reported_by: "scout",
    });
    expect(reply.result?.isError).toBeFalsy();
    expect(JSON.stringify(reply.result?.structuredContent)).toContain('"agent":"agent_name1"');
  });

  it("lets an agent read a battle as an MCP resource through the proxy, under mcp1+", async () => {
    const battle = `resource-${crypto.randomUUID().slice(0, 8)}`;
    await call("agent_name1", "mcp1_update_battle_process", {
      battle_id: battle,
      message: "first contact",
      reported_by: "scout",
    });
    const bearer = await token("agent_name1");
    const templates = await message(await post(rpc("resources/templates/list"), bearer));
    expect(JSON.stringify(templates.result)).toContain('"uriTemplate":"mcp1+battle://{battle_id}"');
    const read = await message(
      await post(rpc("resources/read", { uri: `mcp1+battle://${battle}` }), bearer),
    );
    const contents = (read.result as unknown as { contents: { uri: string; text: string }[] })
      .contents;
    expect(contents[0]?.uri).toBe(`mcp1+battle://${battle}`);
    expect(JSON.parse(contents[0]?.text ?? "{}")).toMatchObject({
      battle: { id: battle, status: "ongoing" },
      events: [{ seq: 1, message: "first contact", reported_by: "scout", agent: "agent_name1" }],
    });
    // agent_name2 holds no mcp1 grant: the same battle does not exist for it.
    const hidden = await message(
      await post(
        rpc("resources/read", { uri: `mcp1+battle://${battle}` }),
        await token("agent_name2"),
      ),
    );
    expect(hidden.error).toEqual({
      code: -32602,
      message: `Resource mcp1+battle://${battle} not found`,
    });
  });
});
