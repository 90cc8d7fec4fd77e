// Shared set-up for the end-to-end tests: a real relay on a free port with a fresh data folder, and headless Chromium.
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createServer } from "node:net";
import { chromium } from "playwright-core";

export const ARTIFACTS = new URL("./artifacts/", import.meta.url).pathname;

/** One value from a relay's SQLite database (`relay` as `startRelay` gave it). */
export function relayQuery(relay, sql) {
  const script = "import sqlite3,sys\nc=sqlite3.connect(sys.argv[1])\nprint(c.execute(sys.argv[2]).fetchone()[0])";
  return execFileSync("python3", ["-c", script, join(relay.dataDir, "huddle.db"), sql]).toString().trim();
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
    server.on("error", reject);
  });
}

/** Starts the relay and resolves once /healthz answers. */
export async function startRelay({ dataDir: keepDir, port: keepPort, args = [] } = {}) {
  const bin = process.env.HUDDLE_RELAY_BIN;
  const appDir = process.env.HUDDLE_APP_DIR;
  if (!bin || !appDir) throw new Error("HUDDLE_RELAY_BIN and HUDDLE_APP_DIR must be set (scripts/test sets them)");
  const dataDir = keepDir ?? mkdtempSync(join(tmpdir(), "huddle-e2e-"));
  const port = keepPort ?? (await freePort());
  const child = spawn(bin, ["--listen", `127.0.0.1:${port}`, "--data-dir", dataDir, "--app-dir", appDir, ...args], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout.on("data", (d) => (output += d));
  child.stderr.on("data", (d) => (output += d));
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 200; i++) {
    try {
      const res = await fetch(`${url}/healthz`);
      if (res.ok) {
        return {
          url,
          port,
          dataDir,
          /** The first-run link the relay printed, if it printed one. */
          setupLink: () => output.match(/https?:\/\/\S+\/setup#[0-9a-f]{64}/)?.[0],
          /** Stops the process but keeps its data (for a restart). */
          async kill() {
            if (child.exitCode !== null) return;
            child.kill("SIGKILL");
            await new Promise((r) => child.once("exit", r));
          },
          async stop() {
            if (child.exitCode === null) {
              child.kill("SIGTERM");
              await new Promise((r) => child.once("exit", r));
            }
            rmSync(dataDir, { recursive: true, force: true });
          },
          output: () => output,
        };
      }
    } catch {
      // not listening yet
    }
    if (child.exitCode !== null) throw new Error(`relay exited early:\n${output}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  child.kill("SIGKILL");
  throw new Error(`relay did not become healthy:\n${output}`);
}

export async function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM_BIN || "/usr/bin/chromium",
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-dev-shm-usage",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

/** Collects console errors and CSP violations of a page. */
export function watchProblems(page) {
  const problems = [];
  page.on("console", (msg) => {
    if (msg.type() === "error") problems.push(`console error: ${msg.text()}`);
  });
  page.on("pageerror", (err) => problems.push(`page error: ${err.message}`));
  return problems;
}
