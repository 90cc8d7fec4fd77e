// Benchmark: how fast Huddle starts on a slow phone: a cold first visit, and a warm start from the home screen.
//
// Headless Chromium with slow 4G (150 ms round trip, 1.6 Mbit/s down) and
// the CPU slowed 4x. The app marks its own milestones on the performance
// timeline: `huddle:first-screen` (the first usable screen of a phone that
// is not set up: the welcome page, or the join form of an invite link) and
// `huddle:list-painted` (the conversation list painted from the cache,
// before the crypto worker has loaded). Prints a table and writes
// reports/app-startup.json. Not a test: no figure fails it.
import { writeFileSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { startRelay } from "../e2e/harness.mjs";
import { launch, setUpWithGroup } from "./phone.mjs";

const RUNS = Number(process.env.HUDDLE_BENCH_RUNS || 5);
const REPORTS = process.env.HUDDLE_REPORTS_DIR || "reports";
const SLOW_4G = { offline: false, latency: 150, downloadThroughput: (1.6e6 / 8) | 0, uploadThroughput: (750e3 / 8) | 0 };

async function throttle(context, page) {
  const cdp = await context.newCDPSession(page);
  await cdp.send("Network.enable");
  await cdp.send("Network.emulateNetworkConditions", SLOW_4G);
  await cdp.send("Emulation.setCPUThrottlingRate", { rate: 4 });
}

/** Milliseconds from navigation start to the named mark. */
async function markTime(page, name) {
  await page.waitForFunction((name) => performance.getEntriesByName(name).length > 0, name, { timeout: 60_000 });
  return page.evaluate((name) => performance.getEntriesByName(name)[0].startTime, name);
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const relay = await startRelay();
try {
  // Cold: a phone that has never opened Huddle.
  const cold = [];
  for (let i = 0; i < RUNS; i++) {
    const { dir, context } = await launch();
    const page = context.pages()[0] ?? (await context.newPage());
    await throttle(context, page);
    await page.goto(relay.url);
    cold.push(await markTime(page, "huddle:first-screen"));
    await context.close();
    rmSync(dir, { recursive: true, force: true });
  }

  // Cold, from an invite link: how most people first meet Huddle (the
  // secret is checked only when the form is sent).
  const coldInvite = [];
  for (let i = 0; i < RUNS; i++) {
    const { dir, context } = await launch();
    const page = context.pages()[0] ?? (await context.newPage());
    await throttle(context, page);
    await page.goto(`${relay.url}/join#${"5a".repeat(32)}.${"6b".repeat(48)}.${"7c".repeat(16)}`);
    coldInvite.push(await markTime(page, "huddle:first-screen"));
    await page.getByRole("button", { name: "Join" }).waitFor();
    await context.close();
    rmSync(dir, { recursive: true, force: true });
  }

  // Warm: a phone that has joined, with a conversation, opened again.
  const { dir, context } = await launch();
  const setup = context.pages()[0] ?? (await context.newPage());
  await setUpWithGroup(setup, relay);
  await setup.getByLabel("Message", { exact: true }).fill("Who can cover Sunday night?");
  await setup.getByRole("button", { name: "Send", exact: true }).click();
  await setup.locator("[data-state=Sent]").first().waitFor({ timeout: 60_000 });
  await setup.close();
  const warm = [];
  for (let i = 0; i < RUNS; i++) {
    const page = await context.newPage();
    await throttle(context, page);
    await page.goto(relay.url);
    warm.push(await markTime(page, "huddle:list-painted"));
    await page.close();
  }
  await context.close();
  rmSync(dir, { recursive: true, force: true });

  let critical = null;
  try {
    const sizes = JSON.parse(readFileSync(join(REPORTS, "size.json"), "utf8"));
    critical = sizes.critical_path_brotli_bytes ?? null;
  } catch {
    // no size report yet
  }
  const figures = {
    conditions: "slow 4G (150 ms RTT, 1.6 Mbit/s), CPU 4x slower, headless Chromium",
    runs: RUNS,
    cold_first_screen_ms: Math.round(median(cold)),
    cold_invite_first_screen_ms: Math.round(median(coldInvite)),
    warm_list_painted_ms: Math.round(median(warm)),
    cold_samples_ms: cold.map(Math.round),
    cold_invite_samples_ms: coldInvite.map(Math.round),
    warm_samples_ms: warm.map(Math.round),
    critical_path_brotli_bytes: critical,
  };
  console.log(`
| start-up (median of ${RUNS}; ${figures.conditions}) | ms | budget |
| --- | --- | --- |
| cold first visit to the first usable screen | ${figures.cold_first_screen_ms} | 1500 |
| cold first visit from an invite link to the join form | ${figures.cold_invite_first_screen_ms} | 1500 |
| warm start to the conversation list painted from cache | ${figures.warm_list_painted_ms} | 800 |
`);
  writeFileSync(join(REPORTS, "app-startup.json"), JSON.stringify(figures, null, 2) + "\n");
  console.log(`figures written to ${join(REPORTS, "app-startup.json")}`);
} finally {
  await relay.stop();
}
