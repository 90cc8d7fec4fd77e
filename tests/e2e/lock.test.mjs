// End-to-end: the passcode lock. A passcode chosen at joining; a reopened app that shows nothing but its lock screen; locking after idleness and time hidden; a canary scan of memory and disk after a lock; ten wrong passcodes that wipe the phone; and a copied profile that opens nothing once its phone is signed out.
import { test, before, after, afterEach } from "node:test";
import assert from "node:assert/strict";
import { cpSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { startRelay, ARTIFACTS, relayQuery as relayQueryOf } from "./harness.mjs";
import { person, waitLive, choosePasscode, unlock, passcodeOf, leftInBrowser, NOTHING_LEFT, memoryHolds, markersIn } from "./people.mjs";

// Short limits, so that the test need not wait two minutes.
const IDLE_SECS = 8;
const HIDDEN_SECS = 2;

let relay;
let mia;
const others = [];

const shot = (who, name) => who.page.screenshot({ path: join(ARTIFACTS, `${name}.png`) });
const lockHeading = (page) => page.getByRole("heading", { level: 1, name: "Huddle is locked" });

/** Unlocks `someone` if the app has locked itself meanwhile. */
async function awake(someone) {
  if (await lockHeading(someone.page).isVisible()) await unlock(someone);
}

/** One value from the relay's SQLite database. */
const relayQuery = (sql) => relayQueryOf(relay, sql);

async function invite(name) {
  await awake(mia);
  await mia.page.getByRole("link", { name: "Invite someone" }).click();
  await mia.page.getByLabel("Their name").fill(name);
  await mia.page.getByRole("button", { name: "Create invite" }).click();
  const link = await mia.page.getByTestId("invite-link").inputValue();
  await mia.page.getByRole("button", { name: "Back" }).click();
  return link;
}

async function joinAs(name, link) {
  const someone = await person(name);
  others.push(someone);
  await someone.page.goto(link);
  await someone.page.getByRole("button", { name: "Join" }).click();
  await choosePasscode(someone);
  await waitLive(someone.page);
  return someone;
}

/** Nothing of the team shows on a locked screen. */
async function assertShowsNothing(page) {
  const text = await page.locator("body").innerText();
  for (const secret of ["Rosewood", "Mia", "Patel", "Conversations"]) {
    assert.ok(!text.includes(secret), `the lock screen shows no "${secret}": ${text}`);
  }
  assert.equal(await page.locator(".app-bar").count(), 0, "no app bar");
}

before(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  relay = await startRelay({
    args: ["--lock-after-idle-secs", String(IDLE_SECS), "--lock-after-hidden-secs", String(HIDDEN_SECS)],
  });
  mia = await person("Mia");
});

afterEach(async () => {
  const dir = join(tmpdir(), "huddle-e2e-steps");
  mkdirSync(dir, { recursive: true });
  await mia?.page.screenshot({ path: join(dir, `lock-mia.png`) }).catch(() => {});
});

after(async () => {
  for (const someone of [mia, ...others]) await someone?.context.close().catch(() => {});
  await relay?.stop();
});

test("a passcode is chosen before the conversation list, and easy or mistyped ones are refused", async () => {
  await mia.page.goto(relay.setupLink());
  await mia.page.getByLabel("Name of your care home or team").fill("Rosewood House");
  await mia.page.getByLabel("Your name").fill("Mia Patel");
  await mia.page.getByRole("button", { name: "Set up Huddle" }).click();
  await mia.page.getByRole("heading", { level: 1, name: "Choose a passcode" }).waitFor({ timeout: 30_000 });
  await mia.page.getByText("If your browser offers to save it, choose Never").waitFor();
  await shot(mia, "passcode-choose-360");
  const page = mia.page;
  await page.getByLabel("Passcode", { exact: true }).fill("123456");
  await page.getByLabel("Type it again").fill("123456");
  await page.getByRole("button", { name: "Save passcode" }).click();
  await page.getByRole("alert").filter({ hasText: "first things anyone tries" }).waitFor();
  await page.getByLabel("Passcode", { exact: true }).fill(passcodeOf(mia));
  await page.getByLabel("Type it again").fill("582910");
  await page.getByRole("button", { name: "Save passcode" }).click();
  await page.getByRole("alert").filter({ hasText: "not the same" }).waitFor();
  await choosePasscode(mia);
  await waitLive(mia.page);
  // The relay keeps the share and the verifier; the phone keeps no data key
  // beside its data any more.
  assert.equal(relayQuery("select count(*) from passcode_locks"), "1");
  const kept = await page.evaluate(
    () =>
      new Promise((resolve) => {
        const open = indexedDB.open("huddle");
        open.onsuccess = () => {
          const get = open.result.transaction("keys").objectStore("keys").count();
          get.onsuccess = () => {
            resolve(get.result);
            open.result.close();
          };
        };
      }),
  );
  assert.equal(kept, 0, "no data key is kept beside the data");
});

