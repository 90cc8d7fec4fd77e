// Benchmark: a conversation with 10,000 cached messages on a slow phone: opening it, scrolling it, and the expiry sweep.
//
// Runs the real app, built with its `bench` feature (scripts/bench), whose
// only addition is `huddleBenchSeed`: it writes messages into the phone's
// encrypted cache exactly as received messages are written. A phone is set
// up through the real screens, one conversation gets 10,000 messages, and
// then, with the CPU slowed 4x (as in startup.mjs; the cache needs no
// network):
// - open: from the tap on the conversation to its messages painted
//   (`huddle:conversation-painted`), a second after the list was painted
//   from the cache (the crypto worker and the connection are still
//   starting), then again once everything runs;
// - scrolling: frame times while the messages scroll for two seconds;
// - sweep: the app's own periodic sweep deleting 10,000 expired messages
//   (`huddle:sweep`, one key-range delete).
// Prints a table and writes reports/app-conversation.json. Not a test: no
// figure fails it.
import { writeFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { startRelay } from "../e2e/harness.mjs";
import { launch, setUpWithGroup, unlock } from "./phone.mjs";

const RUNS = Number(process.env.HUDDLE_BENCH_RUNS || 5);
const MESSAGES = 10_000;
const REPORTS = process.env.HUDDLE_REPORTS_DIR || "reports";
const CPU_SLOWDOWN = 4;

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const percentile = (xs, p) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))];

async function slowCpu(context, page) {
  const cdp = await context.newCDPSession(page);
  await cdp.send("Emulation.setCPUThrottlingRate", { rate: CPU_SLOWDOWN });
}

async function waitMark(page, name) {
  await page.waitForFunction((name) => performance.getEntriesByName(name).length > 0, name, { timeout: 120_000 });
}

/** Milliseconds between two marks on the page's timeline. */
function between(page, from, to) {
  return page.evaluate(
    ([from, to]) => performance.getEntriesByName(to)[0].startTime - performance.getEntriesByName(from)[0].startTime,
    [from, to],
  );
}

/** Taps the conversation, with a mark at the tap (in the page, so no driver delay is counted). */
function tapConversation(page, group, mark) {
  return page.evaluate(
    ([group, mark]) => {
      performance.mark(mark);
      document.querySelector(`a[href="/c/${group}"]`).click();
    },
    [group, mark],
  );
}

function seed(page, group, count, expiresInMs) {
  return page.evaluate(
    ([group, count, expiresInMs]) => window.wasmBindings.huddleBenchSeed(group, count, expiresInMs),
    [group, count, expiresInMs],
  );
}

