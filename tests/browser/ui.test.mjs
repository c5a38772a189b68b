// The app's UI in real headless Chromium, served by the built components in wasm-host:
// the model-service alone on one port (its pod) and the app alone on another (its pod), wired by
// the `model_service_url` variable, as in the cluster. Checks a phishing and a legitimate URL from
// the test split, feedback with its thank-you and its count in /metrics, keyboard-only use, phone
// width, and a readable error after the model-service is stopped. Screenshots go to
// $TEST_OUTPUT_DIR/browser (default target/test-output/browser).
//
//   node tests/browser/ui.test.mjs        (after the components and wasm-host are built)
//
// Env: WASM_HOST (binary), CHROMIUM (default /usr/bin/chromium), PHISHING_DATA_DIR (test split).

import { chromium } from "playwright-core";
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";
import assert from "node:assert/strict";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const ci = process.env.CI === "true" || process.env.CI === "1";
const hostBin = process.env.WASM_HOST || path.join(root, "target/release/wasm-host");
const chromiumPath = process.env.CHROMIUM || "/usr/bin/chromium";
const outDir = path.join(process.env.TEST_OUTPUT_DIR || path.join(root, "target/test-output"), "browser");
const dataDir = process.env.PHISHING_DATA_DIR || path.join(root, "../shared/data/phishing");

function skipOrFail(message) {
  if (ci) {
    console.error(`FAILED: ${message} (required under CI)`);
    process.exit(1);
  }
  console.error(`SKIPPED: ${message}`);
  process.exit(0);
}

if (!existsSync(chromiumPath)) skipOrFail(`no Chromium at ${chromiumPath}; apt-get install chromium`);
if (!existsSync(hostBin)) skipOrFail(`no wasm-host at ${hostBin}; cargo build --release -p wasm-host`);
if (!existsSync(path.join(dataDir, "test.txt"))) {
  skipOrFail(`no test split at ${dataDir}/test.txt; set PHISHING_DATA_DIR`);
}
mkdirSync(outDir, { recursive: true });

async function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
    srv.on("error", reject);
  });
}

