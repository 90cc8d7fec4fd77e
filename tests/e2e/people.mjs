// Helpers for end-to-end tests that play several people, each on their own browser profile.
import { mkdtempSync, readdirSync, readFileSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { watchProblems } from "./harness.mjs";

export const PHONE = { width: 360, height: 740 };

/** One person on one phone: a persistent browser profile of their own. */
export async function person(name, contextOptions = {}) {
  const profileDir = mkdtempSync(join(tmpdir(), `huddle-e2e-${name.toLowerCase()}-`));
  const context = await chromium.launchPersistentContext(profileDir, {
    ...contextOptions,
    executablePath: process.env.CHROMIUM_BIN || "/usr/bin/chromium",
    viewport: PHONE,
    deviceScaleFactor: 2,
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run", "--disable-quic"],
  });
  const page = context.pages()[0] ?? (await context.newPage());
  const problems = watchProblems(page);
  return {
    name,
    profileDir,
    context,
    page,
    /** Console errors, except the browser's own report of a WebSocket that
     * could not connect, which is expected while offline or while the relay
     * restarts. */
    problems: () => problems.filter((p) => !/WebSocket connection to .* failed/.test(p)),
  };
}

/** Waits until the app is connected (no offline or connecting banner). */
export async function waitLive(page) {
  await page.waitForFunction(() => !document.querySelector("[data-testid=connection-banner]"), null, {
    timeout: 30_000,
  });
}

export async function openConversation(page, title) {
  await page.getByRole("link", { name: new RegExp(`^${title}`) }).first().click();
  await page.getByRole("heading", { level: 1, name: title }).waitFor();
}

export async function send(page, text) {
  await page.getByLabel("Message", { exact: true }).fill(text);
  await page.getByRole("button", { name: "Send", exact: true }).click();
}

/** The texts of the messages on screen, in order. */
export async function messageTexts(page) {
  return page.locator("[data-testid=message] .message__text").allTextContents();
}

export async function waitForMessage(page, text, timeout = 30_000) {
  await page.locator("[data-testid=message] .message__text", { hasText: text }).first().waitFor({ timeout });
}

export async function backToList(page) {
  await page.getByRole("button", { name: "Back" }).click();
  await page.getByRole("heading", { level: 1, name: "Conversations" }).waitFor();
}

/** Every file under `dir`, recursively. */
export function filesUnder(dir) {
  const out = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...filesUnder(path));
    else if (entry.isFile()) out.push(path);
  }
  return out;
}

/** Which of `markers` appear in any file under `dir` (as UTF-8/Latin-1 or UTF-16LE). */
export function markersIn(dir, markers) {
  const found = new Set();
  for (const file of filesUnder(dir)) {
    if (statSync(file).size > 200 * 1024 * 1024) continue;
    const bytes = readFileSync(file);
    for (const marker of markers) {
      if (bytes.includes(Buffer.from(marker, "latin1")) || bytes.includes(Buffer.from(marker, "utf16le"))) {
        found.add(marker);
      }
    }
  }
  return [...found];
}