const relay = await startRelay();
const { dir, context } = await launch();
try {
  const setup = context.pages()[0] ?? (await context.newPage());
  const group = await setUpWithGroup(setup, relay);
  await seed(setup, group, MESSAGES, 24 * 3600 * 1000);
  await setup.close();

  const firstOpen = [];
  const againOpen = [];
  let frames = [];
  for (let i = 0; i < RUNS; i++) {
    const page = await context.newPage();
    await slowCpu(context, page);
    await page.goto(relay.url);
    await unlock(page);
    await page.waitForSelector(`a[href="/c/${group}"]`);
    await page.waitForTimeout(Number(process.env.HUDDLE_BENCH_TAP_AFTER_MS || 1_000));
    await tapConversation(page, group, "bench:tap");
    await waitMark(page, "huddle:conversation-painted");
    firstOpen.push(await between(page, "bench:tap", "huddle:conversation-painted"));

    if (i === 0) {
      // Two seconds of scrolling up through the messages, a step per frame.
      frames = await page.evaluate(
        () =>
          new Promise((resolve) => {
            const scroller = document.scrollingElement;
            const times = [];
            let last = performance.now();
            const started = last;
            const step = (now) => {
              times.push(now - last);
              last = now;
              scroller.scrollBy(0, -120);
              if (now - started < 2_000) requestAnimationFrame(step);
              else resolve(times.slice(1));
            };
            requestAnimationFrame(step);
          }),
      );
    }

    // Back to the list and open it again: the screens' module is loaded now.
    await page.getByRole("button", { name: "Back" }).click();
    await page.waitForSelector(`a[href="/c/${group}"]`);
    await page.evaluate(() => performance.clearMarks("huddle:conversation-painted"));
    await tapConversation(page, group, "bench:tap-again");
    await waitMark(page, "huddle:conversation-painted");
    againOpen.push(await between(page, "bench:tap-again", "huddle:conversation-painted"));
    await page.close();
  }

  // The sweep: 10,000 more messages that expire while the app is open; the
  // app's periodic sweep (every 5 s) deletes them in one key-range delete.
  const sweeps = [];
  for (let i = 0; i < Math.min(RUNS, 3); i++) {
    const seeder = await context.newPage();
    await seeder.goto(relay.url);
    await unlock(seeder);
    await seeder.evaluate(() => performance.clearMeasures());
    const expiresIn = 20_000;
    await seed(seeder, group, MESSAGES, expiresIn);
    const seededAt = Date.now();
    await seeder.close();
    const page = await context.newPage();
    await slowCpu(context, page);
    await page.goto(relay.url);
    await unlock(page);
    await page.waitForTimeout(Math.max(0, seededAt + expiresIn + 12_000 - Date.now()));
    const measured = await page.evaluate(() => performance.getEntriesByName("huddle:sweep").map((m) => m.duration));
    if (measured.length === 0) throw new Error("the app recorded no sweep");
    sweeps.push(Math.max(...measured));
    await page.close();
  }
  // The wipe of a phone holding 10,000 messages, from its lock screen (the
  // forgotten-passcode path: the same wipe as ten wrong passcodes), from the
  // tap to everything deleted (databases, offline copy, service worker).
  const wiper = await context.newPage();
  await wiper.goto(relay.url);
  await unlock(wiper);
  await seed(wiper, group, MESSAGES, 24 * 3600 * 1000);
  await wiper.reload();
  await slowCpu(context, wiper);
  await wiper.getByRole("button", { name: "Unlock" }).waitFor({ timeout: 60_000 });
  await wiper.getByRole("button", { name: "Wipe this phone" }).click();
  await wiper.evaluate(() => {
    performance.mark("bench:wipe");
    [...document.querySelectorAll("button")].find((b) => b.textContent === "Yes, wipe this phone").click();
  });
  await waitMark(wiper, "huddle:wiped");
  const wipe = await between(wiper, "bench:wipe", "huddle:wiped");
  await context.close();

  const figures = {
    conditions: `headless Chromium, CPU ${CPU_SLOWDOWN}x slower, cache on the phone`,
    messages: MESSAGES,
    runs: RUNS,
    open_first_ms: Math.round(median(firstOpen)),
    open_again_ms: Math.round(median(againOpen)),
    scroll_frames: frames.length,
    scroll_frame_median_ms: Number(median(frames).toFixed(1)),
    scroll_frame_p95_ms: Number(percentile(frames, 0.95).toFixed(1)),
    scroll_frames_over_50ms: frames.filter((f) => f > 50).length,
    sweep_ms: Math.round(median(sweeps)),
    wipe_ms: Math.round(wipe),
    open_first_samples_ms: firstOpen.map(Math.round),
    open_again_samples_ms: againOpen.map(Math.round),
    sweep_samples_ms: sweeps.map(Math.round),
  };
  console.log(`
| ${MESSAGES} cached messages (${figures.conditions}) | measured | budget |
| --- | --- | --- |
| open: tap to messages painted, first time after start-up, median of ${RUNS} | ${figures.open_first_ms} ms | 100 ms |
| open: tap to messages painted, again, median of ${RUNS} | ${figures.open_again_ms} ms | 100 ms |
| scrolling for 2 s: frame time median / p95, frames over 50 ms | ${figures.scroll_frame_median_ms} / ${figures.scroll_frame_p95_ms} ms, ${figures.scroll_frames_over_50ms} of ${figures.scroll_frames} | smooth |
| expiry sweep of ${MESSAGES} messages by the app, median of ${sweeps.length} | ${figures.sweep_ms} ms | 250 ms |
| wipe from the lock screen, tap to everything deleted | ${figures.wipe_ms} ms | 1000 ms |
`);
  writeFileSync(join(REPORTS, "app-conversation.json"), JSON.stringify(figures, null, 2) + "\n");
  console.log(`figures written to ${join(REPORTS, "app-conversation.json")}`);
} finally {
  await relay.stop();
  rmSync(dir, { recursive: true, force: true });
}
