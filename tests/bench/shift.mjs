// Benchmark: claiming a shift on a slow phone, from the tap to "Claimed by you" on the claimer's screen and to the card updated on the poster's.
//
// Two phones (the poster, a manager, and a colleague), set up through the
// real screens against a local relay, both with the CPU slowed 4x (as in
// startup.mjs). The manager offers a shift in an operational group; then,
// RUNS times, the colleague taps "I can take this shift" and takes the claim
// back once both screens have shown it. Times are taken in each page with
// `Date.now()` (one machine, one clock): the tap in the claimer's page, and a
// MutationObserver in each page for the card's status. Prints a table and
// writes reports/app-shift.json. Not a test: no figure fails it.
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { startRelay } from "../e2e/harness.mjs";
import { person, choosePasscode, waitLive, invite, joinWith, newGroup, openConversation } from "../e2e/people.mjs";

const RUNS = Number(process.env.HUDDLE_BENCH_RUNS || 10);
const REPORTS = process.env.HUDDLE_REPORTS_DIR || "reports";
const CPU_SLOWDOWN = 4;

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const worst = (xs) => Math.max(...xs);

async function slowCpu(someone) {
  const cdp = await someone.context.newCDPSession(someone.page);
  await cdp.send("Emulation.setCPUThrottlingRate", { rate: CPU_SLOWDOWN });
}

/** Starts watching the card's status in `page` for `pattern`; resolves to
 * the page's `Date.now()` when it first matches. */
function whenStatus(page, pattern) {
  return page.evaluate(
    (source) =>
      new Promise((resolve) => {
        const wanted = new RegExp(source);
        const matches = () =>
          [...document.querySelectorAll("[data-testid=shift-status]")].some((el) => wanted.test(el.textContent));
        if (matches()) return resolve(Date.now());
        const observer = new MutationObserver(() => {
          if (matches()) {
            observer.disconnect();
            resolve(Date.now());
          }
        });
        observer.observe(document.body, { subtree: true, childList: true, characterData: true });
      }),
    pattern.source,
  );
}

/** Resolves to the page's `Date.now()` once the card shows the claim and
 * no longer says it is being sent (the relay has stored it). */
function whenStored(page) {
  return page.evaluate(
    () =>
      new Promise((resolve) => {
        const claimed = () =>
          [...document.querySelectorAll("[data-testid=shift-status]")].some((el) =>
            el.textContent.startsWith("Claimed by you"),
          );
        const sending = () => document.querySelector(".shift-card__sending") !== null;
        const observer = new MutationObserver(() => {
          if (claimed() && !sending()) {
            observer.disconnect();
            resolve(Date.now());
          }
        });
        observer.observe(document.body, { subtree: true, childList: true, characterData: true });
      }),
  );
}

/** Taps a button of the card by its label, in the page; returns the page's `Date.now()` at the tap. */
function tap(page, label) {
  return page.evaluate((label) => {
    const button = [...document.querySelectorAll(".shift-card button")].find((b) => b.textContent.trim() === label);
    const at = Date.now();
    button.click();
    return at;
  }, label);
}

const relay = await startRelay({ args: ["--lock-after-idle-secs", "0"] });
const [mia, ben] = await Promise.all([person("Mia"), person("Ben")]);
try {
  await mia.page.goto(relay.setupLink());
  await mia.page.getByLabel("Name of your care home or team").fill("Rosewood House");
  await mia.page.getByLabel("Your name").fill("Mia Patel");
  await mia.page.getByRole("button", { name: "Set up Huddle" }).click();
  await choosePasscode(mia);
  await waitLive(mia.page);
  const link = await invite(mia, "Ben Okafor");
  await mia.page.getByRole("button", { name: "Back" }).click();
  await joinWith(ben, link);
  await newGroup(mia, "Cover", "Operational", ["Ben Okafor"]);

  await mia.page.getByRole("button", { name: "Offer a shift" }).click();
  await mia.page.getByLabel("Starts").fill("20:00");
  await mia.page.getByLabel("Ends").fill("08:00");
  await mia.page.getByLabel("Role needed").fill("Senior carer");
  await mia.page.getByRole("button", { name: "Offer this shift" }).click();
  await ben.page.getByRole("link", { name: /^Cover/ }).waitFor({ timeout: 60_000 });
  await openConversation(ben.page, "Cover");
  await ben.page.getByRole("button", { name: "I can take this shift" }).waitFor({ timeout: 60_000 });

  await slowCpu(mia);
  await slowCpu(ben);
  const claimer = [];
  const stored = [];
  const poster = [];
  for (let i = 0; i < RUNS; i++) {
    const onBens = whenStatus(ben.page, /^Claimed by you/);
    const onMias = whenStatus(mia.page, /^Claimed by Ben Okafor/);
    const storedOnBens = whenStored(ben.page);
    const tappedAt = await tap(ben.page, "I can take this shift");
    claimer.push((await onBens) - tappedAt);
    stored.push((await storedOnBens) - tappedAt);
    poster.push((await onMias) - tappedAt);
    // Taken back, and both screens open again, before the next run.
    const openOnBens = whenStatus(ben.page, /^Open:/);
    const openOnMias = whenStatus(mia.page, /^Open:/);
    await ben.page.getByRole("button", { name: "Cancel my claim" }).waitFor();
    await tap(ben.page, "Cancel my claim");
    await Promise.all([openOnBens, openOnMias]);
    await ben.page.waitForTimeout(500);
  }

  const rows = [
    ["claim: tap to \"Claimed by you\" on the claimer's phone, median (ms)", median(claimer)],
    ["claim: tap to \"Claimed by you\" on the claimer's phone, worst (ms)", worst(claimer)],
    ["claim: tap to the relay's word that it is stored (\"sending\" gone), median (ms)", median(stored)],
    ["claim: tap to the relay's word that it is stored, worst (ms)", worst(stored)],
    ["claim: tap to the card updated on the poster's phone, median (ms)", median(poster)],
    ["claim: tap to the card updated on the poster's phone, worst (ms)", worst(poster)],
  ];
  console.log(`\nClaiming a shift, ${RUNS} runs, both phones with the CPU ${CPU_SLOWDOWN}x slower, local relay`);
  for (const [label, value] of rows) console.log(`${label.padEnd(82)} ${String(Math.round(value)).padStart(6)}`);
  const figures = Object.fromEntries(rows.map(([label, value]) => [label, Math.round(value)]));
  mkdirSync(REPORTS, { recursive: true });
  writeFileSync(join(REPORTS, "app-shift.json"), JSON.stringify({ runs: RUNS, ...figures }, null, 2) + "\n");
  console.log(`figures written to ${join(REPORTS, "app-shift.json")}`);
} finally {
  await mia.context.close().catch(() => {});
  await ben.context.close().catch(() => {});
  await relay.stop();
}
