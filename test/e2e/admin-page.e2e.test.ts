/**
 * The admin page as an operator meets it, on the system `npm start` runs: in a real headless
 * Chromium (Debian's `chromium`, driven by playwright-core), logged in with an admin token, it
 * changes a grant, shows what the agent gains and the diff, saves, and the agent's own tools/list
 * (the MCP SDK client, as an agent) changes; a save over someone else's change is refused and
 * says so. Every change is made for `page_agent`, an agent no other test knows, and undone.
 *
 * Needs /usr/bin/chromium (`.ci/browser.sh setup` installs it) or CHROMIUM_PATH (./browser.ts).
 */
import { decodeJwt } from "jose";
import type { Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mintToken } from "../../keys/mint.ts";
import { type Chromium, launchChromium, saveScreenshot } from "./browser.ts";
import { connectAgent, type Launched, launch } from "./launcher.ts";

/** The agent this file grants, disables and revokes; no policy file names it. */
const AGENT = "page_agent";
/** Markup where the page shows values from the API: it must stay text. */
const HOSTILE = `<img src=x onerror="window.pwned='note'"><script>window.pwned='script'</script>`;

type PolicyDoc = Record<string, Record<string, "*" | string[]>>;

let system: Launched;
let browser: Chromium;
let adminToken: string;
let page: Page;
/** The policy's version and text when this file began: what the history rolls back to. */
let initial: { version: string; policy: PolicyDoc };
const pageErrors: string[] = [];
const consoleErrors: string[] = [];
const requests: { url: string; authorization: string | undefined }[] = [];

function proxy(path: string): string {
  return `http://127.0.0.1:${system.ports.proxy}${path}`;
}

