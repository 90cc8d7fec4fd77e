// End-to-end: a manager and two colleagues, each on their own phone (browser profile), use Huddle through the relay.
//
// First run, invites, a group, messages both ways, a one-to-one chat, a
// removal, offline writing (also across a relay restart), expiry on every
// device and on the relay, the patient-data warning, the blur when hidden,
// a part of the app that cannot be fetched on bad Wi-Fi, and finally scans
// for plaintext in every browser profile, the relay's database and its log.
import { test, before, after, afterEach } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { startRelay, ARTIFACTS, relayQuery } from "./harness.mjs";
import {
  person,
  waitLive,
  openConversation,
  send,
  messageTexts,
  waitForMessage,
  backToList,
  markersIn,
  qrOnScreen,
  showToCamera,
  choosePasscode,
  reopen,
  leftInBrowser,
  NOTHING_LEFT,
  invite,
  joinWith,
  newGroup,
} from "./people.mjs";

// The app locks after two minutes without a touch; here people wait longer
// than that for messages to expire, so only the lock's own tests
// (lock.test.mjs) use it.
// Urgent broadcasts remind and alert after seconds here, not minutes.
const REMINDER_SECS = 6;
const ALERT_SECS = 12;
const RELAY_ARGS = [
  "--lock-after-idle-secs",
  "0",
  "--broadcast-reminder-secs",
  String(REMINDER_SECS),
  "--broadcast-alert-secs",
  String(ALERT_SECS),
];

// Every text the tests write is recorded, so that the scans at the end can
// look for all of them.
const said = [];
const say = (text) => {
  said.push(text);
  return text;
};

// Clinical groups keep messages for at least 5 minutes: the expiry message
// is sent early, and checked at the end.
const EXPIRY_MS = 5 * 60 * 1000;

let relay;
let mia; // the manager
let ben;
let cara;
let expiring; // { text, group, sentAt }
const earlierLogs = []; // the relay's output before a restart

const shot = (who, name) => who.page.screenshot({ path: join(ARTIFACTS, `${name}.png`) });

/**
 * How many records the page's IndexedDB holds in each of `stores`; with a
 * `group`, how many of that group's messages (through the messages index).
 */
function storedCounts(page, stores, group = null) {
  return page.evaluate(
    ([stores, group]) =>
      new Promise((resolve, reject) => {
        const open = indexedDB.open("huddle");
        open.onerror = () => reject(open.error);
        open.onsuccess = () => {
          const db = open.result;
          const tx = db.transaction(stores);
          const counts = stores.map((name) =>
            group === null ? tx.objectStore(name).count() : tx.objectStore(name).index("by_group").count(group),
          );
          tx.oncomplete = () => {
            resolve(counts.map((count) => count.result));
            db.close();
          };
          tx.onerror = () => reject(tx.error);
        };
      }),
    [stores, group],
  );
}

/** How many messages of `group` the page's IndexedDB holds. */
const cachedCount = async (page, group) => (await storedCounts(page, ["messages"], group))[0];

/** How many items wait in the page's outbox (each holds its text until the relay stores it). */
const outboxCount = async (page) => (await storedCounts(page, ["outbox"]))[0];

/** Application entries of `group` in the relay's SQLite database. */
function relayEntries(group) {
  const script =
    "import sqlite3,sys\n" +
    "c=sqlite3.connect(sys.argv[1])\n" +
    "print(c.execute(\"select count(*) from log where group_id=? and kind<>'commit'\",(bytes.fromhex(sys.argv[2]),)).fetchone()[0])";
  const out = execFileSync("python3", ["-c", script, join(relay.dataDir, "huddle.db"), group]);
  return Number(out.toString().trim());
}

before(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  relay = await startRelay({ args: RELAY_ARGS });
  [mia, ben, cara] = await Promise.all([person("Mia"), person("Ben"), person("Cara")]);
});

// Each person's screen after each step, for reading a failure.
let step = 0;
afterEach(async () => {
  step += 1;
  const dir = join(tmpdir(), "huddle-e2e-steps");
  mkdirSync(dir, { recursive: true });
  for (const someone of [mia, ben, cara]) {
    await someone?.page
      .screenshot({ path: join(dir, `${step}-${someone.name}.png`), fullPage: true })
      .catch(() => {});
    if (someone) writeFileSync(join(dir, `${someone.name}.console.txt`), someone.consoleLines().join("\n"));
  }
  // The relay's log so far (it holds no message content: the scan checks).
  writeFileSync(join(dir, "relay.log"), earlierLogs.join("") + (relay?.output() ?? ""));
});

after(async () => {
  for (const someone of [mia, ben, cara]) await someone?.context.close().catch(() => {});
  await relay?.stop();
});

test("the manager sets up the home and invites two colleagues, who join", async () => {
  const link = relay.setupLink();
  assert.ok(link, "the relay printed a first-run link");
  await mia.page.goto(link);
  await mia.page.getByLabel("Name of your care home or team").fill("Rosewood House");
  await mia.page.getByLabel("Your name").fill("Mia Patel");
  await mia.page.getByRole("button", { name: "Set up Huddle" }).click();
  await choosePasscode(mia);
  await waitLive(mia.page);
  assert.equal(new URL(mia.page.url()).hash, "", "the secret left the address bar");

  const forBen = await invite(mia, "Ben Okafor");
  await shot(mia, "invite-360");
  await mia.page.getByRole("button", { name: "Back" }).click();
  const forCara = await invite(mia, "Cara Jones");
  await mia.page.getByRole("button", { name: "Back" }).click();
  await joinWith(ben, forBen);
  await joinWith(cara, forCara);

  // A used invite is refused with its reason, and nothing changes.
  const stranger = await person("Stranger");
  await stranger.page.goto(forBen);
  await stranger.page.getByRole("button", { name: "Join" }).click();
  await stranger.page.getByRole("alert").filter({ hasText: "already been used" }).waitFor();
  await stranger.context.close();
});

test("a group: messages both ways, live, with the type always in view", async () => {
  // The expiry group first: its messages must outlive the rest of the run.
  const handover = await newGroup(mia, "Handover", "Clinical", ["Ben Okafor", "Cara Jones"], "5 minutes");
  const text = say("Room 4 needs a check at 2am");
  await send(mia.page, text);
  await waitForMessage(mia.page, text);
  expiring = { text, group: handover, sentAt: Date.now() };
  await backToList(mia.page);

  await newGroup(mia, "Night shift", "Operational", ["Ben Okafor", "Cara Jones"]);
  await mia.page.locator(".conversation-head .kind", { hasText: "Operational" }).waitFor();
  const question = say("Who can cover Sunday night?");
  await send(mia.page, question);
  await mia.page.locator("[data-state=Sent]").first().waitFor({ timeout: 30_000 });

  for (const colleague of [ben, cara]) {
    await colleague.page.getByRole("link", { name: /^Night shift/ }).waitFor({ timeout: 30_000 });
    await openConversation(colleague.page, "Night shift");
    await waitForMessage(colleague.page, question);
  }
  const answer = say("I can do Sunday");
  await send(ben.page, answer);
  await waitForMessage(mia.page, answer);
  await waitForMessage(cara.page, answer);
  assert.deepEqual(await messageTexts(cara.page), [question, answer]);
  await shot(mia, "conversation-360");

  // The expiring message reached everyone too.
  await backToList(cara.page);
  await openConversation(cara.page, "Handover");
  await waitForMessage(cara.page, expiring.text);
  await backToList(cara.page);
  await shot(cara, "conversations-360");
});

test("the composer warns before sending what looks like patient details", async () => {
  const risky = say("Mrs B NHS 943 476 5919 fell");
  await mia.page.getByLabel("Message", { exact: true }).fill(risky);
  await mia.page.getByRole("button", { name: "Send", exact: true }).click();
  const warning = mia.page.getByRole("alertdialog");
  await warning.filter({ hasText: "an NHS number" }).waitFor();
  await shot(mia, "patient-data-warning-360");
  await mia.page.getByRole("button", { name: "Edit message" }).click();
  assert.equal(await mia.page.getByLabel("Message", { exact: true }).inputValue(), risky, "the text is kept");
  const safer = say("Room 4 resident fell, see the care record");
  await mia.page.getByLabel("Message", { exact: true }).fill(safer);
  await mia.page.getByRole("button", { name: "Send", exact: true }).click();
  await waitForMessage(ben.page, safer);
  assert.ok(!(await messageTexts(ben.page)).includes(risky), "the risky text was never sent");
});

