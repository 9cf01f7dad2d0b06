/**
 * Battles as a person and an operator meet them, on the system `npm start` runs: the battle page
 * in a real headless Chromium (Debian's `chromium`, driven by playwright-core), fed by an agent
 * through the proxy; and the durability of a battle's log under a flood of concurrent reports and
 * a restart of everything.
 *
 * Needs /usr/bin/chromium (`.ci/browser.sh setup` installs it) or CHROMIUM_PATH (./browser.ts).
 */
import type { Client } from "@modelcontextprotocol/sdk/client/index.js";
import type { Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { BattlePage, BattleState } from "../../durable-objects/battle-types.ts";
import { mintInspectionToken } from "../../keys/mint.ts";
import { type Chromium, launchChromium, saveScreenshot } from "./browser.ts";
import { connectAgent, type Launched, launch, resultText } from "./launcher.ts";

/** Reports in the flood; kept in flight at most FLOOD_CONCURRENCY at a time. */
const FLOOD_SIZE = 500;
/**
 * The proxy admits MAX_CONCURRENT_CALLS_PER_AGENT (8, wrangler.toml) tool calls per agent at
 * once and answers the rest 429; the flood keeps exactly that many in flight, all the time.
 */
const FLOOD_CONCURRENCY = Number(process.env.MCPCP_FLOOD_CONCURRENCY || 8);

let system: Launched;
let agent: Client;
let browser: Chromium;
let inspectionToken: string;
const pageErrors: string[] = [];

const battle = `page-${Date.now()}`;
const flood = `flood-${Date.now()}`;

function mcp1(path: string): string {
  return `http://127.0.0.1:${system.ports.mcp1}${path}`;
}

/** Reports through the proxy as agent_name1, as an agent's model would. */
async function report(
  tool: "update_battle_process" | "report_on_battle_end",
  args: Record<string, unknown>,
) {
  const result = await agent.callTool({ name: `mcp1_${tool}`, arguments: args });
  expect(result.isError, resultText(result)).toBeFalsy();
  return result.structuredContent as { event: { seq: number } };
}

/** The inspection JSON API, with the token in the Authorization header. */
async function inspect<T>(path: string): Promise<T> {
  const response = await fetch(mcp1(path), {
    headers: { Authorization: `Bearer ${inspectionToken}` },
  });
  expect(response.status, await response.clone().text()).toBe(200);
  return (await response.json()) as T;
}

/** Every event of a battle, following `next_after` to the end of its log. */
async function allEvents(id: string): Promise<BattleState> {
  const first = await inspect<BattleState>(`/api/battles/${id}`);
  const events = [...first.events];
  let after = first.next_after;
  while (after !== null) {
    const page = await inspect<BattleState>(`/api/battles/${id}?after=${after}`);
    events.push(...page.events);
    after = page.next_after;
  }
  return { ...first, events, next_after: null };
}

async function openPage(path: string): Promise<Page> {
  const page = await browser.newPage();
  page.on("pageerror", (error) => pageErrors.push(error.message));
  await page.goto(mcp1(`${path}#token=${inspectionToken}`));
  return page;
}

beforeAll(async () => {
  system = await launch();
  agent = await connectAgent(system.proxyUrl, "agent_name1");
  inspectionToken = await mintInspectionToken();
  browser = await launchChromium();
}, 150_000);

afterAll(async () => {
  await browser?.close();
  await agent?.close().catch(() => {});
  if (system?.child.exitCode === null) await system.stop();
}, 30_000);

describe("the battle page", () => {
  let page: Page;

  it("shows a battle's timeline: verified agent, claimed reporter, readable detail, rendered markdown", async () => {
    await report("update_battle_process", {
      battle_id: battle,
      message: "Green crosses the river",
      reported_by: "scout",
      detail: { sector: "B4", losses: { green: 1, blue: 3 } },
      markdown_content: "## Turn 1\n\n| unit | hp |\n|---|---|\n| tank | 80 |\n\n- **flank** left",
    });
    await report("update_battle_process", {
      battle_id: battle,
      message: "Blue digs in",
      // A model may call itself anything, another agent included: the page must not believe it.
      reported_by: "agent_name2",
    });

    page = await openPage(`/battles/${battle}`);
    const events = page.locator("#timeline li.event");
    await expect.poll(() => events.count()).toBe(2);
    // The token left the address bar (and history) as soon as the script read it.
    expect(page.url()).toBe(mcp1(`/battles/${battle}`));

    const first = page.locator('li.event[data-seq="1"]');
    expect(await first.locator(".message").textContent()).toBe("Green crosses the river");
    expect(await first.locator(".reporter").textContent()).toBe("scout");
    expect(await first.locator(".agent").textContent()).toBe("agent_name1");
    // The verified agent is shown first, what it says of itself only as its claim.
    expect(await first.locator(".who").textContent()).toBe("reported by agent_name1 (says: scout)");
    const second = page.locator('li.event[data-seq="2"]');
    expect(await second.locator(".who").textContent()).toBe(
      "reported by agent_name1 (says: agent_name2)",
    );
    expect(await first.locator(".detail-list dt").allTextContents()).toEqual(["sector", "losses"]);
    expect(await first.locator(".detail-list dd").first().textContent()).toBe("B4");
    expect(await first.locator(".markdown h2").textContent()).toBe("Turn 1");
    expect(await first.locator(".markdown td").allTextContents()).toEqual(["tank", "80"]);
    expect(await page.locator("#status").textContent()).toBe("ongoing");
  });

  it("shows a new event as it happens, without a reload", async () => {
    await page.locator('#live[data-state="live"]').waitFor();
    await page.evaluate(() => {
      (globalThis as unknown as { sameDocument: boolean }).sameDocument = true;
    });
    await report("update_battle_process", {
      battle_id: battle,
      message: "Red arrives from the north",
      reported_by: "scout",
    });
    const third = page.locator('li.event[data-seq="3"]');
    await third.waitFor();
    expect(await third.locator(".message").textContent()).toBe("Red arrives from the north");
    expect(await page.evaluate(() => "sameDocument" in globalThis)).toBe(true);
  });

  it("runs nothing an agent's markdown carries, live or on a fresh load", async () => {
    const title = await page.title();
    await report("update_battle_process", {
      battle_id: battle,
      message: "Mallory reports",
      reported_by: "mallory",
      markdown_content: [
        "**Attack**",
        "",
        "<script>document.title = 'pwned'; window.pwned = 'script'</script>",
        "",
        `Inline <img src="x" onerror="document.title = 'pwned'; window.pwned = 'onerror'">`,
        `and <svg onload="window.pwned = 'svg'"></svg>`,
        "and [a link](javascript:window.pwned='link') and <iframe srcdoc='<script>parent.pwned=1</script>'></iframe>",
        "",
        `<div onmouseover="window.pwned = 'hover'">hover me</div>`,
      ].join("\n"),
    });

    for (const view of [page, await openPage(`/battles/${battle}`)]) {
      const hostile = view.locator('li.event[data-seq="4"] .markdown');
      await hostile.waitFor();
      await hostile.hover();
      await view.locator('li.event[data-seq="4"] .markdown a').click();
      // The markup is shown as text, and none of it became live DOM.
      expect(await hostile.textContent()).toContain("<script>document.title = 'pwned'");
      expect(await hostile.textContent()).toContain('onerror="document.title');
      expect(
        await view
          .locator("script:not([src]), iframe, svg, [onerror], [onload], [onmouseover]")
          .count(),
      ).toBe(0);
      expect(await view.locator('a[href^="javascript:"]').count()).toBe(0);
      expect(await view.evaluate(() => (globalThis as unknown as { pwned?: unknown }).pwned)).toBe(
        undefined,
      );
      expect(await view.title()).toBe(title);
    }
    expect(pageErrors).toEqual([]);
  });

  it("shows the winner when the battle ends, then stops listening", async () => {
    await report("report_on_battle_end", {
      battle_id: battle,
      message: "Blue retreats; green holds the bridge",
      reported_by: "umpire",
      winner: "green",
    });
    await page.locator("#winner").waitFor();
    expect(await page.locator("#winner").textContent()).toBe("Winner: green");
    expect(await page.locator("#status").textContent()).toBe("ended");
    await page.locator('#live[data-state="ended"]').waitFor();
    expect(await page.locator('li.event[data-seq="5"].kind-result').count()).toBe(1);

    await saveScreenshot(page, "battle-page");
  });

  it("lists the battle with its winner and count, and filters by status", async () => {
    const list = await openPage("/battles");
    const row = list.locator(`tr[data-battle="${battle}"]`);
    await row.waitFor();
    expect(await row.locator(".winner").textContent()).toBe("green");
    expect(await row.locator("td.number").textContent()).toBe("5");

    await list.locator("#status-filter").selectOption("ongoing");
    await expect.poll(() => list.url()).toBe(mcp1("/battles?status=ongoing"));
    await expect.poll(() => row.count()).toBe(0);
    await list.locator("#status-filter").selectOption("ended");
    await row.waitFor();

    await row.locator("a").click();
    await list.locator('li.event[data-seq="5"]').waitFor();
    expect(list.url()).toBe(mcp1(`/battles/${battle}`));
  });

  it("shows nothing without a token, and asks for one", async () => {
    // A new tab starts with empty session storage: no token unless the URL brings one.
    const view = await browser.newPage();
    await view.goto(mcp1(`/battles/${battle}`));
    await view.locator("#token-input").waitFor();
    expect(await view.locator("#timeline").count()).toBe(0);
    await view.close();
  });
});

describe("durability", () => {
  it(`records ${FLOOD_SIZE} concurrent reports through the proxy, gapless`, async () => {
    const seqs: number[] = [];
    let next = 0;
    let retried = 0;
    const worker = async () => {
      while (next < FLOOD_SIZE) {
        const i = next++;
        for (;;) {
          try {
            const { event } = await report("update_battle_process", {
              battle_id: flood,
              message: `report ${i}`,
              reported_by: `unit-${i % 5}`,
              detail: { i },
            });
            seqs.push(event.seq);
            break;
          } catch (error) {
            // 429: the proxy refused before routing, so nothing was recorded; try again.
            if ((error as { code?: number }).code !== 429) throw error;
            retried++;
            await new Promise((resolve) => setTimeout(resolve, 250));
          }
        }
      }
    };
    await Promise.all(Array.from({ length: FLOOD_CONCURRENCY }, worker));

    expect(seqs.sort((a, b) => a - b)).toEqual(Array.from({ length: FLOOD_SIZE }, (_, i) => i + 1));
    const state = await allEvents(flood);
    expect(state.events.map((e) => e.seq)).toEqual(seqs);
    expect(new Set(state.events.map((e) => e.message)).size).toBe(FLOOD_SIZE);
    expect(state.events.every((e) => e.agent === "agent_name1")).toBe(true);
    expect(retried).toBeLessThan(FLOOD_SIZE);
  }, 240_000);

  it("keeps every battle's log, status and index entry across a restart", async () => {
    const before = { flood: await allEvents(flood), page: await allEvents(battle) };
    await agent.close();
    expect(await system.stop()).toBe(0);

    system = await launch();
    agent = await connectAgent(system.proxyUrl, "agent_name1");
    expect(await allEvents(flood)).toEqual(before.flood);
    expect(await allEvents(battle)).toEqual(before.page);

    await expect
      .poll(
        async () => {
          const page = await inspect<BattlePage>("/api/battles?limit=100");
          return page.battles.find((b) => b.id === flood)?.event_count;
        },
        { timeout: 10_000 },
      )
      .toBe(FLOOD_SIZE);
    const late = await agent.callTool({
      name: "mcp1_update_battle_process",
      arguments: { battle_id: battle, message: "after the restart", reported_by: "scout" },
    });
    expect(late.isError).toBe(true);
    expect(resultText(late)).toMatch(/already ended .* winner green/);
  }, 180_000);
});
