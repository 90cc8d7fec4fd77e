// End-to-end: the app shell renders without errors or CSP violations, installs its service worker, and opens offline.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { startRelay, launchBrowser, watchProblems, ARTIFACTS } from "./harness.mjs";

let relay;
let browser;

before(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  relay = await startRelay();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await relay?.stop();
});

test("the shell renders, passes its checks, and opens again offline", async () => {
  const context = await browser.newContext({ viewport: { width: 360, height: 740 }, deviceScaleFactor: 2 });
  const page = await context.newPage();
  const problems = watchProblems(page);
  await page.addInitScript(() => {
    window.__cspViolations = [];
    document.addEventListener("securitypolicyviolation", (e) =>
      window.__cspViolations.push(`${e.violatedDirective} ${e.blockedURI}`),
    );
  });

  await page.goto(relay.url, { waitUntil: "load" });
  await page.getByRole("heading", { name: "Secure messaging for your care team" }).waitFor();
  // The app has replaced the static shell: its check list is there.
  await page.getByRole("heading", { name: "This phone" }).waitFor({ timeout: 30_000 });
  for (const ready of [
    "Ready: Huddle will open even with no signal.",
    "Ready: messages are encrypted with AES-256.",
    "Ready: Huddle can keep your conversations on this phone.",
  ]) {
    await page.getByText(ready).waitFor({ timeout: 60_000 });
  }

  // The service worker is installed and controls the page.
  await page.evaluate(async () => {
    await navigator.serviceWorker.ready;
    if (!navigator.serviceWorker.controller) {
      await new Promise((resolve) => navigator.serviceWorker.addEventListener("controllerchange", resolve));
    }
  });
  assert.ok(await page.evaluate(() => !!navigator.serviceWorker.controller), "service worker controls the page");
  await page.screenshot({ path: `${ARTIFACTS}welcome-360.png`, fullPage: true });

  // Offline, a reload still shows the app.
  await context.setOffline(true);
  await page.reload({ waitUntil: "load" });
  await page.getByRole("heading", { name: "Secure messaging for your care team" }).waitFor();
  await page.getByText("Ready: messages are encrypted with AES-256.").waitFor({ timeout: 60_000 });
  await context.setOffline(false);

  assert.deepEqual(await page.evaluate(() => window.__cspViolations), [], "no CSP violations");
  assert.deepEqual(problems, [], "no console errors");
  await context.close();
});
