/**
 * The headless Chromium the browser tests drive (Debian's `chromium`, through playwright-core):
 * one fresh profile each, so no test sees another's storage, removed again when it closes.
 *
 * Needs /usr/bin/chromium (`.ci/browser.sh setup` installs it) or CHROMIUM_PATH.
 */
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium, type Page } from "playwright-core";

const CHROMIUM = process.env.CHROMIUM_PATH || "/usr/bin/chromium";
/** Nothing that phones home or needs a GPU: the page under test is all that talks. */
const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];
const ARTIFACTS = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "test-artifacts");

/** A running Chromium: tabs opened in it share one profile (its session storage is per tab). */
export interface Chromium {
  newPage(): Promise<Page>;
  /** Closes the browser and removes its profile. */
  close(): Promise<void>;
}

/** Starts Chromium on a new, empty profile. */
export async function launchChromium(): Promise<Chromium> {
  const profile = await mkdtemp(join(tmpdir(), "mcpcp-chromium-"));
  try {
    const context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_ARGS,
    });
    return {
      newPage: () => context.newPage(),
      close: async () => {
        await context.close();
        await rm(profile, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await rm(profile, { recursive: true, force: true });
    throw error;
  }
}

/** Saves the whole page as test-artifacts/<name>.png, for a person to look at after the run. */
export async function saveScreenshot(page: Page, name: string): Promise<void> {
  const path = join(ARTIFACTS, `${name}.png`);
  await mkdir(dirname(path), { recursive: true });
  await page.screenshot({ path, fullPage: true });
}
