/**
 * What keeping an isolate's copy of the run-time state fresh costs, inside workerd: a poll names
 * what the isolate holds by hash and version (the seed goes whole only to a store that lacks it),
 * a version comes back without its policy when the isolate holds that policy, and a policy is
 * read once per change. Each test has a ControlCache and a ControlStore instance of its own (the
 * binding's class under another name), with a policy of 2,000 agents, three of them under rules
 * whose compilations are counted.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { refusalOf } from "../../../workers/proxy/src/control/document.ts";
import { compileCondition } from "../../../workers/proxy/src/core/conditions.ts";
import {
  type CompileRule,
  type PolicyDocument,
  parsePolicy,
} from "../../../workers/proxy/src/core/policy.ts";
import { ControlCache, seedHash } from "../../../workers/proxy/src/state/control-cache.ts";
import type { ControlStore, Seed } from "../../../workers/proxy/src/state/control-store.ts";

const RULE = 'args.message.startsWith("ok")';

function policyOf(agents: number): PolicyDocument {
  const policy: PolicyDocument = {};
  for (let i = 0; i < agents; i++) policy[`sync_agent_${i}`] = { mcp1: ["echo"] };
  for (let i = 0; i < 3; i++) policy[`sync_ruled_${i}`] = { mcp1: [{ tool: "echo", when: RULE }] };
  return policy;
}

/** A rule compiler that counts what it compiles: one count per rule per reading of a policy. */
function counting(): { compile: CompileRule; count: () => number } {
  let count = 0;
  return {
    compile: (source, place) => {
      count++;
      return compileCondition(source, place);
    },
    count: () => count,
  };
}

async function seedOf(policy: PolicyDocument): Promise<Seed> {
  const backends = [
    {
      id: "mcp1",
      url: "https://mcp1.internal/mcp",
      route: "binding" as const,
      identity: "assertion" as const,
    },
  ];
  return { hash: await seedHash({ policy, backends }), policy, backends };
}

/**
 * The CONTROL binding with its store under `name`, recording the size of what each sync sends
 * and of what comes back (as JSON, about what crosses to the Durable Object and back).
 */
function measured(name: string) {
  const sent: number[] = [];
  const answers: number[] = [];
  const stub = () => env.CONTROL.get(env.CONTROL.idFromName(name));
  const namespace = {
    idFromName: () => env.CONTROL.idFromName(name),
    get: () => {
      const store = stub();
      return {
        sync: async (...args: Parameters<ControlStore["sync"]>) => {
          sent.push(JSON.stringify(args).length);
          const answer = await store.sync(...args);
          answers.push(JSON.stringify(answer ?? null).length);
          return answer;
        },
      };
    },
  } as unknown as DurableObjectNamespace<ControlStore>;
  return { namespace, sent, answers, store: stub };
}

const FAR = Math.floor(Date.now() / 1000) + 3600;

describe("an isolate's polls of the control store", () => {
  it("name what the isolate holds by hash and version: the seed goes once, to a store that lacks it", async () => {
    const policy = policyOf(2_000);
    const seed = await seedOf(policy);
    const policyBytes = JSON.stringify(policy).length;
    expect(policyBytes).toBeGreaterThan(50_000);
    const { compile } = counting();
    const deployed = parsePolicy(JSON.stringify(policy), ["mcp1"], compile);
    if (!deployed.ok) throw new Error(deployed.error);
    const { namespace, sent, answers } = measured("sync-polls");
    const cache = new ControlCache(namespace, seed, deployed.value, { direct: true, compile });

    expect((await cache.get()).version).toBe(1);
    for (let i = 0; i < 3; i++) await cache.refresh();

    // One sync carried the seed: the one that answered the empty store's request for it.
    expect(sent.filter((bytes) => bytes > policyBytes)).toHaveLength(1);
    expect(sent.length).toBeGreaterThanOrEqual(4);
    // Every other sync, the three polls of a copy that is current included, is a few dozen bytes.
    for (const bytes of sent.filter((b) => b <= policyBytes)) expect(bytes).toBeLessThan(200);
    // The seeded version came back without the policy the isolate sent, and "current" is tiny.
    for (const bytes of answers) expect(bytes).toBeLessThan(2_000);
    for (const bytes of answers.slice(-3)) expect(bytes).toBeLessThan(100);
  });
});