test("read receipts: a message goes from sent to delivered to read as the others open the conversation", async () => {
  // Ben and Cara are looking at their lists; Mia writes in Night shift.
  for (const colleague of [ben, cara]) {
    const heading = await colleague.page.getByRole("heading", { level: 1 }).textContent();
    if (heading !== "Conversations") await backToList(colleague.page);
  }
  const text = say("Lift engineer arrives at 10");
  await send(mia.page, text);
  const mine = mia.page.getByTestId("message").filter({ hasText: text });
  const summary = mine.getByTestId("readers-summary");
  // On both phones, read by nobody yet.
  await summary.filter({ hasText: "Delivered to all 2" }).waitFor({ timeout: 30_000 });
  assert.equal(await summary.getAttribute("data-ticks"), "2");
  await openConversation(ben.page, "Night shift");
  await waitForMessage(ben.page, text);
  await summary.filter({ hasText: "Read by 1 of 2" }).waitFor({ timeout: 30_000 });
  // A tap shows who.
  await summary.click();
  const people = mine.getByTestId("readers").locator(".readers__person");
  await people.filter({ hasText: "Ben Okafor, read it" }).waitFor();
  await people.filter({ hasText: "Cara Jones, on their phone, not read yet" }).waitFor();
  await shot(mia, "read-receipts-360");
  await openConversation(cara.page, "Night shift");
  await waitForMessage(cara.page, text);
  await summary.filter({ hasText: "Read by all 2" }).waitFor({ timeout: 30_000 });
  assert.equal(await summary.getAttribute("data-ticks"), "3");
  // The list stayed open while the receipt came in.
  await people.filter({ hasText: "Cara Jones, read it" }).waitFor();
  // Only its sender sees who has read a message.
  const onBens = ben.page.getByTestId("message").filter({ hasText: text });
  assert.equal(await onBens.getByTestId("readers").count(), 0);
});

test("recorded in the care record: the message leaves every phone and the relay, a stub remains; and a person deletes her own for everyone", async () => {
  // Ben writes in the clinical group; Mia writes it into the care record.
  await showConversation(ben, "Handover");
  const note = say("Room 6 fluids chart updated, GP to review at 10");
  await send(ben.page, note);
  const onBens = ben.page.getByTestId("message").filter({ hasText: note });
  await onBens.locator("[data-state=Sent]").waitFor({ timeout: 30_000 });
  await showConversation(mia, "Handover");
  await waitForMessage(mia.page, note);
  await showConversation(cara, "Handover");
  await waitForMessage(cara.page, note);
  // The entries of the group that hold a message's ciphertext, before.
  const holding = () =>
    new Set(
      relayQuery(
        relay,
        `select group_concat(seq) from log where group_id = x'${expiring.group}' and kind = 'application' and length(payload) > 0`,
      ).split(","),
    );
  const before = holding();
  const onMias = mia.page.getByTestId("message").filter({ hasText: note });
  await onMias.getByTestId("message-actions").locator("summary").click();
  await onMias.getByRole("button", { name: "Recorded in the care record" }).click();
  await onMias.getByTestId("record-system").fill("Nourish");
  await shot(mia, "recorded-in-care-record-360");
  await onMias.getByTestId("confirm-recorded").click();
  const stub = (someone, words) =>
    someone.page.getByTestId("message-removed").filter({ hasText: words }).waitFor({ timeout: 30_000 });
  await stub(mia, "Recorded in the care record (Nourish) by you at");
  await stub(ben, "Recorded in the care record (Nourish) by Mia Patel at");
  await stub(cara, "Recorded in the care record (Nourish) by Mia Patel at");
  for (const someone of [mia, ben, cara]) {
    assert.ok(!(await messageTexts(someone.page)).includes(note), `${someone.name} no longer shows it`);
  }
  await shot(cara, "recorded-stub-360");
  // The relay emptied it in the same write as it stored the mark (its row
  // then goes with the next sweep), and its audit log says which, with no
  // content.
  const after = holding();
  const gone = [...before].filter((seq) => !after.has(seq));
  assert.equal(gone.length, 1, "the relay holds the message's ciphertext no longer");
  assert.equal(relayQuery(relay, "select count(*) from audit where action = 'message removed'"), "1");
  assert.equal(
    relayQuery(relay, "select subject from audit where action = 'message removed'"),
    `group ${expiring.group}: entry ${gone[0]} (another member's)`,
  );

  // In an operational group nobody marks anything recorded, and only its
  // author deletes a message for everyone.
  await showConversation(cara, "Night shift");
  await showConversation(ben, "Night shift");
  const late = say("Running ten minutes late tonight");
  await send(cara.page, late);
  await waitForMessage(ben.page, late);
  const onCaras = cara.page.getByTestId("message").filter({ hasText: late });
  await onCaras.locator("[data-state=Sent]").waitFor({ timeout: 30_000 });
  assert.equal(
    await ben.page.getByTestId("message").filter({ hasText: late }).getByTestId("message-actions").count(),
    0,
    "Ben is offered nothing on Cara's message",
  );
  await onCaras.getByTestId("message-actions").locator("summary").click();
  assert.equal(await onCaras.getByRole("button", { name: "Recorded in the care record" }).count(), 0);
  await onCaras.getByRole("button", { name: "Delete for everyone" }).click();
  await onCaras.getByTestId("confirm-delete").click();
  await stub(cara, "You deleted this message at");
  await stub(ben, "Cara Jones deleted this message at");
  assert.ok(!(await messageTexts(ben.page)).includes(late));
});

