// End-to-end: membership that ends and is reviewed (and joining that never waits on a browser's storage prompt). An agency worker invited until a time is signed out, wiped and taken out of her group when it comes, with nobody touching anything; and a group's review falls due, and the manager keeps one colleague and removes another.
import { test, before, after, afterEach } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { startRelay, ARTIFACTS } from "./harness.mjs";
import {
  person,
  waitLive,
  openConversation,
  send,
  waitForMessage,
  backToList,
  choosePasscode,
  reopen,
  leftInBrowser,
  NOTHING_LEFT,
  invite,
  joinWith,
  newGroup,
} from "./people.mjs";

// A group's members fall due for review this long after it was made (or
// last reviewed), instead of 90 days.
const REVIEW_SECS = 45;

let relay;
let mia; // the manager
let ben;
let cara;
const said = [];
const say = (text) => {
  said.push(text);
  return text;
};
const shot = (who, name) => who.page.screenshot({ path: join(ARTIFACTS, `${name}.png`) });

/** Back to the conversation list, from wherever the page is. */
async function home(someone) {
  await reopen(someone);
  await waitLive(someone.page);
}

before(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  relay = await startRelay({
    args: ["--lock-after-idle-secs", "0", "--membership-review-secs", String(REVIEW_SECS)],
  });
  [mia, ben, cara] = await Promise.all([person("Mia"), person("Ben"), person("Cara")]);
});

let step = 0;
afterEach(async () => {
  step += 1;
  const dir = join(tmpdir(), "huddle-e2e-steps");
  mkdirSync(dir, { recursive: true });
  for (const someone of [mia, ben, cara]) {
    await someone?.page
      .screenshot({ path: join(dir, `membership-${step}-${someone.name}.png`), fullPage: true })
      .catch(() => {});
  }
  writeFileSync(join(dir, "membership-relay.log"), relay?.output() ?? "");
});

after(async () => {
  for (const someone of [mia, ben, cara]) await someone?.context.close().catch(() => {});
  await relay?.stop();
});

test("the manager sets up the home and two colleagues join", async () => {
  await mia.page.goto(relay.setupLink());
  await mia.page.getByLabel("Name of your care home or team").fill("Rosewood House");
  await mia.page.getByLabel("Your name").fill("Mia Patel");
  await mia.page.getByRole("button", { name: "Set up Huddle" }).click();
  await choosePasscode(mia);
  await waitLive(mia.page);
  const forBen = await invite(mia, "Ben Okafor");
  await mia.page.getByRole("button", { name: "Back" }).click();
  const forCara = await invite(mia, "Cara Jones");
  await mia.page.getByRole("button", { name: "Back" }).click();
  await joinWith(ben, forBen);
  // A browser that asks the person before keeping storage (Firefox does)
  // leaves the request unanswered: joining never waits for it.
  let asked = 0;
  await cara.context.exposeFunction("persistAsked", () => {
    asked += 1;
  });
  await cara.context.addInitScript(() => {
    if (navigator.storage) {
      navigator.storage.persist = () => {
        window.persistAsked();
        return new Promise(() => {});
      };
    }
  });
  await joinWith(cara, forCara);
  assert.equal(new URL(cara.page.url()).hash, "", "the invite left the address bar");
  assert.ok(asked >= 1, "the app did ask to keep its storage");
});