test("reopened, Huddle shows only its lock screen; a wrong passcode is counted and the right one opens it", async () => {
  await mia.page.reload();
  await lockHeading(mia.page).waitFor({ timeout: 30_000 });
  await assertShowsNothing(mia.page);
  await shot(mia, "lock-360");
  await mia.page.getByLabel("Passcode", { exact: true }).fill("000111");
  await mia.page.getByRole("button", { name: "Unlock" }).click();
  await mia.page.getByRole("alert").filter({ hasText: "9 tries left before this phone is wiped" }).waitFor();
  await shot(mia, "lock-wrong-360");
  await unlock(mia);
  await waitLive(mia.page);
});

test("without a touch for a while, or hidden for a while, Huddle locks and leaves nothing on screen", async () => {
  await awake(mia);
  // Idle: nobody touches the phone.
  await lockHeading(mia.page).waitFor({ timeout: (IDLE_SECS + 10) * 1000 });
  await assertShowsNothing(mia.page);
  await unlock(mia);
  // Hidden: another app is in front for longer than allowed.
  await mia.page.evaluate(() => {
    Object.defineProperty(document, "hidden", { value: true, configurable: true });
    document.dispatchEvent(new Event("visibilitychange"));
  });
  await lockHeading(mia.page).waitFor({ timeout: (HIDDEN_SECS + 10) * 1000 });
  await assertShowsNothing(mia.page);
  await unlock(mia);
});

test("after a lock, neither the page nor its crypto worker holds the team's names or the passcode, in memory or on disk", async () => {
  await awake(mia);
  await waitLive(mia.page);
  const needles = ["Rosewood House", "Mia Patel", passcodeOf(mia)];
  // The scan finds what the open app holds: it can see into both.
  const open = await memoryHolds(mia, needles);
  assert.ok(open.page.wasm.bytes > 0, "the page's WebAssembly memory is scanned");
  assert.ok(open.workers.some((w) => w.wasm.bytes > 0), "the crypto worker's is scanned");
  const seenOpen = new Set([...open.page.wasm.found, ...open.page.heap]);
  assert.ok(seenOpen.has("Rosewood House") && seenOpen.has("Mia Patel"), `the open app holds the team: ${[...seenOpen]}`);
  // Nobody touches the phone; it locks.
  await lockHeading(mia.page).waitFor({ timeout: (IDLE_SECS + 10) * 1000 });
  await mia.page.getByRole("button", { name: "Unlock" }).waitFor();
  const locked = await memoryHolds(mia, needles);
  assert.ok(locked.workers.length >= 1, "the lock screen's crypto worker is scanned too");
  assert.deepEqual(locked.page.wasm.found, [], "the page's WebAssembly memory holds none of it");
  assert.deepEqual(locked.page.heap, [], "the page's JavaScript heap holds none of it");
  for (const worker of locked.workers) {
    assert.deepEqual(worker.wasm.found, [], "the crypto worker's memory holds none of it");
    assert.deepEqual(worker.heap, [], "the crypto worker's heap holds none of it");
  }
  // Nor does the phone's browser profile, on disk.
  assert.deepEqual(markersIn(mia.profileDir, needles), [], "the locked phone's profile holds none of it");
  await unlock(mia);
});