test("an administrator reads the audit log, narrows it to a person and a day, and saves it as a spreadsheet", async () => {
  const heading = await mia.page.getByRole("heading", { level: 1 }).textContent();
  if (heading !== "Conversations") await backToList(mia.page);
  await mia.page.getByRole("link", { name: "Team" }).click();
  await mia.page.getByRole("link", { name: "Audit log" }).click();
  await mia.page.getByRole("heading", { level: 1, name: "Audit log" }).waitFor();
  const rows = mia.page.getByTestId("audit-row");
  // Ids read as the names this phone knows: the group's and people's.
  await rows
    .filter({ hasText: "Mia Patel · message removed" })
    .filter({ hasText: /group “Handover”: entry \d+ \(another member's\)/ })
    .waitFor({ timeout: 30_000 });
  await rows.filter({ hasText: "Cara Jones · message removed" }).waitFor();
  const everyone = await rows.count();
  await shot(mia, "audit-log-360");

  // Narrowed to Ben: what he did and what was done about his phone.
  await mia.page.getByTestId("audit-person").selectOption({ label: "Ben Okafor" });
  await rows.filter({ hasText: "Ben Okafor · joined" }).waitFor();
  const bens = await rows.count();
  assert.ok(bens > 0 && bens < everyone, `${bens} of ${everyone} entries`);
  for (const about of await rows.allTextContents()) {
    assert.ok(/Ben Okafor/.test(about), `about Ben: ${about}`);
  }
  // Nothing happened tomorrow.
  await mia.page.getByLabel("From").fill(dayFromNow(1));
  await mia.page.getByRole("status").filter({ hasText: "0 entries" }).waitFor();
  await mia.page.getByLabel("From").fill("");
  await mia.page.getByTestId("audit-person").selectOption({ label: "Everyone" });
  await mia.page.getByRole("status").filter({ hasText: `${everyone} entries` }).waitFor();

  const [download] = await Promise.all([
    mia.page.waitForEvent("download"),
    mia.page.getByTestId("audit-csv").click(),
  ]);
  assert.match(download.suggestedFilename(), /^huddle-audit-\d{4}-\d{2}-\d{2}\.csv$/);
  const csv = readFileSync(await download.path(), "utf8");
  const lines = csv.trim().split("\r\n");
  assert.equal(lines[0], "Date,Time,Who,What,About,Details");
  assert.equal(lines.length, everyone + 1, "a line for each entry on screen");
  assert.ok(lines.some((line) => line.includes(",Ben Okafor,joined,")));
  for (const text of said) assert.ok(!csv.includes(text), "no message text in the audit log");
  await mia.page.getByRole("button", { name: "Back" }).click();
  await mia.page.getByRole("heading", { level: 1, name: "Team" }).waitFor();
  await backToList(mia.page);
});

test("a person saves her own messages as a page that opens in the browser, lists what she sees and says what it leaves out", async () => {
  const heading = await ben.page.getByRole("heading", { level: 1 }).textContent();
  if (heading !== "Conversations") await backToList(ben.page);
  await ben.page.getByRole("link", { name: "Team" }).click();
  await ben.page.getByRole("link", { name: /^Ben Okafor/ }).click();
  await ben.page.getByRole("heading", { level: 1, name: /^Ben Okafor/ }).waitFor();
  const [download] = await Promise.all([
    ben.page.waitForEvent("download"),
    ben.page.getByTestId("export-messages").click(),
  ]);
  assert.match(download.suggestedFilename(), /^huddle-messages-\d{4}-\d{2}-\d{2}\.html$/);
  await ben.page.getByRole("status").filter({ hasText: "keep it somewhere safe" }).waitFor();
  await shot(ben, "export-saved-360");
  const html = readFileSync(await download.path(), "utf8");
  const reader = await ben.context.newPage();
  try {
    await reader.setContent(html);
    await reader.getByRole("heading", { level: 1, name: "Messages on Ben Okafor's phone" }).waitFor();
    await reader.getByRole("heading", { name: "What this export does not include" }).waitFor();
    const nightShift = reader.locator("section", { has: reader.getByRole("heading", { name: "Night shift" }) });
    await nightShift.locator("li", { hasText: "Who can cover Sunday night?" }).filter({ hasText: "Mia Patel" }).waitFor();
    await nightShift.locator("li", { hasText: "I can do Sunday" }).filter({ hasText: "Ben Okafor (you)" }).waitFor();
    await nightShift.locator("li", { hasText: "Cara Jones deleted this message" }).waitFor();
    const handover = reader.locator("section", { has: reader.getByRole("heading", { name: "Handover" }) });
    await handover.locator("li", { hasText: "Recorded in the care record (Nourish) by Mia Patel" }).waitFor();
    await reader.screenshot({ path: join(ARTIFACTS, "export-page-360.png") });
  } finally {
    await reader.close();
  }
  for (const gone of ["Room 6 fluids chart updated", "Running ten minutes late tonight"]) {
    assert.ok(!html.includes(gone), "what was removed is not in the export");
  }
  await ben.page.getByRole("button", { name: "Back" }).click();
  await ben.page.getByRole("heading", { level: 1, name: "Conversations" }).waitFor();
});

/** Shows the conversation `title` on `someone`'s phone, from wherever she is. */
async function showConversation(someone, title) {
  const heading = someone.page.getByRole("heading", { level: 1 });
  if ((await heading.textContent()) === title) return;
  if ((await heading.textContent()) !== "Conversations") await backToList(someone.page);
  await openConversation(someone.page, title);
}

/** The date `days` from today on this machine's calendar, as a date field takes it. */
function dayFromNow(days) {
  const at = new Date(Date.now() + days * 86_400_000);
  const pad = (n) => String(n).padStart(2, "0");
  return `${at.getFullYear()}-${pad(at.getMonth() + 1)}-${pad(at.getDate())}`;
}

test("a shift offer: two colleagues claim it at the same moment, every phone names the same first claim, and the manager's confirmation settles it", async () => {
  for (const someone of [mia, ben, cara]) await showConversation(someone, "Night shift");
  const note = say("Handover at 19:45 in the office by the lift");
  await mia.page.getByRole("button", { name: "Offer a shift" }).click();
  await mia.page.getByLabel("Day").fill(dayFromNow(1));
  await mia.page.getByLabel("Starts").fill("20:00");
  await mia.page.getByLabel("Ends").fill("08:00");
  await mia.page.getByLabel("Role needed").fill("Senior carer");
  await mia.page.getByLabel("Unit (optional)").fill("Rowan unit");
  // An offer is read by the whole group: patient details are refused.
  await mia.page.getByLabel("Note (optional)").fill("Mrs B NHS 943 476 5919 needs a double-up");
  await mia.page.getByRole("button", { name: "Offer this shift" }).click();
  await mia.page.getByRole("alert").filter({ hasText: "an NHS number" }).waitFor();
  await mia.page.getByLabel("Note (optional)").fill(note);
  await mia.page.getByRole("button", { name: "Offer this shift" }).click();

  const card = (someone) => someone.page.getByTestId("shift-card").last();
  const status = (someone) => card(someone).getByTestId("shift-status");
  await status(mia).filter({ hasText: "Open: nobody has claimed it yet." }).waitFor({ timeout: 30_000 });
  const claim = (someone) => card(someone).getByRole("button", { name: "I can take this shift" });
  for (const colleague of [ben, cara]) {
    await claim(colleague).waitFor({ timeout: 30_000 });
    assert.match(await card(colleague).textContent(), /20:00 to 08:00 the next day/);
    assert.match(await card(colleague).textContent(), /Senior carer, Rowan unit/);
  }
  await shot(ben, "shift-offer-360");
  // The week's list shows the gap.
  await ben.page.getByTestId("shift-week").getByText("Shifts this week: 1 still open").waitFor();

  // Both tap at the same moment: the log's order decides who was first, the
  // same on every phone, whoever's phone was quicker to show it.
  await Promise.all([claim(ben), claim(cara)].map((button) => button.click()));
  const both = /^Claimed by (Ben Okafor|Cara Jones), waiting for you to confirm\. Also asked: (Ben Okafor|Cara Jones)\.$/;
  await status(mia).filter({ hasText: both }).waitFor({ timeout: 30_000 });
  const [, first, second] = (await status(mia).textContent()).match(both);
  assert.notEqual(first, second);
  const [winner, other] = first === "Ben Okafor" ? [ben, cara] : [cara, ben];
  await status(winner)
    .filter({ hasText: "Claimed by you, waiting for Mia Patel to confirm." })
    .waitFor({ timeout: 30_000 });
  await status(other)
    .filter({ hasText: `Already claimed by ${first}. You asked too` })
    .waitFor({ timeout: 30_000 });
  await shot(mia, "shift-claimed-360");

  // The manager confirms the first claim; every phone shows who has it.
  await card(mia).getByRole("button", { name: `Confirm ${first}` }).click();
  await status(winner).filter({ hasText: "Confirmed: this shift is yours." }).waitFor({ timeout: 30_000 });
  await status(other).filter({ hasText: `Taken: confirmed for ${first}.` }).waitFor({ timeout: 30_000 });
  await status(mia).filter({ hasText: `Taken: confirmed for ${first}.` }).waitFor({ timeout: 30_000 });
  assert.equal(await claim(other).count(), 0, "a taken shift cannot be claimed");
  await card(mia).getByRole("button", { name: "Reopen this shift" }).waitFor();
  // The week's list: covered, and by whom.
  const week = mia.page.getByTestId("shift-week");
  await week.getByText("Shifts this week: all covered").click();
  await week.getByText(`Taken: confirmed for ${first}.`).waitFor();
  assert.match(await week.textContent(), /20:00 to 08:00 the next day · Senior carer, Rowan unit/);
  await week.scrollIntoViewIfNeeded();
  await shot(mia, "shift-week-360");
  await week.getByText("Shifts this week: all covered").click();
  await shot(winner, "shift-confirmed-360");
  // Answers are folded into the card, never shown as messages.
  assert.ok(!(await messageTexts(other.page)).some((text) => /shift/i.test(text)));
  // Where the next test expects her: the conversation list.
  await backToList(cara.page);
});

test("I can't make my shift: it reaches the manager alone, who offers it to the team with one tap", async () => {
  await showConversation(cara, "Night shift");
  await cara.page.getByRole("button", { name: "I can't make my shift" }).click();
  await cara.page.getByLabel("Day", { exact: true }).fill(dayFromNow(2));
  await cara.page.getByLabel("Starts").fill("07:00");
  await cara.page.getByLabel("Ends").fill("15:00");
  await cara.page.getByLabel("Your role on that shift").fill("Carer");
  await cara.page.getByLabel("Unit (optional)").fill("Oak unit");
  await shot(cara, "cannot-work-form-360");
  await cara.page.getByRole("button", { name: "Tell my managers" }).click();
  await cara.page.getByTestId("cannot-work-told").filter({ hasText: "Told Mia Patel." }).waitFor({ timeout: 30_000 });
  // Nothing of it in the group.
  await showConversation(ben, "Night shift");
  await ben.page.waitForTimeout(2_000);
  assert.equal(await ben.page.getByTestId("cannot-work").count(), 0, "the team does not see it");
  assert.equal(await cara.page.getByTestId("cannot-work").count(), 0);

  // Mia has it in a conversation with Cara alone, and offers it on.
  if ((await mia.page.getByRole("heading", { level: 1 }).textContent()) !== "Conversations") await backToList(mia.page);
  await mia.page.getByRole("link", { name: /^Cara Jones/ }).waitFor({ timeout: 30_000 });
  await openConversation(mia.page, "Cara Jones");
  await mia.page.locator(".conversation-head .kind", { hasText: "One-to-one" }).waitFor();
  const card = mia.page.getByTestId("cannot-work").last();
  await card.filter({ hasText: "Cara Jones can't make this shift." }).waitFor({ timeout: 30_000 });
  assert.match(await card.textContent(), /07:00 to 15:00/);
  assert.match(await card.textContent(), /Carer, Oak unit/);
  const where = card.getByLabel("Offer it in");
  if (await where.count()) await where.selectOption({ label: "Night shift" });
  await shot(mia, "cannot-work-card-360");
  await card.getByRole("button", { name: "Offer this shift to the team" }).click();
  await card.getByTestId("cannot-work-offered").filter({ hasText: "Offered to the team in Night shift." }).waitFor({ timeout: 30_000 });
  // The team sees an ordinary offer, from Mia, with nothing of why.
  const offer = ben.page.getByTestId("shift-card").last();
  await offer.filter({ hasText: "07:00 to 15:00" }).waitFor({ timeout: 30_000 });
  assert.match(await offer.textContent(), /Mia Patel/);
  assert.match(await offer.textContent(), /Carer, Oak unit/);
  await offer.getByRole("button", { name: "I can take this shift" }).waitFor();
  await backToList(mia.page);
  await backToList(cara.page);
});

test("a one-to-one conversation", async () => {
  await cara.page.getByRole("link", { name: "Message a colleague" }).click();
  await cara.page.getByRole("button", { name: /^Ben Okafor/ }).click();
  await cara.page.getByRole("heading", { level: 1, name: "Ben Okafor" }).waitFor({ timeout: 30_000 });
  await cara.page.locator(".conversation-head .kind", { hasText: "One-to-one" }).waitFor();
  const thanks = say("Thanks for covering, Ben");
  await send(cara.page, thanks);
  await backToList(ben.page);
  await ben.page.getByRole("link", { name: /^Cara Jones/ }).waitFor({ timeout: 30_000 });
  await openConversation(ben.page, "Cara Jones");
  await waitForMessage(ben.page, thanks);
  await backToList(ben.page);
  await backToList(cara.page);
});

test("an urgent broadcast: pinned until acknowledged, the sender sees who has and who has not, and the reminder and the alert fire", async () => {
  if ((await mia.page.getByRole("heading", { level: 1 }).textContent()) !== "Conversations") await backToList(mia.page);
  await newGroup(mia, "Fire and alarms", "Emergency broadcast", ["Ben Okafor", "Cara Jones"]);
  const alarm = say("Fire alarm on Rowan unit: stay with your residents");
  const sentAt = Date.now();
  await send(mia.page, alarm);
  const card = (someone) => someone.page.getByTestId("broadcast").filter({ hasText: alarm });
  const count = (someone) => card(someone).getByTestId("broadcast-count");
  await count(mia).filter({ hasText: "Acknowledged by 0 of 2." }).waitFor({ timeout: 30_000 });

  // Pinned above both colleagues' lists, with one tap to acknowledge.
  const pinned = (someone) => someone.page.getByTestId("pinned-broadcast").filter({ hasText: alarm });
  for (const colleague of [ben, cara]) {
    await pinned(colleague)
      .getByRole("heading", { name: "Urgent from Mia Patel: please acknowledge" })
      .waitFor({ timeout: 30_000 });
  }
  await shot(cara, "broadcast-pinned-360");
  // Staff cannot write there: only acknowledge.
  await openConversation(ben.page, "Fire and alarms");
  await card(ben).getByRole("button", { name: "Acknowledge" }).waitFor();
  await ben.page.getByText("Only administrators write here.").waitFor();
  assert.equal(await ben.page.getByLabel("Message", { exact: true }).count(), 0);
  await backToList(ben.page);

  // Cara acknowledges from her list; the sender sees who has and who has not.
  await pinned(cara).getByRole("button", { name: "Acknowledge" }).click();
  await pinned(cara).waitFor({ state: "detached", timeout: 30_000 });
  await count(mia).filter({ hasText: "Acknowledged by 1 of 2." }).waitFor({ timeout: 30_000 });
  await count(mia).click();
  await card(mia).locator("[data-state=acknowledged]", { hasText: "Cara Jones" }).waitFor();
  await card(mia).locator("[data-state=waiting]", { hasText: "Ben Okafor" }).waitFor();
  await shot(mia, "broadcast-acknowledged-360");

  // Ben, who has not, is reminded; later the administrator is told it is
  // not getting through.
  await pinned(ben)
    .getByRole("heading", { name: /^Reminder: Mia Patel asked you to acknowledge this \d+ seconds ago$/ })
    .waitFor({ timeout: 30_000 });
  assert.ok(Date.now() - sentAt >= REMINDER_SECS * 1000, "not before the reminder interval");
  // Who else has acknowledged is not Ben's to see, not even in the list's preview.
  const row = await ben.page.getByRole("link", { name: /^Fire and alarms/ }).textContent();
  assert.match(row, /Mia Patel: Fire alarm on Rowan unit/);
  assert.doesNotMatch(row, /acknowledged/);
  await shot(ben, "broadcast-reminder-360");
  await backToList(mia.page);
  await pinned(mia)
    .getByRole("heading", { name: /^Not getting through: 1 person has not acknowledged after \d+ seconds$/ })
    .waitFor({ timeout: 30_000 });
  assert.ok(Date.now() - sentAt >= ALERT_SECS * 1000, "not before the alert interval");
  await pinned(mia).getByTestId("pinned-waiting").filter({ hasText: "Not yet: Ben Okafor" }).waitFor();
  await shot(mia, "broadcast-not-getting-through-360");

  // Ben acknowledges in the group: nothing is pinned any more.
  await openConversation(ben.page, "Fire and alarms");
  await card(ben).getByRole("button", { name: "Acknowledge" }).click();
  await card(ben).getByTestId("broadcast-mine").filter({ hasText: "You acknowledged this." }).waitFor({ timeout: 30_000 });
  await pinned(mia).waitFor({ state: "detached", timeout: 30_000 });
  await openConversation(mia.page, "Fire and alarms");
  await count(mia).filter({ hasText: "Acknowledged by all 2." }).waitFor({ timeout: 30_000 });
  // Acknowledgements are folded into the broadcast, never shown as messages.
  assert.deepEqual(await messageTexts(mia.page), []);
  assert.equal(await mia.page.getByTestId("broadcast").count(), 1);
  await backToList(ben.page);
});

/** Back to the conversation list, from wherever the page is. */
async function home(someone) {
  await reopen(someone);
  await waitLive(someone.page);
}

/** Opens a colleague's page from the team list. */
async function openPerson(someone, name) {
  await someone.page.getByRole("link", { name: "Team" }).click();
  await someone.page.getByRole("link", { name: new RegExp(`^${name}`) }).click();
  await someone.page.getByRole("heading", { level: 1, name: new RegExp(`^${name}`) }).waitFor();
  // Their safety number appears once both phones' certificates checked out.
  await someone.page.locator("svg.qr").waitFor({ timeout: 30_000 });
}

/** `scanner` points the camera at what `shown` has on screen. */
async function scan(scanner, shown) {
  showToCamera(scanner.camera, await qrOnScreen(shown.page));
  await scanner.page.getByRole("button", { name: "Scan their code" }).click();
}

test("two colleagues verify each other by scanning, and the third sees the badge", async () => {
  await openPerson(ben, "Cara Jones");
  await openPerson(cara, "Ben Okafor");
  const standing = (someone) => someone.page.getByTestId("verification-standing");
  assert.match(await standing(cara).innerText(), /Not verified in person yet/);
  // Both screens show the same 60 digits.
  const digits = async (someone) => (await someone.page.getByTestId("safety-digits").innerText()).replace(/\s+/g, "");
  assert.equal(await digits(ben), await digits(cara));
  assert.match(await digits(ben), /^\d{60}$/);
  await shot(cara, "safety-number-360");

  // The camera sees a code that is not Ben's number with Cara (here, the
  // code of Mia's page for Cara): nothing is recorded.
  await home(mia);
  await openPerson(mia, "Cara Jones");
  await scan(cara, mia);
  await cara.page.getByRole("alert").filter({ hasText: "These codes do not match" }).waitFor({ timeout: 30_000 });
  assert.match(await standing(cara).innerText(), /Not verified in person yet/);
  await home(mia);

  // Cara scans Ben's screen, then Ben scans Cara's.
  await scan(cara, ben);
  await cara.page.getByRole("status").filter({ hasText: "Ben Okafor is verified" }).waitFor({ timeout: 30_000 });
  await scan(ben, cara);
  await ben.page.getByRole("status").filter({ hasText: "Cara Jones is verified" }).waitFor({ timeout: 30_000 });
  await ben.page.getByTestId("verification-standing").filter({ hasText: "Verified in person by you" }).waitFor();
  await shot(ben, "verified-360");

  // Mia sees both badges, beside the sender in a conversation and in the
  // clinical group's note, which names only her colleagues not verified.
  await openConversation(mia.page, "Night shift");
  await mia.page
    .locator(".message", { hasText: "I can do Sunday" })
    .getByTestId("verified-mark")
    .filter({ hasText: "Verified" })
    .waitFor({ timeout: 30_000 });
  await backToList(mia.page);
  await home(ben);
  await openConversation(ben.page, "Handover");
  const note = ben.page.getByTestId("unverified-note");
  await note.filter({ hasText: "Mia Patel has not been verified in person" }).waitFor({ timeout: 30_000 });
  assert.doesNotMatch(await note.innerText(), /Cara/);
  await shot(ben, "clinical-unverified-note-360");
  await backToList(ben.page);
  await home(cara);
  await openConversation(mia.page, "Night shift");
});

/** An LEB128 varint, as postcard writes integers. */
function varint(value) {
  let n = BigInt(value);
  const out = [];
  while (n >= 0x80n) {
    out.push(Number(n & 0x7fn) | 0x80);
    n >>= 7n;
  }
  out.push(Number(n));
  return out;
}

/** An MLS variable-length vector (RFC 9420, 2.1.2), short ones only. */
const mlsVector = (bytes) =>
  bytes.length < 0x40 ? [bytes.length, ...bytes] : [0x40 | (bytes.length >> 8), bytes.length & 0xff, ...bytes];

// Cara's modified app: what it sends to the relay, and what the relay answers.
let caraToRelay;
let caraHears = () => {};

/** What a colleague's modified app could send: a `Submit` of a commit for
 * `groupHex` at the relay's `epoch`, framed like a real one (the relay
 * checks the clear header) with junk where the encrypted commit goes. */
function junkCommitFrame(groupHex, epoch) {
  const group = [...Buffer.from(groupHex, "hex")];
  const chain = Number(epoch >> 32n);
  const mlsGroup = chain > 0 ? [...group, ...[24, 16, 8, 0].map((shift) => (chain >>> shift) & 0xff)] : group;
  const mlsEpoch = epoch & 0xffffffffn;
  const epochBytes = [56n, 48n, 40n, 32n, 24n, 16n, 8n, 0n].map((shift) => Number((mlsEpoch >> shift) & 0xffn));
  const junk = [...crypto.getRandomValues(new Uint8Array(48))];
  const commit = [0, 1, 0, 2, ...mlsVector(mlsGroup), ...epochBytes, 3, ...mlsVector([]), ...mlsVector(Array(16).fill(0x5e)), ...mlsVector(junk)];
  const clientMsg = [...crypto.getRandomValues(new Uint8Array(16))];
  // Version 1, Submit; the submission; a commit with no welcome and no change.
  return Buffer.from([1, 2, ...clientMsg, ...group, ...varint(epoch), 0, 1, ...varint(commit.length), ...commit, 0, 0, 0, 0]);
}

test("a junk commit from a colleague's modified app stops the group on every phone, which repair it, and everyone talks again", async () => {
  // Cara's phone talks to the relay through the test, as a modified app
  // would: it can send anything it likes (and the test sees the answers).
  await cara.context.routeWebSocket(/\/ws$/, (ws) => {
    const server = ws.connectToServer();
    caraToRelay = server;
    ws.onMessage((message) => server.send(message));
    server.onMessage((message) => {
      caraHears(message);
      ws.send(message);
    });
  });
  await reopen(cara);
  await waitLive(cara.page);
  // Night shift's id is in Mia's address bar; its epoch is the relay's.
  const groupHex = new URL(mia.page.url()).pathname.split("/")[2];
  const epoch = BigInt(relayQuery(relay, `select epoch from groups where id = X'${groupHex}'`));
  const logBefore = Number(relayQuery(relay, `select last_seq from groups where id = X'${groupHex}'`));
  caraToRelay.send(junkCommitFrame(groupHex, epoch));
  // The relay stores it (it cannot see inside); no phone can open it, so
  // each stops the group there and says so rather than read past it.
  const stopped = (someone) => someone.page.getByRole("status").filter({ hasText: "This group needs repairing" });
  await stopped(mia).waitFor({ timeout: 30_000 });
  // The banner says so too, on every screen, until it is repaired.
  await mia.page.getByRole("alert").filter({ hasText: "This group needs repairing" }).waitFor();
  assert.equal(Number(relayQuery(relay, `select last_seq from groups where id = X'${groupHex}'`)), logBefore + 1);
  await shot(mia, "needs-repair-360");
  // Within a minute one phone restarts the group's encryption with the
  // same three people; the others check it against the people they had.
  const repaired = mia.page.getByTestId("conversation-notice").filter({ hasText: "repaired this group" });
  await repaired.waitFor({ timeout: 60_000 });
  await stopped(mia).waitFor({ state: "hidden", timeout: 30_000 });
  await mia.page.getByRole("alert").filter({ hasText: "This group needs repairing" }).waitFor({ state: "hidden" });
  await shot(mia, "repaired-360");
  assert.equal(relayQuery(relay, "select count(*) from audit where action = 'group repaired'"), "1");
  assert.ok(BigInt(relayQuery(relay, `select epoch from groups where id = X'${groupHex}'`)) >= 1n << 32n, "a new chain");
  // Everyone talks again, Cara included.
  const after = say("Back to normal after the repair");
  await openConversation(ben.page, "Night shift");
  await send(ben.page, after);
  await waitForMessage(mia.page, after);
  await openConversation(cara.page, "Night shift");
  await waitForMessage(cara.page, after);
  const reply = say("Thanks, all fine here");
  await send(cara.page, reply);
  await waitForMessage(mia.page, reply);
  await waitForMessage(ben.page, reply);
  await backToList(ben.page);
  await backToList(cara.page);
  // (Her socket route stays for the context's life, passing everything on.)
});

/** The id of `name`'s phone, from the relay's database. */
const deviceOf = (name) =>
  Buffer.from(
    relayQuery(
      relay,
      `select hex(d.id) from devices d join users u on u.id = d.user_id where u.display_name = '${name}' and d.revoked_at is null`,
    ),
    "hex",
  );

/** An unsigned LEB128 varint at `at` in `bytes`: its value and where it ends. */
function readVarint(bytes, at) {
  let value = 0n;
  let shift = 0n;
  for (;;) {
    const byte = bytes[at++];
    value |= BigInt(byte & 0x7f) << shift;
    if (!(byte & 0x80)) return [value, at];
    shift += 7n;
  }
}

/** `frame` with the sender of a delivered message changed from `from` to
 * `to`, as a lying relay would (version 1, `Deliver`: the group, then the
 * sequence number and the epoch, then the sender). */
function withSender(frame, from, to) {
  if (!Buffer.isBuffer(frame) || frame[0] !== 1 || frame[1] !== 4) return frame;
  let at = 2 + 16;
  [, at] = readVarint(frame, at);
  [, at] = readVarint(frame, at);
  if (!frame.subarray(at, at + 16).equals(from)) return frame;
  const rewritten = Buffer.from(frame);
  to.copy(rewritten, at);
  return rewritten;
}

test("a modified app that passes off another person's key package as its own is refused, and the audit log says so", async () => {
  // Cara's modified app claims a key package of Ben's phone (version 1,
  // `ClaimKeyPackages`, a request id, one person) and catches the answer
  // (`KeyPackages`: the request id, then each package's person, phone and
  // bytes)...
  const benUser = Buffer.from(relayQuery(relay, "select hex(id) from users where display_name = 'Ben Okafor'"), "hex");
  const answered = new Promise((resolve) => {
    caraHears = (message) => {
      if (!Buffer.isBuffer(message) || message[0] !== 1 || message[1] !== 8) return;
      let [request, at] = readVarint(message, 2);
      if (request !== 4242n) return;
      let count;
      [count, at] = readVarint(message, at);
      if (count < 1n) return;
      at += 32;
      let length;
      [length, at] = readVarint(message, at);
      resolve(message.subarray(at, at + Number(length)));
    };
  });
  caraToRelay.send(Buffer.from([1, 5, ...varint(4242), 1, ...benUser]));
  const bensPackage = await answered;
  caraHears = () => {};
  // ...and publishes it as her own, so that whoever adds Cara to a group
  // would add Ben's keys under her name.
  const before = Number(relayQuery(relay, "select count(*) from audit where action = 'key package of another phone refused'"));
  caraToRelay.send(Buffer.from([1, 4, ...varint(4243), 1, ...varint(bensPackage.length), ...bensPackage, 0]));
  const flagged = () => Number(relayQuery(relay, "select count(*) from audit where action = 'key package of another phone refused'"));
  for (let tries = 0; tries < 50 && flagged() <= before; tries++) await cara.page.waitForTimeout(200);
  assert.equal(flagged(), before + 1, "the relay refuses it and the audit log names Cara");
  const actor = relayQuery(
    relay,
    "select u.display_name from audit a join users u on u.id = a.actor where a.action = 'key package of another phone refused'",
  );
  assert.equal(actor, "Cara Jones");
  // Her phone carries on as before.
  await openConversation(cara.page, "Night shift");
  const text = say("Still here after that");
  await send(cara.page, text);
  await waitForMessage(mia.page, text);
  await backToList(cara.page);
});

test("a relay that says a message came from someone else is caught: the phone shows nothing and reports it", async () => {
  const [miaPhone, caraPhone] = [deviceOf("Mia Patel"), deviceOf("Cara Jones")];
  // Between the relay and Ben's phone, everything Mia sends is said to be
  // Cara's.
  // (What Ben's phone reports back is counted on the way: version 1,
  // `ReportRefused`, the 16th kind of frame a phone sends.)
  let reports = 0;
  let lying = true;
  await ben.context.routeWebSocket(/\/ws$/, (ws) => {
    const server = ws.connectToServer();
    ws.onMessage((message) => {
      if (Buffer.isBuffer(message) && message[0] === 1 && message[1] === 15) reports += 1;
      server.send(message);
    });
    server.onMessage((message) => ws.send(lying ? withSender(message, miaPhone, caraPhone) : message));
  });
  await reopen(ben);
  await waitLive(ben.page);
  await openConversation(ben.page, "Night shift");
  const text = say("Handover notes are in the blue folder");
  await send(mia.page, text);
  await openConversation(cara.page, "Night shift");
  await waitForMessage(cara.page, text);
  // Ben's phone opens it, finds Mia's signature where the relay named Cara,
  // and shows nothing; it says so, and tells the audit log.
  await ben.page.getByRole("alert").filter({ hasText: "did not come from who it said it came from" }).waitFor({ timeout: 30_000 });
  assert.ok(!(await messageTexts(ben.page)).includes(text), "not shown as Cara's, nor at all");
  await shot(ben, "refused-sender-360");
  // Its report goes to the relay, for the audit log. (This relay lied, so
  // it may drop it, and an honest one records only reports that name an
  // entry's real sender: a colleague's modified app, caught the same way,
  // is recorded.)
  for (let tries = 0; tries < 50 && reports === 0; tries++) await ben.page.waitForTimeout(200);
  assert.ok(reports > 0, "Ben's phone reports the refusal");
  await ben.page.getByRole("button", { name: "Dismiss" }).click();
  await backToList(ben.page);
  await backToList(cara.page);
  // The relay tells the truth again (a socket route stays for the
  // context's life; from here it passes everything on as it is).
  lying = false;
  await reopen(ben);
  await waitLive(ben.page);
});

test("a removed member receives nothing new", async () => {
  await mia.page.getByRole("link", { name: "People in this conversation" }).click();
  await mia.page.locator(".person-row", { hasText: "Cara Jones" }).getByRole("button", { name: "Remove", exact: true }).click();
  // Asked in her row, not at the top of the page.
  await mia.page.locator(".person-row", { hasText: "Cara Jones" }).getByText("Remove Cara Jones from this group?").waitFor();
  await mia.page.getByRole("button", { name: "Remove from group" }).click();
  await mia.page.getByText("Removed.").waitFor({ timeout: 30_000 });
  await mia.page.getByRole("button", { name: "Back" }).click();
  await cara.page.getByText("You are no longer in this conversation").waitFor({ timeout: 30_000 });
  const after = say("Rota for next week is final");
  await send(mia.page, after);
  await openConversation(ben.page, "Night shift");
  await waitForMessage(ben.page, after);
  await openConversation(cara.page, "Night shift");
  await cara.page.waitForTimeout(2_000);
  assert.ok(!(await messageTexts(cara.page)).includes(after), "Cara does not receive it");
  await cara.page.getByText("You are no longer in this conversation.").first().waitFor();
  await backToList(cara.page);
});

async function writeOffline(author, texts, conversation = "Night shift") {
  await author.context.setOffline(true);
  // Opened again from the home screen, with no connection.
  await reopen(author);
  await author.page.getByRole("link", { name: new RegExp(`^${conversation}`) }).waitFor({ timeout: 30_000 });
  await openConversation(author.page, conversation);
  for (const text of texts) await send(author.page, text);
  const waiting = texts.length === 1 ? "1 message is waiting to send" : `${texts.length} messages are waiting to send`;
  await author.page.getByTestId("connection-banner").filter({ hasText: waiting }).waitFor({ timeout: 30_000 });
}

async function assertArrivedOnceInOrder(reader, texts) {
  await waitForMessage(reader.page, texts.at(-1));
  await reader.page.waitForTimeout(1_000);
  const seen = await messageTexts(reader.page);
  const positions = texts.map((t) => seen.indexOf(t));
  for (const text of texts) assert.equal(seen.filter((s) => s === text).length, 1, `${text} arrived once`);
  assert.deepEqual([...positions].sort((a, b) => a - b), positions, "in the order written");
}

test("offline: the app opens from cache, queues three messages, and sends each once, in order", async () => {
  const texts = [say("Running late"), say("Bus cancelled"), say("There in 20")];
  await writeOffline(ben, texts);
  await shot(ben, "offline-360");
  await ben.context.setOffline(false);
  await waitLive(ben.page);
  await assertArrivedOnceInOrder(mia, texts);
});

test("messages written offline survive a relay restart before they are sent", async () => {
  const texts = [say("Fire door sticks"), say("Reported to facilities"), say("Fixed now")];
  await writeOffline(ben, texts);
  await relay.kill();
  earlierLogs.push(relay.output());
  relay = await startRelay({ dataDir: relay.dataDir, port: relay.port, args: RELAY_ARGS });
  await ben.context.setOffline(false);
  await waitLive(ben.page);
  await assertArrivedOnceInOrder(mia, texts);
  await backToList(ben.page);
  await backToList(mia.page);
});

test("losing the network while the app is open shows the offline banner at once", async () => {
  await mia.context.setOffline(true);
  await mia.page.getByTestId("connection-banner").filter({ hasText: "You're offline" }).waitFor({ timeout: 10_000 });
  await mia.context.setOffline(false);
  await waitLive(mia.page);
});

test("the content is covered while the app is hidden, left or out of focus", async () => {
  await mia.page.evaluate(() => {
    Object.defineProperty(document, "hidden", { value: true, configurable: true });
    document.dispatchEvent(new Event("visibilitychange"));
  });
  await mia.page.locator(".shell--hidden").waitFor();
  // Everything is covered, the app bar (with the conversation's name) too.
  for (const part of ["main", ".app-bar"]) {
    assert.match(await mia.page.locator(part).first().evaluate((m) => getComputedStyle(m).filter), /blur/, part);
  }
  const veil = await mia.page.locator(".shell").evaluate((s) => getComputedStyle(s, "::after").position);
  assert.equal(veil, "fixed");
  await mia.page.evaluate(() => {
    Object.defineProperty(document, "hidden", { value: false, configurable: true });
    document.dispatchEvent(new Event("visibilitychange"));
  });
  await mia.page.locator(".shell--hidden").waitFor({ state: "detached" });
  // Switching away on a phone blurs the window before the page is hidden,
  // and leaving the page fires pagehide: each covers at once.
  for (const [leave, back] of [["blur", "focus"], ["pagehide", "pageshow"]]) {
    await mia.page.evaluate((name) => window.dispatchEvent(new Event(name)), leave);
    await mia.page.locator(".shell--hidden").waitFor();
    await mia.page.evaluate((name) => window.dispatchEvent(new Event(name)), back);
    await mia.page.locator(".shell--hidden").waitFor({ state: "detached" });
  }
});

test("expiry: the message disappears on every device, from IndexedDB and from the relay, even with a clock turned back a day", async () => {
  // Ben's phone's clock is turned back a day (by him, or by whoever holds
  // his phone): going by it, the message would stay another day. The app
  // goes by the later of its clock and the relay's.
  await ben.page.close();
  await ben.context.clock.install({ time: Date.now() - 24 * 60 * 60 * 1000 });
  ben.page = await ben.context.newPage();
  await reopen(ben, relay.url);
  assert.ok((await ben.page.evaluate(() => Date.now())) < Date.now() - 23 * 60 * 60 * 1000, "Ben's clock is a day behind");
  // Cara writes in the clinical group with no connection, and her phone is
  // closed before it could send: that message expires unsent.
  const unsent = say("Bay 2 obs due at 4am");
  await writeOffline(cara, [unsent], "Handover");
  // Sealed by the crypto worker, it waits in the outbox.
  for (let tries = 0; (await outboxCount(cara.page)) !== 1; tries++) {
    assert.ok(tries < 60, "the message reaches the outbox");
    await cara.page.waitForTimeout(500);
  }
  const unsentAt = Date.now();
  // Cara's phone is closed while the messages expire.
  await cara.page.close();
  const wait = Math.max(expiring.sentAt, unsentAt) + EXPIRY_MS + 8_000 - Date.now();
  if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  for (const someone of [mia, ben]) {
    await openConversation(someone.page, "Handover");
    await someone.page.waitForTimeout(6_000); // one sweep
    assert.ok(!(await messageTexts(someone.page)).includes(expiring.text), `${someone.name} no longer shows it`);
    assert.equal(await cachedCount(someone.page, expiring.group), 0, `${someone.name}'s IndexedDB holds none`);
    await backToList(someone.page);
  }
  assert.equal(relayEntries(expiring.group), 0, "the relay's database holds none");
  // Cara opens Huddle again, online: the startup sweep runs before anything
  // is shown, and her expired message is withdrawn, not sent.
  await cara.context.setOffline(false);
  cara.page = await cara.context.newPage();
  await reopen(cara, relay.url);
  await openConversation(cara.page, "Handover");
  await waitLive(cara.page);
  for (const text of [expiring.text, unsent]) assert.ok(!(await messageTexts(cara.page)).includes(text));
  assert.equal(await cachedCount(cara.page, expiring.group), 0);
  assert.equal(await outboxCount(cara.page), 0, "the unsent message left her outbox");
  await openConversation(mia.page, "Handover");
  await mia.page.waitForTimeout(3_000);
  assert.ok(!(await messageTexts(mia.page)).includes(unsent), "nobody receives an expired message");
  await backToList(mia.page);
});

test("an administrator signs a person out, and her phone is wiped", async () => {
  await mia.page.getByRole("link", { name: "Team" }).click();
  await mia.page.locator(".person-row", { hasText: "Cara Jones" }).getByRole("button", { name: "Sign them out" }).click();
  await mia.page.getByRole("button", { name: "Sign out and wipe" }).click();
  await cara.page.getByRole("heading", { name: "This phone has been signed out" }).waitFor({ timeout: 30_000 });
  await cara.page.getByText("Everything Huddle kept on it has been deleted.").waitFor();
  assert.deepEqual(await leftInBrowser(cara.page), NOTHING_LEFT, "nothing is left on Cara's phone");
  await mia.page.getByRole("button", { name: "Back" }).click();

  // The first phone to hear of it takes her out of every group she was in
  // (here a clinical one, which staff may change only to remove a revoked
  // phone): Ben's phone shows the change without anyone asking it to.
  await home(ben);
  await openConversation(ben.page, "Handover");
  await ben.page.getByRole("link", { name: "People in this conversation" }).click();
  await ben.page.waitForFunction(
    () => document.querySelectorAll('ul[aria-label="Members"] > li').length === 2,
    null,
    { timeout: 30_000 },
  );
  const members = await ben.page.getByRole("list", { name: "Members" }).innerText();
  assert.doesNotMatch(members, /Cara/, "Cara is no longer a member");
  await ben.page.getByRole("button", { name: "Back" }).click();
  await backToList(ben.page);
});

test("a person signs her own phone out before handing it on, and nothing of hers is left on it", async () => {
  const forFay = await invite(mia, "Fay Lee");
  await mia.page.getByRole("button", { name: "Back" }).click();
  const fay = await person("Fay");
  try {
    await joinWith(fay, forFay);
    await fay.page.getByRole("link", { name: "Team" }).click();
    await fay.page.getByRole("link", { name: /^Fay Lee/ }).click();
    await fay.page.getByRole("heading", { name: "Your phones" }).waitFor();
    // Each phone says when it was added and last used, so that a lost one
    // can be told from the others.
    await fay.page.getByText(/^Added \d+ \w+ \d{4}, last used \d\d:\d\d$/).waitFor();
    await fay.page.getByRole("button", { name: "Sign out this phone" }).click();
    await fay.page.getByRole("alertdialog", { name: "Sign this phone out of Huddle?" }).waitFor();
    await shot(fay, "sign-out-this-phone-360");
    await fay.page.getByRole("button", { name: "Sign out and wipe this phone" }).click();
    await fay.page.getByRole("heading", { name: "This phone has been signed out" }).waitFor({ timeout: 30_000 });
    await fay.page.getByText("You signed this phone out of Huddle.").waitFor();
    await fay.page.getByText("Everything Huddle kept on it has been deleted.").waitFor();
    assert.deepEqual(await leftInBrowser(fay.page), NOTHING_LEFT, "nothing is left on Fay's phone");
  } finally {
    await fay.context.close();
  }
});

test("a phone signed out while offline wipes itself as it reconnects, and the administrator sees when it was told", async () => {
  const forGus = await invite(mia, "Gus Reid");
  await mia.page.getByRole("button", { name: "Back" }).click();
  const gus = await person("Gus");
  try {
    await joinWith(gus, forGus);
    // Gus's phone loses its connection, the app still open on it.
    await gus.context.setOffline(true);
    await mia.page.getByRole("link", { name: "Team" }).click();
    await mia.page.locator(".person-row", { hasText: "Gus Reid" }).getByRole("button", { name: "Sign them out" }).click();
    await mia.page.getByRole("button", { name: "Sign out and wipe" }).click();
    const signedOut = mia.page.getByRole("list", { name: "Signed out" }).locator("li", { hasText: "Gus Reid" });
    await signedOut.getByText(/^Phone added \d+ \w+ \d{4}, signed out \d\d:\d\d\. No word from it yet: it wipes itself when Huddle is next opened on it online\.$/).waitFor({ timeout: 15_000 });
    await shot(mia, "signed-out-not-wiped-360");
    // Offline, nothing has reached Gus's phone yet.
    assert.equal(await gus.page.getByRole("heading", { name: "This phone has been signed out" }).count(), 0);
    // Back online, it hears at once, and wipes itself.
    await gus.context.setOffline(false);
    await gus.page.getByRole("heading", { name: "This phone has been signed out" }).waitFor({ timeout: 60_000 });
    await gus.page.getByText("Everything Huddle kept on it has been deleted.").waitFor();
    assert.deepEqual(await leftInBrowser(gus.page), NOTHING_LEFT, "nothing is left on Gus's phone");
    // Mia's list says so without her doing anything.
    await signedOut.getByText(/^Phone added \d+ \w+ \d{4}, signed out \d\d:\d\d\. Told to wipe itself \d\d:\d\d\.$/).waitFor({ timeout: 30_000 });
    await shot(mia, "signed-out-wiped-360");
    await mia.page.getByRole("button", { name: "Back" }).click();
  } finally {
    await gus.context.close();
  }
});

test("a phone kept away from Huddle for longer than the organisation allows wipes itself when opened", async () => {
  const forEve = await invite(mia, "Eve Hart");
  await mia.page.getByRole("button", { name: "Back" }).click();
  const eve = await person("Eve");
  try {
    await joinWith(eve, forEve);
    // Eve's phone goes quiet: no network, the app closed, and eight days
    // pass (the relay allows seven, its default).
    await eve.context.setOffline(true);
    await eve.page.close();
    await eve.context.clock.install({ time: Date.now() + 8 * 24 * 60 * 60 * 1000 });
    eve.page = await eve.context.newPage();
    await eve.page.goto(relay.url);
    await eve.page.getByRole("heading", { name: "This phone has been signed out" }).waitFor({ timeout: 30_000 });
    await eve.page.getByText("longer than your organisation allows").waitFor();
    await eve.page.getByText("Everything Huddle kept on it has been deleted.").waitFor();
    await shot(eve, "away-too-long-360");
    assert.deepEqual(await leftInBrowser(eve.page), NOTHING_LEFT, "nothing is left on Eve's phone");
  } finally {
    await eve.context.close();
  }
});

test("on bad Wi-Fi, a part of the app that cannot be fetched says so, and joining works on the retry", async () => {
  const forDev = await invite(mia, "Dev Shah");
  await mia.page.getByRole("button", { name: "Back" }).click();
  // A new phone whose connection drops every request for the parts of the
  // app fetched on first use (no service worker has cached them yet).
  const dev = await person("Dev", { serviceWorkers: "block" });
  try {
    const onDemand = /\/on-demand-[^/]*\.wasm$/;
    let refused = 0;
    await dev.context.route(onDemand, (route) => {
      refused += 1;
      return route.abort("internetdisconnected");
    });
    await dev.page.goto(forDev);
    await dev.page.getByRole("button", { name: "Join" }).click();
    await dev.page.getByRole("alert").filter({ hasText: "has not been downloaded to this phone yet" }).waitFor();
    assert.ok(refused > 0, "the join needed a part fetched on first use");
    assert.ok(await dev.page.getByRole("button", { name: "Join" }).isEnabled(), "the form can be sent again");

    // The connection comes back: the same invite still works.
    await dev.context.unroute(onDemand);
    await dev.page.getByRole("button", { name: "Join" }).click();
    await choosePasscode(dev);
    await waitLive(dev.page);
  } finally {
    await dev.context.close();
  }
});

test("a relay restored from a backup older than a phone asks before wiping it, and keeps what was not sent", async () => {
  // Ben writes with no network.
  await ben.context.setOffline(true);
  await openConversation(ben.page, "Handover");
  await send(ben.page, say("Running ten minutes late"));
  await backToList(ben.page);
  // The home's relay is replaced by one restored from before anyone joined.
  await relay.kill();
  earlierLogs.push(relay.output());
  const restored = await startRelay({ port: relay.port, args: RELAY_ARGS });
  try {
    await ben.context.setOffline(false);
    const question = { name: "Huddle's server does not recognise this phone" };
    await ben.page.getByRole("heading", question).waitFor({ timeout: 60_000 });
    await ben.page.getByText("1 message you wrote has not been sent").waitFor();
    await shot(ben, "not-recognised-360");
    assert.equal(await outboxCount(ben.page), 1, "what Ben wrote is kept while he decides");
    assert.ok((await storedCounts(ben.page, ["conversations"]))[0] > 0, "his conversations are kept");
    await ben.page.getByRole("button", { name: "Delete everything on this phone" }).click();
    await ben.page.getByRole("alertdialog").getByText("the message you wrote that was not sent").waitFor();
    await ben.page.getByRole("button", { name: "Delete everything", exact: true }).click();
    await ben.page.getByRole("heading", { name: "This phone has been signed out" }).waitFor({ timeout: 30_000 });
    await ben.page.getByText("Everything Huddle kept on it has been deleted.").waitFor();
    assert.deepEqual(await leftInBrowser(ben.page), NOTHING_LEFT, "nothing is left on Ben's phone");
    // Mia's phone, reconnecting, is asked too; she has nothing unsent, and
    // keeps reading while she finds out what happened.
    await mia.page.getByRole("heading", question).waitFor({ timeout: 60_000 });
    await mia.page.getByText("Every message you wrote has been sent").waitFor();
    await mia.page.getByRole("button", { name: "Keep reading for now" }).click();
    await mia.page.getByRole("heading", { level: 1, name: "Conversations" }).waitFor();
    await mia.page.getByTestId("connection-banner").getByText("does not recognise this phone").waitFor();
  } finally {
    earlierLogs.push(restored.output());
    await restored.stop();
    relay = await startRelay({ dataDir: relay.dataDir, port: relay.port, args: RELAY_ARGS });
  }
  // The home's own relay is back: Mia opens Huddle again, and her phone is
  // as it was.
  await reopen(mia);
  await waitLive(mia.page);
  await mia.page.getByRole("heading", { level: 1, name: "Conversations" }).waitFor();
});

test("no message text is stored in the clear: browser profiles, relay database, relay log", async () => {
  for (const someone of [mia, ben, cara]) assert.deepEqual(someone.problems(), [], `${someone.name}: no console errors`);
  // A positive control: the scan does find text that is stored in the clear.
  const control = "scan control: clear text";
  await mia.page.evaluate(
    (control) =>
      new Promise((resolve) => {
        const open = indexedDB.open("scan-control");
        open.onupgradeneeded = () => open.result.createObjectStore("s");
        open.onsuccess = () => {
          const tx = open.result.transaction("s", "readwrite");
          tx.objectStore("s").put(control, "k");
          tx.oncomplete = () => resolve();
        };
      }),
    control,
  );
  for (const someone of [mia, ben, cara]) await someone.context.close();
  assert.deepEqual(markersIn(mia.profileDir, [control]), [control], "the scan finds clear text");
  for (const someone of [mia, ben, cara]) {
    assert.deepEqual(markersIn(someone.profileDir, said), [], `${someone.name}'s profile holds no message text`);
  }
  await relay.kill();
  assert.deepEqual(markersIn(relay.dataDir, said), [], "the relay's files hold no message text");
  const log = earlierLogs.join("") + relay.output();
  assert.match(log, /device connected/, "the log was captured");
  for (const text of said) assert.ok(!log.includes(text), "the relay's log holds no message text");
});