test("an agency worker's access ends at the time set on her invite: she is signed out, taken out of her groups, and receives nothing after it", async () => {
  await home(mia);
  // Her end, two to three minutes ahead on the manager's own clock and calendar.
  const end = await mia.page.evaluate(() => {
    const at = new Date(Date.now() + 120_000);
    at.setSeconds(0, 0);
    at.setMinutes(at.getMinutes() + 1);
    const two = (n) => String(n).padStart(2, "0");
    return {
      at: at.getTime(),
      day: `${at.getFullYear()}-${two(at.getMonth() + 1)}-${two(at.getDate())}`,
      time: `${two(at.getHours())}:${two(at.getMinutes())}`,
    };
  });
  await mia.page.getByRole("link", { name: "Invite someone" }).click();
  await mia.page.getByLabel("Their name").fill("Ama Mensah");
  await mia.page.getByRole("checkbox", { name: /Agency or bank staff/ }).check();
  // An end already past is refused where it was typed, and nothing is made.
  await mia.page.getByLabel("On", { exact: true }).fill("2020-01-01");
  await mia.page.getByLabel("At", { exact: true }).fill(end.time);
  await mia.page.getByRole("button", { name: "Create invite" }).click();
  await mia.page.getByRole("alert").filter({ hasText: "That time has passed" }).waitFor();
  assert.equal(await mia.page.getByTestId("invite-link").count(), 0);
  await mia.page.getByLabel("On", { exact: true }).fill(end.day);
  await mia.page.getByRole("button", { name: "Create invite" }).click();
  const forAma = await mia.page.getByTestId("invite-link").inputValue();
  await mia.page.getByTestId("invite-access-ends").filter({ hasText: `at ${end.time}` }).waitFor();
  await shot(mia, "invite-agency-360");
  const ama = await person("Ama");
  try {
    await joinWith(ama, forAma);
    // The team list tells the manager when her access ends.
    await mia.page.getByRole("button", { name: "Back" }).click();
    await mia.page.getByRole("link", { name: "Team" }).click();
    await mia.page
      .locator(".person-row", { hasText: "Ama Mensah" })
      .getByText(new RegExp(`access ends .*at ${end.time}`))
      .waitFor({ timeout: 15_000 });
    await shot(mia, "team-agency-360");
    await home(mia);

    await newGroup(mia, "Weekend cover", "Operational", ["Ben Okafor", "Cara Jones", "Ama Mensah"]);
    const before = say("Ama, can you cover Saturday's late?");
    await send(mia.page, before);
    await openConversation(ama.page, "Weekend cover");
    await waitForMessage(ama.page, before);
    assert.ok(Date.now() < end.at, "all of this happened before her end");

    // At her end, with nobody touching anything: her phone is signed out
    // and wiped, and a colleague's phone takes her out of the group.
    await ama.page
      .getByRole("heading", { name: "This phone has been signed out" })
      .waitFor({ timeout: end.at - Date.now() + 60_000 });
    assert.ok(Date.now() >= end.at - 1_000, "not before her end");
    assert.deepEqual(await leftInBrowser(ama.page), NOTHING_LEFT, "nothing is left on Ama's phone");
    await openConversation(ben.page, "Weekend cover");
    await ben.page.getByRole("link", { name: "People in this conversation" }).click();
    await ben.page.waitForFunction(
      () => document.querySelectorAll('ul[aria-label="Members"] > li').length === 3,
      null,
      { timeout: 30_000 },
    );
    assert.doesNotMatch(await ben.page.getByRole("list", { name: "Members" }).innerText(), /Ama/);
    await ben.page.getByRole("button", { name: "Back" }).click();

    // What is said after her end reaches Ben, and never her phone: it
    // cannot sign in again.
    const after = say("Saturday's late is covered");
    await mia.page.getByRole("heading", { level: 1, name: "Weekend cover" }).waitFor();
    await send(mia.page, after);
    await waitForMessage(ben.page, after);
    await ama.page.goto(new URL("/", ama.page.url()).href);
    await ama.page.waitForTimeout(3_000);
    assert.ok(!(await ama.page.content()).includes(after), "Ama's phone never shows it");
    await backToList(ben.page);

    // The audit log says the relay ended her access, and when.
    await home(mia);
    await mia.page.getByRole("link", { name: "Team" }).click();
    await mia.page.getByRole("link", { name: "Audit log" }).click();
    await mia.page.getByText("access ended").first().waitFor({ timeout: 15_000 });
    await home(mia);
  } finally {
    await ama.context.close().catch(() => {});
  }
});

test("a group's review falls due: the manager keeps one colleague and removes another, and the review is recorded", async () => {
  await home(mia);
  // "Weekend cover" was made more than REVIEW_SECS ago: its review is due.
  const prompt = mia.page.getByTestId("reviews-due");
  await prompt.getByRole("heading", { name: "Review who is in Weekend cover" }).waitFor({ timeout: 30_000 });
  await prompt.getByText("Never reviewed").waitFor();
  await shot(mia, "review-due-360");
  // Staff are never asked.
  await home(ben);
  assert.equal(await ben.page.getByTestId("reviews-due").count(), 0, "no review prompt for staff");

  await prompt.getByRole("link", { name: "Review members" }).click();
  const review = mia.page.getByTestId("review");
  await review.getByRole("heading", { name: "Review who is in this group" }).waitFor();
  const finish = review.getByRole("button", { name: "Finish review" });
  assert.ok(await finish.isDisabled(), "not finished before each person is kept or removed");
  const row = (name) => mia.page.getByRole("list", { name: "Members" }).locator(".person-row", { hasText: name });
  await row("Ben Okafor").getByRole("button", { name: "Keep" }).click();
  assert.equal(await row("Ben Okafor").getByRole("button", { name: "Kept" }).getAttribute("aria-pressed"), "true");
  assert.ok(await finish.isDisabled(), "Cara is still to be decided");
  await shot(mia, "review-members-360");
  await row("Cara Jones").getByRole("button", { name: "Remove", exact: true }).click();
  await row("Cara Jones").getByRole("button", { name: "Remove from group" }).click();
  await mia.page.getByText("Removed.").waitFor({ timeout: 30_000 });
  await mia.page.waitForFunction(
    () => document.querySelectorAll('ul[aria-label="Members"] > li').length === 2,
    null,
    { timeout: 30_000 },
  );
  await finish.click();
  await mia.page.getByRole("status").filter({ hasText: "Review recorded. The next one is due on" }).waitFor({ timeout: 15_000 });
  assert.equal(await mia.page.getByTestId("review").count(), 0, "the review is done");
  await cara.page.getByText("You are no longer in this conversation").first().waitFor({ timeout: 30_000 });

  // The list no longer asks, and the audit log has the review.
  await home(mia);
  await mia.page.getByRole("heading", { level: 1, name: "Conversations" }).waitFor();
  assert.equal(await mia.page.getByTestId("reviews-due").count(), 0, "no review due now");
  await mia.page.getByRole("link", { name: "Team" }).click();
  await mia.page.getByRole("link", { name: "Audit log" }).click();
  await mia.page.getByText("membership reviewed").first().waitFor({ timeout: 15_000 });
  const lines = await mia.page.getByRole("list", { name: "Audit log" }).innerText();
  assert.match(lines, /Weekend cover.{0,3}: 2 kept, 1 removed/);
  await home(mia);
  for (const someone of [mia, ben, cara]) assert.deepEqual(someone.problems(), [], `${someone.name}: no console errors`);
});
