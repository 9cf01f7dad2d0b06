/**
 * The inspection JSON API: who may read it (a token with inspect_battles, checked against the same
 * keys as agent tokens), and what it answers (the list from the index, one battle from its
 * Durable Object, incremental reads with `after`).
 */
import { exportJWK, generateKeyPair, SignJWT } from "jose";
import { describe, expect, it } from "vitest";
import type { BattleState } from "../../../durable-objects/battle-types.ts";
import { end, get, getJson, indexed, inspectToken, report, session, uniqueId } from "./helpers.ts";

const PATHS = ["/api/battles", "/api/battles/some-battle", "/api/battles/some-battle?after=3"];

function challenge(response: Response): string {
  return response.headers.get("WWW-Authenticate") ?? "";
}

describe("inspection needs a token with the inspect_battles scope", () => {
  it.each(PATHS)("answers %s without a token with 401 invalid_token", async (path) => {
    const response = await get(path);
    expect(response.status).toBe(401);
    expect(challenge(response)).toBe('Bearer realm="mcpcp-inspect", error="invalid_token"');
    expect(await response.json()).toMatchObject({ error: "invalid_token" });
  });

  it("answers an agent token without the scope with 403 insufficient_scope", async () => {
    const agentToken = await inspectToken({ sub: "agent_name1", scope: "list_tools call_tools" });
    const response = await get("/api/battles", agentToken);
    expect(response.status).toBe(403);
    expect(challenge(response)).toBe(
      'Bearer realm="mcpcp-inspect", error="insufficient_scope", scope="inspect_battles"',
    );
  });

  it("accepts the scope among others", async () => {
    const token = await inspectToken({ scope: "list_tools inspect_battles" });
    expect((await get("/api/battles", token)).status).toBe(200);
  });

  it.each([
    ["expired beyond the 60 s skew", { exp: Math.floor(Date.now() / 1000) - 120 }],
    ["another issuer", { iss: "https://elsewhere" }],
    ["another audience", { aud: "someone-else" }],
    ["no sub", { sub: undefined }],
    ["issued in the future", { iat: Math.floor(Date.now() / 1000) + 600 }],
  ])("refuses a token with %s with 401", async (_name, claims) => {
    const response = await get("/api/battles", await inspectToken(claims));
    expect(response.status).toBe(401);
    expect(challenge(response)).toContain('error="invalid_token"');
  });

  it("refuses a token signed by a key outside AGENT_JWKS, even with a known kid", async () => {
    const { privateKey } = await generateKeyPair("RS256", { extractable: true });
    const good = await inspectToken();
    const kid = JSON.parse(atob(good.split(".")[0] ?? "")).kid;
    const forged = await new SignJWT({ scope: "inspect_battles" })
      .setProtectedHeader({ alg: "RS256", kid })
      .setSubject("inspector")
      .setIssuer("https://mcpcp")
      .setAudience("mcpcp-server")
      .setExpirationTime("5m")
      .sign(privateKey);
    expect((await get("/api/battles", forged)).status).toBe(401);
  });

  it("refuses alg none and an HMAC keyed with the public key", async () => {
    const payload = btoa(
      JSON.stringify({
        sub: "inspector",
        iss: "https://mcpcp",
        aud: "mcpcp-server",
        exp: Math.floor(Date.now() / 1000) + 300,
        scope: "inspect_battles",
      }),
    ).replace(/=+$/, "");
    const none = `${btoa(JSON.stringify({ alg: "none" })).replace(/=+$/, "")}.${payload}.`;
    expect((await get("/api/battles", none)).status).toBe(401);

    const { publicKey } = await generateKeyPair("RS256", { extractable: true });
    const secret = new TextEncoder().encode(JSON.stringify(await exportJWK(publicKey)));
    const hs256 = await new SignJWT({ scope: "inspect_battles" })
      .setProtectedHeader({ alg: "HS256" })
      .setSubject("inspector")
      .setIssuer("https://mcpcp")
      .setAudience("mcpcp-server")
      .setExpirationTime("5m")
      .sign(secret);
    expect((await get("/api/battles", hs256)).status).toBe(401);
  });

  it("refuses a token in the query string and a malformed header with invalid_request", async () => {
    const token = await inspectToken();
    const inQuery = await get(`/api/battles?access_token=${token}`);
    expect(inQuery.status).toBe(401);
    expect(challenge(inQuery)).toContain('error="invalid_request"');
    const basic = await get("/api/battles", undefined, { Authorization: `Basic ${token}` });
    expect(challenge(basic)).toContain('error="invalid_request"');
  });

  it("serves the page itself without a token: it holds no data, and forbids inline script", async () => {
    for (const path of ["/battles", "/battles/some-battle"]) {
      const response = await get(path);
      expect(response.status).toBe(200);
      expect(response.headers.get("Content-Type")).toBe("text/html; charset=utf-8");
      const csp = response.headers.get("Content-Security-Policy") ?? "";
      expect(csp).toContain("script-src 'self'");
      expect(csp).not.toContain("unsafe-inline");
      expect(csp).toContain("require-trusted-types-for 'script'");
      const html = await response.text();
      expect(html).toContain('<script type="module" src="/battles/assets/main.js"></script>');
      expect(html.match(/<script/g)).toHaveLength(1);
    }
  });

  it("carries the admin page's walls as well: it cannot be framed and keeps no opener", async () => {
    const response = await get("/battles");
    expect(response.headers.get("Content-Security-Policy")).toContain("frame-ancestors 'none'");
    expect(response.headers.get("X-Frame-Options")).toBe("DENY");
    expect(response.headers.get("Cross-Origin-Opener-Policy")).toBe("same-origin");
    expect(response.headers.get("Referrer-Policy")).toBe("no-referrer");
    expect(response.headers.get("X-Content-Type-Options")).toBe("nosniff");
  });
});

