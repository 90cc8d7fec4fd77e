// What the benchmarks share: a phone (a fresh Chromium profile at phone size), and setting one up as a manager with a group.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

/** A phone that has never opened Huddle: its own profile folder and browser. */
export async function launch() {
  const dir = mkdtempSync(join(tmpdir(), "huddle-bench-profile-"));
  const context = await chromium.launchPersistentContext(dir, {
    executablePath: process.env.CHROMIUM_BIN || "/usr/bin/chromium",
    viewport: { width: 360, height: 740 },
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run", "--disable-quic"],
  });
  return { dir, context };
}

/** The benchmark phone's passcode. */
export const PASSCODE = "582914";

/** Unlocks the app on `page` from its lock screen, with a mark at the tap
 * (`bench:unlock`, in the page, so no driver delay is counted), and waits
 * until the conversation list is painted (`huddle:unlocked`). */
export async function unlock(page) {
  await page.getByRole("button", { name: "Unlock" }).waitFor({ timeout: 60_000 });
  await page.getByLabel("Passcode", { exact: true }).fill(PASSCODE);
  await page.evaluate(() => {
    performance.mark("bench:unlock");
    document.querySelector("form button[type=submit]").click();
  });
  await page.waitForFunction(() => performance.getEntriesByName("huddle:unlocked").length > 0, null, {
    timeout: 60_000,
  });
}

/**
 * Sets the home up on `page` through the real screens (first-run link, a
 * passcode, then a "Night shift" group), and returns the group's id.
 */
export async function setUpWithGroup(page, relay) {
  await page.goto(relay.setupLink());
  await page.getByLabel("Name of your care home or team").fill("Rosewood House");
  await page.getByLabel("Your name").fill("Mia Patel");
  await page.getByRole("button", { name: "Set up Huddle" }).click();
  await page.getByLabel("Passcode", { exact: true }).fill(PASSCODE, { timeout: 60_000 });
  await page.getByLabel("Type it again").fill(PASSCODE);
  await page.getByRole("button", { name: "Save passcode" }).click();
  await page.getByRole("heading", { level: 1, name: "Conversations" }).waitFor({ timeout: 60_000 });
  await page.waitForFunction(() => !document.querySelector("[data-testid=connection-banner]"), null, { timeout: 60_000 });
  await page.getByRole("link", { name: "New group" }).click();
  await page.getByLabel("Group name").fill("Night shift");
  await page.getByRole("button", { name: "Create group" }).click();
  await page.getByRole("heading", { level: 1, name: "Night shift" }).waitFor({ timeout: 60_000 });
  return new URL(page.url()).pathname.split("/")[2];
}