/** The admin API from Node, as another operator (or a script) uses it. */
async function adminApi<T>(
  method: string,
  path: string,
  body?: unknown,
  ifMatch?: string,
): Promise<{ status: number; body: T }> {
  const response = await fetch(proxy(`/admin${path}`), {
    method,
    headers: {
      authorization: `Bearer ${adminToken}`,
      ...(body === undefined ? {} : { "content-type": "application/json" }),
      ...(ifMatch === undefined ? {} : { "if-match": `"${ifMatch}"` }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: response.status, body: (await response.json()) as T };
}

async function currentPolicy() {
  const { status, body } = await adminApi<{ version: string; policy: PolicyDoc }>("GET", "/policy");
  expect(status).toBe(200);
  return body;
}

/** What `agent` sees in its own tools/list, through the MCP SDK client with a fresh token. */
async function toolsOf(agent: string): Promise<string[]> {
  const client = await connectAgent(system.proxyUrl, agent);
  try {
    return (await client.listTools()).tools.map((tool) => tool.name).sort();
  } finally {
    await client.close();
  }
}

/** Status of a bare tools/list POST to /mcp with `token`. */
async function listStatus(token: string): Promise<number> {
  const response = await fetch(proxy("/mcp"), {
    method: "POST",
    headers: {
      authorization: `Bearer ${token}`,
      "content-type": "application/json",
      accept: "application/json, text/event-stream",
      "mcp-protocol-version": "2025-11-25",
    },
    body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/list" }),
  });
  await response.body?.cancel();
  return response.status;
}

/** A Unix time as a `datetime-local` value (local time, to the minute). */
function localMinute(seconds: number): string {
  const d = new Date(seconds * 1000);
  const two = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())}T${two(d.getHours())}:${two(d.getMinutes())}`;
}

/** Leaves `page_agent` as no test found it: out of the policy, enabled. */
async function forgetPageAgent(): Promise<void> {
  for (let attempt = 0; attempt < 5; attempt++) {
    const { version, policy } = await currentPolicy();
    if (!(AGENT in policy)) break;
    delete policy[AGENT];
    if ((await adminApi("PUT", "/policy", { policy }, version)).status !== 412) break;
  }
  const { body } = await adminApi<{ agents: { id: string; enabled: boolean }[] }>("GET", "/agents");
  if (body.agents.some((a) => a.id === AGENT && !a.enabled)) {
    await adminApi("POST", `/agents/${AGENT}/enable`, {});
  }
}

async function openTab(tab: string): Promise<void> {
  await page.locator(`nav [data-tab="${tab}"]`).click();
}

/** Opens the policy tab and waits for the editor to hold the gateway's policy. */
async function openPolicy(): Promise<PolicyDoc> {
  await openTab("policy");
  const editor = page.locator("#policy-editor");
  await expect.poll(() => editor.inputValue()).not.toBe("");
  return JSON.parse(await editor.inputValue()) as PolicyDoc;
}

beforeAll(async () => {
  system = await launch();
  adminToken = await mintToken({ agent: "ops", scope: "admin" });
  // A run that stopped half-way may have left page_agent behind in the persisted state.
  await forgetPageAgent();
  initial = await currentPolicy();
  browser = await launchChromium();
  page = await browser.newPage();
  page.on("pageerror", (error) => pageErrors.push(error.message));
  page.on("console", (entry) => {
    if (entry.type() === "error") consoleErrors.push(entry.text());
  });
  page.on("request", (request) =>
    requests.push({ url: request.url(), authorization: request.headers().authorization }),
  );
}, 150_000);

afterAll(async () => {
  if (system?.child.exitCode === null) await forgetPageAgent().catch(() => {});
  await browser?.close();
  if (system?.child.exitCode === null) await system.stop();
}, 30_000);

describe("the admin page", () => {
  it("shows nothing without a token, then signs in with a pasted admin token", async () => {
    await page.goto(proxy("/admin"));
    await page.locator("#token-input").waitFor();
    expect(await page.locator("nav [data-tab]").count()).toBe(0);

    await page.locator("#token-input").fill(adminToken);
    await page.locator("#token-form button[type=submit]").click();
    expect(await page.locator("#actor").textContent()).toBe("ops");
    await page.locator('#agents tr[data-agent="agent_name1"]').waitFor();
    expect(await page.locator('a[href="/battles"]').count()).toBe(1);
  });

  it("changes a grant: the preview shows the gain and the diff, and Save changes the agent's list", async () => {
    expect(await toolsOf(AGENT)).toEqual([]);
    const policy = await openPolicy();
    expect(policy).toEqual(initial.policy);
    policy[AGENT] = { mcp1: ["echo"] };
    await page.locator("#policy-editor").fill(JSON.stringify(policy, null, 2));
    // Nothing is saved unpreviewed.
    expect(await page.locator("#save-button").isDisabled()).toBe(true);

    await page.locator("#preview-button").click();
    const effect = page.locator(`#preview .effect[data-agent="${AGENT}"]`);
    await effect.waitFor();
    expect(await effect.locator(".gained li").allTextContents()).toEqual(["mcp1_echo"]);
    expect(await effect.locator(".lost").count()).toBe(0);
    expect(await page.locator("#preview .effect").count()).toBe(1);
    const added = await page.locator("#preview pre.diff ins").allTextContents();
    expect(added.join("\n")).toMatch(/"page_agent": \{[\s\S]*"mcp1": \[[\s\S]*"echo"/);
    expect(await page.locator("#preview pre.diff del").count()).toBe(0);
    // The agent sees nothing yet: a preview changes nothing.
    expect(await toolsOf(AGENT)).toEqual([]);
    await saveScreenshot(page, "admin-page");

    await page.locator("#save-button").click();
    await page.locator("#policy-status .message.ok").waitFor();
    expect(await page.locator("#policy-status").textContent()).toMatch(/Saved/);
    expect(await toolsOf(AGENT)).toEqual(["mcp1_echo"]);

    await openTab("agents");
    const row = page.locator(`#agents tr[data-agent="${AGENT}"]`);
    await row.waitFor();
    expect(await row.locator(".tools li").allTextContents()).toEqual(["mcp1_echo"]);
    expect(await row.locator(".servers li").allTextContents()).toEqual(["mcp1"]);
  });

  it("refuses a save over someone else's change, says so, and reloads their version", async () => {
    const loaded = await openPolicy();
    const version = (await page.locator("#policy-version").textContent())?.replace("version ", "");
    // Another operator saves first, against the same version.
    const theirs = { ...loaded, [AGENT]: { mcp1: ["echo"], mcp3: ["echo"] } };
    const other = await adminApi("PUT", "/policy", { policy: theirs }, version);
    expect(other.status).toBe(200);

    const mine = { ...loaded, [AGENT]: { mcp3: "*" as const } };
    await page.locator("#policy-editor").fill(JSON.stringify(mine, null, 2));
    await page.locator("#preview-button").click();
    await page.locator(`#preview .effect[data-agent="${AGENT}"]`).waitFor();
    await page.locator("#save-button").click();

    const alert = page.locator("#policy-status .conflict [role=alert]");
    await alert.waitFor();
    expect(await alert.textContent()).toMatch(/Someone else changed the policy/);
    expect(await toolsOf(AGENT)).toEqual(["mcp1_echo", "mcp3_echo"]);

    await page.locator("#conflict-reload").click();
    await expect
      .poll(async () => JSON.parse(await page.locator("#policy-editor").inputValue())[AGENT])
      .toEqual({ mcp1: ["echo"], mcp3: ["echo"] });
    expect(await page.locator("#policy-status details.unsaved pre").textContent()).toContain(
      '"mcp3": "*"',
    );
  });

  it("rolls the policy back from the history, after showing what the agent would lose", async () => {
    await openTab("history");
    const entry = page.locator(`#history li[data-version="${initial.version}"]`);
    await entry.locator("button.restore").click();
    const effect = page.locator(`#restore .effect[data-agent="${AGENT}"]`);
    await effect.waitFor();
    expect(await effect.locator(".lost li").allTextContents()).toEqual(["mcp1_echo", "mcp3_echo"]);
    expect(await effect.locator(".gained").count()).toBe(0);

    await page.locator("#rollback-confirm").click();
    await page.locator("#history-status .message.ok").waitFor();
    expect(await toolsOf(AGENT)).toEqual([]);
    expect((await currentPolicy()).policy).toEqual(initial.policy);
    const newest = page.locator("#history li").first();
    expect(await newest.locator(".action").textContent()).toBe(
      `policy.rollback:${initial.version}`,
    );
    expect(await newest.locator(".actor").textContent()).toBe("ops");
  });

  it("disables and enables an agent, showing its note as text", async () => {
    const token = await mintToken({ agent: AGENT });
    expect(await listStatus(token)).toBe(200);
    await openTab("agents");
    await page.locator(`#agents tr[data-agent="agent_name1"]`).waitFor();
    // page_agent holds no grant now: the record that disabling it leaves is what lists it.
    const disabled = await adminApi("POST", `/agents/${AGENT}/disable`, { note: "via API" });
    expect(disabled.status).toBe(200);
    await page.locator("#agents-refresh").click();
    const row = page.locator(`#agents tr[data-agent="${AGENT}"]`);
    await row.locator("button.enable").click();
    await row.locator("button.disable").waitFor();
    expect(await listStatus(token)).toBe(200);

    await row.locator("input.note").fill(HOSTILE);
    await row.locator("button.disable").click();
    await row.locator("button.enable").waitFor();
    expect(await row.locator(".agent-note").textContent()).toBe(HOSTILE);
    expect(await listStatus(token)).toBe(401);
    expect(await page.locator("#agents img, #agents script").count()).toBe(0);
    expect(await page.evaluate(() => (globalThis as { pwned?: unknown }).pwned)).toBe(undefined);

    await row.locator("button.enable").click();
    await row.locator("button.disable").waitFor();
    expect(await listStatus(token)).toBe(200);
  });

  it("revokes one token by its jti: that token is refused, the agent's others are not", async () => {
    const revoked = await mintToken({ agent: AGENT, ttlSeconds: 300 });
    const kept = await mintToken({ agent: AGENT, ttlSeconds: 300 });
    const { jti, exp = 0 } = decodeJwt(revoked);
    await openTab("revocations");
    await page.locator("#revoke-token input[name=jti]").fill(String(jti));
    // Kept only as long as the token lives, so the persisted state does not collect them.
    await page.locator("#revoke-token input[name=expires_at]").fill(localMinute(exp + 60));
    await page.locator("#revoke-token button[type=submit]").click();
    const row = page.locator(`#revocations tr[data-jti="${jti}"]`);
    await row.waitFor();
    expect(
      Number(new Date((await row.locator("time").getAttribute("datetime")) ?? "")) / 1000,
    ).toBe(Math.floor((exp + 60) / 60) * 60);
    expect(await page.locator("#revocations-status").textContent()).toContain(
      `Revoked token ${jti}`,
    );
    expect(await listStatus(revoked)).toBe(401);
    expect(await listStatus(kept)).toBe(200);
  });

  it("shows the audit log filtered by agent, admin changes included", async () => {
    await openTab("audit");
    await page.locator("#audit-agent").fill(AGENT);
    await page.locator("#audit-form button[type=submit]").click();
    await expect.poll(() => page.locator("#audit-status").textContent()).toMatch(/^\d+ records/);
    const agents = await page.locator("#audit tbody tr td:nth-child(2)").allTextContents();
    expect(agents.length).toBeGreaterThan(0);
    expect(new Set(agents)).toEqual(new Set([AGENT]));
    const methods = await page.locator("#audit tbody tr td:nth-child(3)").allTextContents();
    expect(methods).toContain("tools/list");

    await page.locator("#audit-agent").fill("ops");
    await page.locator("#audit-form button[type=submit]").click();
    await expect
      .poll(() => page.locator("#audit tbody tr td:nth-child(5)").allTextContents())
      .toContain("policy.put");
  });

  it("shows hostile names in a preview as text, and cannot parse HTML at all", async () => {
    const policy = await openPolicy();
    policy[HOSTILE] = { mcp1: ["echo"] };
    await page.locator("#policy-editor").fill(JSON.stringify(policy, null, 2));
    await page.locator("#preview-button").click();
    const effect = page.locator("#preview .effect").first();
    await effect.waitFor();
    expect(await effect.locator("h4").textContent()).toBe(HOSTILE);
    expect(await page.locator("#app img, #app script").count()).toBe(0);
    expect(await page.evaluate(() => (globalThis as { pwned?: unknown }).pwned)).toBe(undefined);
    // The CSP's Trusted Types leave no way to turn a string into markup on this page.
    // (A string: the test is type-checked without the DOM's types.) The browser reports the
    // blocked sink on the console; that one report is expected.
    const reported = consoleErrors.length;
    const sink = await page.evaluate(`(() => {
      try {
        document.body.insertAdjacentHTML("beforeend", "<b>x</b>");
        return "parsed";
      } catch (error) {
        return error.name;
      }
    })()`);
    expect(sink).toBe("TypeError");
    expect(consoleErrors.splice(reported)).toEqual([expect.stringMatching(/TrustedHTML/)]);
    await page.locator("#reload-button").click();
  });

  it("leaves the gateway serving agents after page loads that answer at once", async () => {
    // Each load finds the gateway's copy of the run-time state old enough to check, and answers
    // before the check is done; the agent's request then needs a check of its own.
    const token = await mintToken({ agent: "agent_name1" });
    for (let round = 0; round < 3; round++) {
      await new Promise((resolve) => setTimeout(resolve, 600));
      for (const path of ["/admin", "/admin/assets/main.js", "/admin/assets/page.css"]) {
        const response = await fetch(proxy(path));
        await response.body?.cancel();
        expect(response.status).toBe(200);
      }
      await new Promise((resolve) => setTimeout(resolve, 1_600));
      expect(await listStatus(token)).toBe(200);
    }
  });

  it("sent the token only in the Authorization header, never in a URL", async () => {
    const api = requests.filter((r) => new URL(r.url).pathname.startsWith("/admin/"));
    const calls = api.filter((r) => !new URL(r.url).pathname.startsWith("/admin/assets/"));
    expect(calls.length).toBeGreaterThan(10);
    expect(calls.every((r) => r.authorization === `Bearer ${adminToken}`)).toBe(true);
    expect(requests.some((r) => r.url.includes(adminToken))).toBe(false);
    expect(page.url()).not.toContain(adminToken);
    // Only this tab holds it: a new tab asks again.
    const other = await browser.newPage();
    await other.goto(proxy("/admin"));
    await other.locator("#token-input").waitFor();
    await other.close();
    expect(pageErrors).toEqual([]);
    // A CSP violation (a blocked script, style or request) is reported on the console.
    expect(consoleErrors.filter((text) => !/status of 4\d\d/.test(text))).toEqual([]);
  });
});