describe("GET /api/battles/:id", () => {
  it("returns the battle and its events, oldest first, with reporter and agent", async () => {
    const id = uniqueId("one");
    await session(id).appendProgress({
      battle_id: id,
      message: "Green crosses the river",
      reported_by: "scout",
      agent: "agent_name1",
      detail: { sector: "B4" },
      markdown_content: "## Turn 1",
    });
    await report(id, 1, null, "lookout", { battles: [id] });
    const state = await getJson<BattleState>(`/api/battles/${id}`);
    expect(state.battle).toMatchObject({ id, status: "ongoing", winner: null });
    expect(state.events).toMatchObject([
      {
        seq: 1,
        kind: "progress",
        message: "Green crosses the river",
        reported_by: "scout",
        agent: "agent_name1",
        detail: { sector: "B4" },
        markdown_content: "## Turn 1",
      },
      { seq: 2, reported_by: "lookout", agent: null },
    ]);
    expect(state.next_after).toBeNull();
  });

  it("returns only the events after `after`, and nothing once caught up", async () => {
    const id = uniqueId("after");
    await report(id, 5);
    const later = await getJson<BattleState>(`/api/battles/${id}?after=3`);
    expect(later.events.map((e) => e.seq)).toEqual([4, 5]);
    const none = await getJson<BattleState>(`/api/battles/${id}?after=5`);
    expect(none.events).toEqual([]);
    expect(none.battle?.id).toBe(id);
  });

  it("pages a long log: 100 events per answer, next_after to go on", async () => {
    const id = uniqueId("long");
    await report(id, 130);
    const first = await getJson<BattleState>(`/api/battles/${id}`);
    expect(first.events).toHaveLength(100);
    expect(first.next_after).toBe(100);
    const rest = await getJson<BattleState>(`/api/battles/${id}?after=100`);
    expect(rest.events.map((e) => e.seq)).toEqual(Array.from({ length: 30 }, (_, i) => 101 + i));
    expect(rest.next_after).toBeNull();
  });

  it("shows the winner once the battle ended", async () => {
    const id = uniqueId("won");
    await report(id, 1);
    await end(id, "blue");
    const state = await getJson<BattleState>(`/api/battles/${id}`);
    expect(state.battle).toMatchObject({ status: "ended", winner: "blue" });
    expect(state.events.at(-1)).toMatchObject({ seq: 2, kind: "result" });
  });

  it("answers 404 for a battle nobody reported, 400 for a bad id or after", async () => {
    const token = await inspectToken();
    expect((await get(`/api/battles/${uniqueId("never")}`, token)).status).toBe(404);
    expect((await get("/api/battles/bad%20id", token)).status).toBe(400);
    for (const after of ["-1", "x", "1.5", ""]) {
      const response = await get(`/api/battles/some-battle?after=${after}`, token);
      expect(response.status, after).toBe(400);
      expect(await response.json()).toMatchObject({ error: "invalid_request" });
    }
  });

  it("reads battle ids with ':' and '.' from the path, encoded or not", async () => {
    const id = uniqueId("game:42.round_1");
    await report(id, 1);
    const plain = await getJson<BattleState>(`/api/battles/${id}`);
    const encoded = await getJson<BattleState>(`/api/battles/${encodeURIComponent(id)}`);
    expect(plain.battle?.id).toBe(id);
    expect(encoded.battle?.id).toBe(id);
  });

  it("is never cached", async () => {
    const id = uniqueId("cache");
    await report(id, 1);
    const response = await get(`/api/battles/${id}`, await inspectToken());
    expect(response.headers.get("Cache-Control")).toBe("no-store");
  });
});

