// Helpers for end-to-end tests that play several people, each on their own browser profile.
import { mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import assert from "node:assert/strict";
import { chromium } from "playwright-core";
import { watchProblems } from "./harness.mjs";

export const PHONE = { width: 360, height: 740 };

/** One person on one phone: a persistent browser profile of their own. */
export async function person(name, contextOptions = {}, existingProfile = null) {
  const profileDir = existingProfile ?? mkdtempSync(join(tmpdir(), `huddle-e2e-${name.toLowerCase()}-`));
  // The phone's camera: a video file the test writes (see `showToCamera`),
  // blank until then.
  const camera = join(profileDir, "..", `${profileDir.split("/").pop()}-camera.y4m`);
  showToCamera(camera, null);
  const context = await chromium.launchPersistentContext(profileDir, {
    ...contextOptions,
    executablePath: process.env.CHROMIUM_BIN || "/usr/bin/chromium",
    viewport: PHONE,
    deviceScaleFactor: 2,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-dev-shm-usage",
      "--no-first-run",
      "--disable-quic",
      "--use-fake-device-for-media-stream",
      "--use-fake-ui-for-media-stream",
      `--use-file-for-fake-video-capture=${camera}`,
    ],
  });
  const page = context.pages()[0] ?? (await context.newPage());
  const problems = watchProblems(page);
  // Everything the app said on the console, on every page of this phone
  // (for reading a failure; it names kinds and ids, never content).
  const consoleLines = [];
  context.on("console", (msg) => consoleLines.push(`${msg.type()}: ${msg.text()}`));
  return {
    name,
    profileDir,
    camera,
    context,
    page,
    /** Console errors, except the browser's own report of a WebSocket that
     * could not connect, which is expected while offline or while the relay
     * restarts. */
    problems: () => problems.filter((p) => !/WebSocket connection to .* failed/.test(p)),
    consoleLines: () => consoleLines,
  };
}

/** Each person's passcode: six digits with no pattern, different for each. */
export function passcodeOf(someone) {
  let digits = "";
  for (const c of someone.name) digits += (c.charCodeAt(0) * 7).toString().slice(-1);
  return `${(digits + "583916").slice(0, 6)}`;
}

/** Chooses a passcode on the screen that follows joining, and waits for the
 * conversation list. */
export async function choosePasscode(someone, code = passcodeOf(someone)) {
  const page = someone.page;
  await page.getByRole("heading", { level: 1, name: "Choose a passcode" }).waitFor({ timeout: 30_000 });
  await page.getByLabel("Passcode", { exact: true }).fill(code);
  await page.getByLabel("Type it again").fill(code);
  await page.getByRole("button", { name: "Save passcode" }).click();
  await page.getByRole("heading", { level: 1, name: "Conversations" }).waitFor({ timeout: 30_000 });
}

/** Unlocks the app from its lock screen (which must be showing or coming). */
export async function unlock(someone, code = passcodeOf(someone)) {
  const page = someone.page;
  await page.getByRole("heading", { level: 1, name: "Huddle is locked" }).waitFor({ timeout: 30_000 });
  await page.getByLabel("Passcode", { exact: true }).fill(code);
  await page.getByRole("button", { name: "Unlock" }).click();
  await page.getByRole("heading", { level: 1, name: "Conversations" }).waitFor({ timeout: 30_000 });
}

/** Opens the app at `url` (or reloads it) and unlocks it. */
export async function reopen(someone, url = new URL("/", someone.page.url()).href) {
  await someone.page.goto(url);
  await unlock(someone);
}

/** What a wiped phone must not hold: Huddle's databases, the app's offline
 * copy (Cache Storage) and its service worker. */
export const NOTHING_LEFT = { databases: [], caches: [], serviceWorkers: 0 };

export function leftInBrowser(page) {
  return page.evaluate(async () => ({
    databases: (await indexedDB.databases()).map((db) => db.name).filter((name) => name.startsWith("huddle")),
    caches: await caches.keys(),
    serviceWorkers: (await navigator.serviceWorker.getRegistrations()).length,
  }));
}