describe("an isolate's copy of the policy", () => {
  it("serves the deployed POLICY from the index loadConfig built, and reads a policy again only when it changes", async () => {
    const policy = policyOf(2_000);
    const seed = await seedOf(policy);
    const policyBytes = JSON.stringify(policy).length;
    const rules = counting();
    const deployed = parsePolicy(JSON.stringify(policy), ["mcp1"], rules.compile);
    if (!deployed.ok) throw new Error(deployed.error);
    expect(rules.count()).toBe(3);
    const { namespace, answers, store } = measured("sync-reads");
    const options = { direct: true, compile: rules.compile };
    const cache = new ControlCache(namespace, seed, deployed.value, options);

    // The first request: the seed's version is served from the index POLICY was read into.
    const first = await cache.get();
    expect(first.policy).toBe(deployed.value);
    expect(first.document.policy).toEqual(policy);
    expect(rules.count()).toBe(3);

    // A revocation changes the version, not the policy: it comes without it, and is not re-read.
    await store().revoke(seed, "test", { jti: "sync-jti", until: FAR });
    await cache.refresh();
    const revoked = await cache.get();
    expect(revoked.version).toBe(first.version + 1);
    expect(revoked.policy).toBe(deployed.value);
    expect(answers.at(-1)).toBeLessThan(2_000);
    const facts = { agent: "sync_agent_1", tokenId: "sync-jti", issuedAt: FAR - 3600 };
    expect(refusalOf(revoked, facts)).toBe("token revoked");

    // A backend added: the policy held is checked against the new list, not read again.
    const extra = { id: "syncext", url: "https://syncext.example/mcp" };
    await store().putBackend(seed, "test", { ...extra, route: "network", identity: "none" });
    await cache.refresh();
    const widened = await cache.get();
    expect([...widened.backends.keys()]).toEqual(["mcp1", "syncext"]);
    expect(widened.policy).toBe(deployed.value);
    expect(rules.count()).toBe(3);

    // A new policy is sent and read once: its three rules compile once more.
    const changed = { ...policy, sync_new: { syncext: "*" as const } };
    const put = await store().putPolicy(seed, "test", widened.policyVersion, changed);
    expect(put.ok).toBe(true);
    const compiledByStore = rules.count();
    await cache.refresh();
    const next = await cache.get();
    expect(answers.at(-1)).toBeGreaterThan(policyBytes);
    expect(next.policy).not.toBe(deployed.value);
    expect(next.policy.get("sync_new")?.get("syncext")).toBe("*");
    expect(rules.count()).toBe(compiledByStore + 3);

    // And a later change that leaves it alone keeps that reading.
    await store().setAgent(seed, "test", "sync_agent_2", { enabled: false, note: "" });
    await cache.refresh();
    const disabled = await cache.get();
    expect(disabled.policy).toBe(next.policy);
    expect(disabled.agents.get("sync_agent_2")?.enabled).toBe(false);
    expect(rules.count()).toBe(compiledByStore + 3);
  });

  it("takes in a second deployed configuration once, and an isolate of the first then serves it", async () => {
    const { namespace, store } = measured("sync-deploys");
    const firstPolicy = policyOf(10);
    const secondPolicy = { ...policyOf(10), sync_second: { mcp1: "*" as const } };
    const caches = await Promise.all(
      [firstPolicy, secondPolicy].map(async (policy) => {
        const deployed = parsePolicy(JSON.stringify(policy), ["mcp1"], compileCondition);
        if (!deployed.ok) throw new Error(deployed.error);
        const seed = await seedOf(policy);
        const options = { direct: true, compile: compileCondition };
        return {
          seed,
          deployed: deployed.value,
          cache: new ControlCache(namespace, seed, deployed.value, options),
        };
      }),
    );
    const [older, newer] = caches;
    if (!older || !newer) throw new Error("two caches");
    expect((await older.cache.get()).policy).toBe(older.deployed);
    const deployedSecond = await newer.cache.get();
    expect(deployedSecond.policy).toBe(newer.deployed);
    expect(deployedSecond.version).toBe(2);
    // The store is the truth: the isolate still running the first configuration is sent the
    // second's policy whole, as it does not hold it.
    await older.cache.refresh();
    const followed = await older.cache.get();
    expect(followed.version).toBe(2);
    expect(followed.policy.get("sync_second")?.get("mcp1")).toBe("*");
    expect((await store().history(10, undefined)).map((entry) => entry.action)).toEqual([
      "deploy",
      "seed",
    ]);
  });
});