describe("GET /api/battles", () => {
  it("lists a battle with its status, count and participants once it is reported", async () => {
    const id = uniqueId("listed");
    await report(id, 2, "agent_name1", "scout");
    await report(id, 1, "agent_name2", "lookout", { battles: [id] });
    const entry = await indexed(id, (b) => b.event_count === 3);
    expect(entry).toMatchObject({
      id,
      status: "ongoing",
      winner: null,
      event_count: 3,
      agents: ["agent_name1", "agent_name2"],
      reporters: ["scout", "lookout"],
    });
  });

  it("follows updates and the end: count, status, winner, updated_at", async () => {
    const id = uniqueId("follows");
    await report(id, 1);
    const before = await indexed(id);
    await report(id, 2);
    await end(id, "red");
    const after = await indexed(id, (b) => b.status === "ended");
    expect(after).toMatchObject({ event_count: 4, status: "ended", winner: "red" });
    expect(after.created_at).toBe(before.created_at);
    expect(after.updated_at >= before.updated_at).toBe(true);
  });

  it("filters by status", async () => {
    const ongoing = uniqueId("filter-ongoing");
    const ended = uniqueId("filter-ended");
    await report(ongoing, 1);
    await end(ended, "green");
    await indexed(ongoing);
    await indexed(ended, (b) => b.status === "ended");

    const onlyOngoing = await getJson<{ battles: { id: string; status: string }[] }>(
      "/api/battles?status=ongoing&limit=100",
    );
    expect(onlyOngoing.battles.every((b) => b.status === "ongoing")).toBe(true);
    expect(onlyOngoing.battles.map((b) => b.id)).toContain(ongoing);
    expect(onlyOngoing.battles.map((b) => b.id)).not.toContain(ended);

    const onlyEnded = await getJson<{ battles: { id: string; status: string }[] }>(
      "/api/battles?status=ended&limit=100",
    );
    expect(onlyEnded.battles.every((b) => b.status === "ended")).toBe(true);
    expect(onlyEnded.battles.map((b) => b.id)).toContain(ended);
  });

  it("lists newest first and pages with cursors, without repeats or gaps", async () => {
    const ids: string[] = [];
    for (let i = 0; i < 7; i++) {
      const id = uniqueId(`page-${i}`);
      await report(id, 1);
      ids.push(id);
    }
    await indexed(ids.at(-1) as string);
    for (const id of ids) await indexed(id);

    const seen: { id: string; created_at: string }[] = [];
    let cursor: string | null = null;
    do {
      const query: string = `/api/battles?limit=3${cursor ? `&cursor=${cursor}` : ""}`;
      const page: { battles: { id: string; created_at: string }[]; next_cursor: string | null } =
        await getJson(query);
      expect(page.battles.length).toBeLessThanOrEqual(3);
      seen.push(...page.battles);
      cursor = page.next_cursor;
    } while (cursor);

    expect(new Set(seen.map((b) => b.id)).size).toBe(seen.length);
    const mine = seen.filter((b) => ids.includes(b.id)).map((b) => b.id);
    expect(mine).toEqual([...ids].reverse());
    const times = seen.map((b) => b.created_at);
    expect(times).toEqual([...times].sort().reverse());
  });

  it("refuses a bad status, limit or cursor with 400", async () => {
    const token = await inspectToken();
    for (const query of ["status=lost", "limit=0", "limit=101", "limit=x", "cursor=%21%21"]) {
      const response = await get(`/api/battles?${query}`, token);
      expect(response.status, query).toBe(400);
      expect(await response.json()).toMatchObject({ error: "invalid_request" });
    }
  });
});