test("ten wrong passcodes wipe the phone, and the relay destroys its share", async () => {
  const ben = await joinAs("Ben", await invite("Ben Okafor"));
  assert.equal(relayQuery("select count(*) from passcode_locks"), "2");
  await ben.page.reload();
  for (let left = 9; left >= 1; left--) {
    await lockHeading(ben.page).waitFor();
    await ben.page.getByLabel("Passcode", { exact: true }).fill(`90${left}417`);
    await ben.page.getByRole("button", { name: "Unlock" }).click();
    const said = left === 1 ? "One more wrong try" : `${left} tries left`;
    await ben.page.getByRole("alert").filter({ hasText: said }).waitFor({ timeout: 30_000 });
  }
  await ben.page.getByLabel("Passcode", { exact: true }).fill("904170");
  await ben.page.getByRole("button", { name: "Unlock" }).click();
  await ben.page.getByRole("heading", { name: "This phone has been signed out" }).waitFor({ timeout: 30_000 });
  await ben.page.getByText("The wrong passcode was entered ten times").waitFor();
  await ben.page.getByText("Everything Huddle kept on it has been deleted.").waitFor();
  await shot(ben, "lock-wiped-360");
  assert.deepEqual(await leftInBrowser(ben.page), NOTHING_LEFT, "nothing is left on Ben's phone");
  assert.equal(relayQuery("select count(*) from passcode_locks"), "1", "Ben's share is destroyed");
  assert.equal(relayQuery("select count(*) from audit where action like '%ten wrong passcodes%'"), "1");
});

test("a copy of a locked phone's profile opens nothing once the phone is signed out", async () => {
  const cara = await joinAs("Cara", await invite("Cara Jones"));
  // Someone copies Cara's browser profile while the phone is locked.
  await cara.context.close();
  const copyDir = mkdtempSync(join(tmpdir(), "huddle-e2e-copy-"));
  cpSync(cara.profileDir, copyDir, { recursive: true });
  rmSync(join(copyDir, "SingletonLock"), { force: true });
  // Her manager signs the lost phone out.
  await awake(mia);
  await mia.page.getByRole("link", { name: "Team" }).click();
  await mia.page.locator(".person-row", { hasText: "Cara Jones" }).getByRole("button", { name: "Sign them out" }).click();
  await mia.page.getByRole("button", { name: "Sign out and wipe" }).click();
  await mia.page.getByRole("button", { name: "Back" }).click();
  // The copy, opened with the right passcode, learns it was signed out, and
  // wipes itself: the relay no longer holds the share that opens it.
  const copy = await person("Copy", {}, copyDir);
  copy.name = "Cara";
  others.push(copy);
  await copy.page.goto(relay.url);
  await lockHeading(copy.page).waitFor({ timeout: 30_000 });
  await assertShowsNothing(copy.page);
  await copy.page.getByLabel("Passcode", { exact: true }).fill(passcodeOf(copy));
  await copy.page.getByRole("button", { name: "Unlock" }).click();
  await copy.page.getByRole("heading", { name: "This phone has been signed out" }).waitFor({ timeout: 30_000 });
  await copy.page.getByText("Everything Huddle kept on it has been deleted.").waitFor();
  assert.deepEqual(await leftInBrowser(copy.page), NOTHING_LEFT, "nothing is left on the copy");
  assert.equal(relayQuery("select count(*) from passcode_locks"), "1", "only Mia's lock is left");
  // It proved, with Cara's lock key, that it was her phone: her manager
  // sees it wiped (as Ben's, by his ten wrong passcodes).
  assert.equal(relayQuery("select count(*) from devices where wiped_at is not null"), "2");
  await awake(mia);
  await mia.page.getByRole("link", { name: "Team" }).click();
  const signedOut = mia.page.getByRole("list", { name: "Signed out" });
  for (const name of ["Cara Jones", "Ben Okafor"]) {
    await signedOut.locator("li", { hasText: name }).getByText(/Told to wipe itself \d\d:\d\d\.$/).waitFor({ timeout: 15_000 });
  }
  await mia.page.getByRole("button", { name: "Back" }).click();
});