/** Starts `wasm-host serve` and waits until `probe` answers. */
async function serve(name, args, probe) {
  const child = spawn(hostBin, ["serve", "-f", path.join(root, "spin.toml"), ...args], {
    stdio: ["ignore", "inherit", "inherit"],
  });
  child.on("exit", (code, signal) => {
    if (!child.stopping) console.error(`${name} exited early (code ${code}, signal ${signal})`);
  });
  const deadline = Date.now() + 120_000; // compiling the model-service takes seconds
  for (;;) {
    try {
      const r = await fetch(probe);
      if (r.ok) return child;
    } catch (_) {
      // not listening yet
    }
    if (exited(child)) throw new Error(`${name} did not start`);
    if (Date.now() > deadline) throw new Error(`${name} did not answer ${probe} in time`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

const exited = (child) => child.exitCode !== null || child.signalCode !== null;

function stop(child) {
  return new Promise((resolve) => {
    if (exited(child)) return resolve();
    child.stopping = true;
    child.on("exit", () => resolve());
    child.kill("SIGTERM");
  });
}

async function metric(base, sample) {
  const text = await (await fetch(`${base}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith(sample + " "));
  assert.ok(line, `no sample ${sample} in /metrics`);
  return Number(line.slice(sample.length + 1));
}

/** First URL of `label` in the test split that the served model also classifies as `label`. */
async function pick(modelBase, label, rows) {
  for (const [, url] of rows.filter(([l]) => l === label).slice(0, 100)) {
    const r = await fetch(`${modelBase}/predict`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ url }),
    });
    const v = await r.json();
    if (v.label === label) return url;
  }
  throw new Error(`no ${label} URL in the test split is classified as ${label}`);
}

const steps = [];
function step(name) {
  steps.push(name);
  console.log(`  ✓ ${name}`);
}

const modelPort = await freePort();
const appPort = await freePort();
const modelBase = `http://127.0.0.1:${modelPort}`;
const appBase = `http://127.0.0.1:${appPort}`;
let model, app, browser;
try {
  model = await serve("model-service", ["--component", "model-service", "--listen", `127.0.0.1:${modelPort}`], `${modelBase}/v2/health/ready`);
  app = await serve(
    "app",
    ["--component", "app", "--listen", `127.0.0.1:${appPort}`, "--variable", `model_service_url=${modelBase}`],
    `${appBase}/health`,
  );

  const rows = readFileSync(path.join(dataDir, "test.txt"), "utf8")
    .split("\n")
    .filter((l) => l.includes("\t"))
    .map((l) => l.split("\t"));
  const phishingUrl = await pick(modelBase, "phishing", rows);
  const legitUrl = await pick(modelBase, "legitimate", rows);

  // A fresh profile every run (playwright passes it as --user-data-dir).
  browser = await chromium.launchPersistentContext(mkdtempSync(path.join(tmpdir(), "chromium-")), {
    executablePath: chromiumPath,
    headless: true,
    viewport: { width: 1100, height: 800 },
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  const page = browser.pages()[0] || (await browser.newPage());
  const consoleErrors = [];
  page.on("console", (m) => m.type() === "error" && consoleErrors.push(m.text()));
  page.on("pageerror", (e) => consoleErrors.push(String(e)));

  await page.goto(appBase + "/");
  assert.equal(await page.title(), "Phishing URL Check");
  // The version of the model the model-service builds in.
  const modelVersion = JSON.parse(readFileSync(path.join(root, "model/model-card.json"), "utf8")).version;
  await page.getByText(`model ${modelVersion}`).waitFor();
  step("page loads and shows the app and model versions");

  // Keyboard only: Tab to the field, type, Enter.
  await page.keyboard.press("Tab");
  assert.equal(await page.evaluate(() => document.activeElement.id), "url");
  await page.keyboard.type(phishingUrl);
  await page.keyboard.press("Enter");
  const verdict = page.locator("#verdict");
  await verdict.filter({ hasText: "Likely phishing" }).waitFor();
  const scoreText = await page.locator("#score").textContent();
  const pct = Number(/([\d.]+)%/.exec(scoreText)[1]);
  assert.ok(pct >= 50 && pct <= 100, `phishing score ${scoreText}`);
  assert.ok(await page.locator("#result").evaluate((e) => e.classList.contains("phishing")));
  assert.equal(await page.locator("#meter").getAttribute("aria-valuenow"), String(pct));
  await page.screenshot({ path: path.join(outDir, "1-phishing-verdict.png"), fullPage: true });
  step(`phishing URL from the test split → "Likely phishing", ${scoreText}`);

  const agreeBefore = await metric(appBase, 'phishing_app_feedback_total{version="local",verdict="agree"}');
  await page.click("#agree");
  await page.locator("#thanks").filter({ hasText: "Thank you" }).waitFor();
  assert.ok(await page.locator("#agree").isDisabled());
  assert.ok(await page.locator("#disagree").isDisabled());
  assert.equal(await metric(appBase, 'phishing_app_feedback_total{version="local",verdict="agree"}'), agreeBefore + 1);
  await page.screenshot({ path: path.join(outDir, "2-feedback-thanks.png"), fullPage: true });
  step("Agree → thank-you shown, buttons disabled, /metrics counts it");

  await page.fill("#url", legitUrl);
  await page.click("#check");
  await verdict.filter({ hasText: "Looks legitimate" }).waitFor();
  assert.ok(await page.locator("#agree").isEnabled(), "feedback re-enabled for a new verdict");
  assert.ok(await page.locator("#thanks").isHidden());
  await page.screenshot({ path: path.join(outDir, "3-legitimate-verdict.png"), fullPage: true });
  step("legitimate URL from the test split → \"Looks legitimate\"");

  await page.fill("#url", "   ");
  await page.keyboard.press("Enter");
  await page.locator("#error").filter({ hasText: "Enter a URL" }).waitFor();
  step("empty input → in-page message");

  await page.setViewportSize({ width: 375, height: 740 });
  await page.fill("#url", phishingUrl);
  await page.click("#check");
  await verdict.filter({ hasText: "Likely phishing" }).waitFor();
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth);
  assert.equal(overflow, false, "no horizontal scrolling at phone width");
  await page.screenshot({ path: path.join(outDir, "4-phone-width.png"), fullPage: true });
  step("phone width (375 px): verdict visible, no horizontal scroll");

  await stop(model);
  await page.fill("#url", legitUrl);
  await page.click("#check");
  const error = page.locator("#error");
  await error.filter({ hasText: "classifier is unavailable" }).waitFor();
  const text = await error.textContent();
  assert.ok(!text.includes("{"), `no raw JSON in the message: ${text}`);
  assert.ok(await page.locator("#result").isHidden());
  assert.ok(await metric(appBase, 'phishing_app_model_service_errors_total{version="local",kind="unreachable"}') >= 1);
  await page.screenshot({ path: path.join(outDir, "5-model-service-down.png"), fullPage: true });
  step(`model-service stopped → "${text}"`);

  assert.deepEqual(consoleErrors.filter((e) => !e.includes("502")), [], "no script errors");
  console.log(`browser test passed (${steps.length} steps); screenshots in ${outDir}`);
} catch (e) {
  console.error("browser test FAILED:", e);
  process.exitCode = 1;
} finally {
  if (browser) await browser.close();
  for (const c of [app, model]) if (c) await stop(c);
}
