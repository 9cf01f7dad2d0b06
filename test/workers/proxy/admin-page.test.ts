/**
 * The admin page as the Worker serves it: a static document that needs no token and holds no
 * data, its script and stylesheet, and the headers that contain it. What the page does in a
 * browser is test/e2e/admin-page.e2e.test.ts.
 */
import { exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { ORIGIN } from "./client.ts";

const get = (path: string, headers: Record<string, string> = {}) =>
  exports.default.fetch(new Request(`${ORIGIN}${path}`, { headers }));

describe("the admin page", () => {
  it("is served to anyone, with no data and no inline script", async () => {
    const response = await get("/admin");
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toBe("text/html; charset=utf-8");
    const html = await response.text();
    const scripts = [...html.matchAll(/<script\b[^>]*>([\s\S]*?)<\/script>/g)];
    expect(scripts.map((m) => m[0])).toEqual([
      '<script type="module" src="/admin/assets/main.js"></script>',
    ]);
    expect(html).not.toMatch(/\son[a-z]+=/i);
    expect(html).not.toMatch(/agent_name1|"policy"/);
  });

  it("carries a strict Content-Security-Policy and cannot be framed", async () => {
    const response = await get("/admin");
    const csp = (response.headers.get("content-security-policy") ?? "").split(/;\s*/);
    expect(csp).toEqual(
      expect.arrayContaining([
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self'",
        "frame-ancestors 'none'",
        "form-action 'none'",
        "base-uri 'none'",
        "require-trusted-types-for 'script'",
        "trusted-types 'none'",
      ]),
    );
    expect(csp.some((d) => /unsafe-inline|unsafe-eval|\*/.test(d))).toBe(false);
    expect(response.headers.get("x-frame-options")).toBe("DENY");
    expect(response.headers.get("referrer-policy")).toBe("no-referrer");
    expect(response.headers.get("x-content-type-options")).toBe("nosniff");
  });

  it("serves its bundled script and stylesheet, and nothing else under its assets", async () => {
    const script = await get("/admin/assets/main.js");
    expect(script.status).toBe(200);
    expect(script.headers.get("content-type")).toBe("text/javascript; charset=utf-8");
    expect(await script.text()).toContain("/admin/policy");
    const style = await get("/admin/assets/page.css");
    expect(style.status).toBe(200);
    expect(style.headers.get("content-type")).toBe("text/css; charset=utf-8");
    for (const path of ["/admin/assets/index.ts", "/admin/assets/constructor"]) {
      const missing = await get(path);
      expect(missing.status, path).toBe(404);
    }
  });

  it("is refused under a Host that does not name the gateway, like every route", async () => {
    const response = await exports.default.fetch(
      new Request("http://attacker.example/admin", { headers: { host: "attacker.example" } }),
    );
    expect(response.status).toBe(403);
  });
});