/** Waits until the app is connected (no offline or connecting banner). */
/** The manager invites `name`; returns the invite link. */
export async function invite(manager, name) {
  await manager.page.getByRole("link", { name: "Invite someone" }).click();
  await manager.page.getByLabel("Their name").fill(name);
  await manager.page.getByRole("button", { name: "Create invite" }).click();
  const link = await manager.page.getByTestId("invite-link").inputValue();
  // The relay's secret, the invite key and the organisation key's fingerprint.
  assert.match(link, /\/join#[0-9a-f]{64}\.[0-9a-f]{96}\.[0-9a-f]{32}$/);
  return link;
}

/** `someone` joins with an invite link and chooses her passcode. */
export async function joinWith(someone, link) {
  await someone.page.goto(link);
  await someone.page.getByRole("button", { name: "Join" }).click();
  await choosePasscode(someone);
  await waitLive(someone.page);
  // Let the new device's key packages reach the relay.
  await someone.page.waitForTimeout(1_000);
}

/** The manager makes a group of `kind` with `members`; returns its id. */
export async function newGroup(manager, name, kind, members, retention) {
  await manager.page.getByRole("link", { name: "New group" }).click();
  await manager.page.getByLabel("Group name").fill(name);
  await manager.page.getByRole("radio", { name: new RegExp(`^${kind}`) }).check();
  if (retention) await manager.page.getByLabel("Messages disappear after").selectOption({ label: retention });
  for (const member of members) await manager.page.getByRole("checkbox", { name: member }).check();
  await manager.page.getByRole("button", { name: "Create group" }).click();
  await manager.page.getByRole("heading", { level: 1, name }).waitFor({ timeout: 30_000 });
  return new URL(manager.page.url()).pathname.split("/")[2];
}

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

/** The QR code an app page shows (the first one): its SVG's view box and path. */
export async function qrOnScreen(page) {
  return page.locator("svg.qr").first().evaluate((svg) => ({
    viewBox: svg.getAttribute("viewBox"),
    path: svg.querySelector("path").getAttribute("d"),
  }));
}

/**
 * Puts `qr` (from `qrOnScreen`, or null for nothing) in front of a phone's
 * camera: Chromium's fake camera plays this file (YUV4MPEG2, 640x480, grey),
 * read afresh each time the app opens the camera.
 */
export function showToCamera(file, qr) {
  const [width, height] = [640, 480];
  const luma = Buffer.alloc(width * height, 255);
  if (qr) {
    const [min, , size] = qr.viewBox.split(/\s+/).map(Number);
    const scale = Math.floor(440 / size);
    const left = Math.floor((width - size * scale) / 2);
    const top = Math.floor((height - size * scale) / 2);
    for (const [, x, y] of qr.path.matchAll(/M(\d+),(\d+)/g)) {
      const [px, py] = [left + (Number(x) - min) * scale, top + (Number(y) - min) * scale];
      for (let row = py; row < py + scale; row++) luma.fill(0, row * width + px, row * width + px + scale);
    }
  }
  const chroma = Buffer.alloc((width / 2) * (height / 2) * 2, 128);
  const frame = Buffer.concat([Buffer.from("FRAME\n"), luma, chroma]);
  writeFileSync(file, Buffer.concat([Buffer.from(`YUV4MPEG2 W${width} H${height} F5:1 Ip A1:1 C420jpeg\n`), frame, frame]));
}

/** Looks for `needles` (text, as UTF-8 bytes) in the WebAssembly memory of
 * a DevTools target, through `send` (its protocol). The memory is found as
 * DevTools finds it: in the closure of the wasm-bindgen glue function that
 * `expression` names (its `wasm` variable), so that the app needs no hook. */
async function wasmMemoryHolds(send, expression, needles) {
  await send("Debugger.enable", {});
  try {
    const { result: glue } = await send("Runtime.evaluate", { expression });
    assert.ok(glue.objectId, `found the wasm-bindgen glue (${expression})`);
    const { internalProperties = [] } = await send("Runtime.getProperties", { objectId: glue.objectId, ownProperties: false });
    const scopes = internalProperties.find((p) => p.name === "[[Scopes]]");
    assert.ok(scopes, "the glue's closure scopes are readable");
    const { result: scopeList } = await send("Runtime.getProperties", { objectId: scopes.value.objectId, ownProperties: true });
    for (const scope of scopeList) {
      if (!scope.value?.objectId) continue;
      const { result: names } = await send("Runtime.getProperties", { objectId: scope.value.objectId, ownProperties: true });
      const wasm = names.find((v) => v.name === "wasm" && v.value?.objectId);
      if (!wasm) continue;
      const { result } = await send("Runtime.callFunctionOn", {
        objectId: wasm.value.objectId,
        returnByValue: true,
        arguments: [{ value: needles }],
        functionDeclaration: `function (needles) {
          const bytes = new Uint8Array(this.memory.buffer);
          const encoder = new TextEncoder();
          const found = [];
          for (const needle of needles) {
            const n = encoder.encode(needle);
            for (let i = bytes.indexOf(n[0]); i !== -1 && i <= bytes.length - n.length; i = bytes.indexOf(n[0], i + 1)) {
              let j = 1;
              while (j < n.length && bytes[i + j] === n[j]) j++;
              if (j === n.length) { found.push(needle); break; }
            }
          }
          return { bytes: bytes.length, found };
        }`,
      });
      return result.value;
    }
    assert.fail(`no wasm memory in the glue's scopes (${expression})`);
  } finally {
    await send("Debugger.disable", {});
  }
}

/** Looks for `needles` in a target's JavaScript heap (a snapshot, taken
 * after a full garbage collection). */
async function jsHeapHolds(send, on, needles) {
  let snapshot = "";
  const off = on("HeapProfiler.addHeapSnapshotChunk", ({ chunk }) => (snapshot += chunk));
  await send("HeapProfiler.takeHeapSnapshot", { reportProgress: false });
  off();
  return needles.filter((needle) => snapshot.includes(needle));
}

/** A canary scan of a phone's memory: which of `needles` (the team's names,
 * the passcode) the page and its crypto worker still hold, in their
 * WebAssembly memories and their JavaScript heaps. The worker is reached
 * through the page's DevTools session (`Target.setAutoAttach`). */
export async function memoryHolds(someone, needles) {
  const cdp = await someone.context.newCDPSession(someone.page);
  const on = (event, handler) => {
    cdp.on(event, handler);
    return () => cdp.off(event, handler);
  };
  const pageSend = (method, params) => cdp.send(method, params);
  const page = {
    wasm: await wasmMemoryHolds(pageSend, "Object.values(window.wasmBindings).find((f) => typeof f === 'function')", needles),
    heap: await jsHeapHolds(pageSend, on, needles),
  };
  // The crypto worker, as a target of its own.
  const attached = [];
  const stopAttaching = on("Target.attachedToTarget", (event) => attached.push(event));
  await cdp.send("Target.setAutoAttach", { autoAttach: true, waitForDebuggerOnStart: false, flatten: false });
  for (let tries = 0; !attached.some((a) => a.targetInfo.type === "worker") && tries < 50; tries++) {
    await new Promise((r) => setTimeout(r, 100));
  }
  stopAttaching();
  const workers = [];
  for (const { sessionId, targetInfo } of attached.filter((a) => a.targetInfo.type === "worker")) {
    let next = 1;
    const waiting = new Map();
    const listeners = new Map();
    const offMessages = on("Target.receivedMessageFromTarget", (event) => {
      if (event.sessionId !== sessionId) return;
      const message = JSON.parse(event.message);
      if (message.id && waiting.has(message.id)) {
        const { resolve, reject } = waiting.get(message.id);
        waiting.delete(message.id);
        if (message.error) reject(new Error(`${message.error.message} (${targetInfo.url})`));
        else resolve(message.result);
      } else if (message.method) {
        for (const handler of listeners.get(message.method) ?? []) handler(message.params);
      }
    });
    const send = (method, params = {}) =>
      new Promise((resolve, reject) => {
        const id = next++;
        waiting.set(id, { resolve, reject });
        cdp.send("Target.sendMessageToTarget", { sessionId, message: JSON.stringify({ id, method, params }) }).catch(reject);
      });
    const onWorker = (event, handler) => {
      listeners.set(event, [...(listeners.get(event) ?? []), handler]);
      return () => listeners.set(event, (listeners.get(event) ?? []).filter((h) => h !== handler));
    };
    workers.push({
      url: targetInfo.url,
      wasm: await wasmMemoryHolds(send, "wasm_bindgen", needles),
      heap: await jsHeapHolds(send, onWorker, needles),
    });
    offMessages();
  }
  await cdp.detach();
  return { page, workers };
}
