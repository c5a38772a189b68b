// The app's UI in real headless Chromium, served by the built components on real Spin (`spin up
// --component-id`): the model-service alone on one port (its pod) and the app alone on another
// (its pod), wired by the `model_service_url` variable, as in the cluster. Checks a phishing and a legitimate URL from
// the test split, feedback with its thank-you and its count in /metrics, keyboard-only use, phone
// width, and a readable error after the model-service is stopped. Screenshots go to
// $TEST_OUTPUT_DIR/browser (default target/test-output/browser).
//
//   node tests/browser/ui.test.mjs        (after the components are built)
//
// Env: SPIN_BIN (default ../shared/tools/spin), CHROMIUM (default /usr/bin/chromium),
// PHISHING_DATA_DIR (test split).

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
const spinBin = process.env.SPIN_BIN || path.join(root, "../shared/tools/spin");
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
if (!existsSync(spinBin)) skipOrFail(`no Spin CLI at ${spinBin}; set SPIN_BIN`);
for (const wasm of ["app.wasm", "model_service.prewarmed.wasm"]) {
  const file = path.join(root, "target/wasm32-wasip2/component", wasm);
  if (!existsSync(file)) skipOrFail(`no ${file}; build the components first (spin build)`);
}
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

/** Starts `spin up` with component `name` only on `port` and waits until `probe` answers. */
async function serve(name, port, variables, probe) {
  const state = mkdtempSync(path.join(tmpdir(), `spin-${name}-`));
  const args = ["up", "-f", path.join(root, "spin.toml"), "--component-id", name];
  args.push("--listen", `127.0.0.1:${port}`, "--state-dir", state, "--quiet");
  const env = { ...process.env };
  for (const [k, v] of Object.entries(variables)) env[`SPIN_VARIABLE_${k.toUpperCase()}`] = v;
  const child = spawn(spinBin, args, { stdio: ["ignore", "ignore", "inherit"], env });
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

/** The sample once it reaches `want` (the app counts after its answer has left), or its value after 10 s. */
async function metricReaching(base, sample, want) {
  const deadline = Date.now() + 10_000;
  let value = await metric(base, sample);
  while (value < want && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 20));
    value = await metric(base, sample);
  }
  return value;
}

/** First URL of `label` in the test split that the served model puts in the band `verdict`. */
async function pick(modelBase, label, rows, verdict) {
  for (const [, url] of rows.filter(([l]) => l === label).slice(0, 100)) {
    const r = await fetch(`${modelBase}/predict`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ url }),
    });
    const v = await r.json();
    if (v.verdict === verdict) return url;
  }
  throw new Error(`no ${label} URL in the test split gets the verdict ${verdict}`);
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
  model = await serve("model-service", modelPort, {}, `${modelBase}/v2/health/ready`);
  app = await serve("app", appPort, { model_service_url: modelBase }, `${appBase}/health`);

  const rows = readFileSync(path.join(dataDir, "test.txt"), "utf8")
    .split("\n")
    .filter((l) => l.includes("\t"))
    .map((l) => l.split("\t"));
  const phishingUrl = await pick(modelBase, "phishing", rows, "likely_phishing");
  const legitUrl = await pick(modelBase, "legitimate", rows, "likely_safe");

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
  assert.equal(
    await metricReaching(appBase, 'phishing_app_feedback_total{version="local",verdict="agree"}', agreeBefore + 1),
    agreeBefore + 1,
  );
  await page.screenshot({ path: path.join(outDir, "2-feedback-thanks.png"), fullPage: true });
  step("Agree → thank-you shown, buttons disabled, /metrics counts it");

  await page.fill("#url", legitUrl);
  await page.click("#check");
  await verdict.filter({ hasText: "Likely safe" }).waitFor();
  assert.ok(await page.locator("#agree").isEnabled(), "feedback re-enabled for a new verdict");
  assert.ok(await page.locator("#thanks").isHidden());
  await page.screenshot({ path: path.join(outDir, "3-legitimate-verdict.png"), fullPage: true });
  step("legitimate URL from the test split → \"Likely safe\"");

  // The classic trick: the real site in bold, the reason in words, the suspicious parts marked
  // (in text too, for screen readers).
  const trick = "https://appleid.apple.com.secure-id-check.com/signin";
  for (const [width, shot] of [[1100, "6-explained-desktop.png"], [375, "7-explained-phone.png"]]) {
    await page.setViewportSize({ width, height: 800 });
    await page.fill("#url", trick);
    await page.click("#check");
    await page.locator("#site-name").filter({ hasText: "secure-id-check.com" }).waitFor();
    await verdict.filter({ hasText: "Likely phishing" }).waitFor();
    const reasons = await page.locator("#reasons li").allTextContents();
    assert.ok(reasons.some((r) => r.includes("'apple.com' only appears in front of it")), reasons.join(" | "));
    assert.ok(reasons.every((r) => /^(!|✓)(Warning|In its favour): /.test(r)), reasons.join(" | "));
    const marks = await page.locator("#checked-url mark").allTextContents();
    assert.ok(marks.length > 0 && marks.every((m) => m.endsWith(" (looks suspicious)")), marks.join(" | "));
    assert.ok(await page.locator("#marks-legend").isVisible());
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth);
    assert.equal(overflow, false, `no horizontal scrolling at ${width} px`);
    await page.waitForTimeout(400); // the meter's 0.3 s transition
    await page.screenshot({ path: path.join(outDir, shot), fullPage: true });
  }
  step("brand-in-subdomain trick → real site secure-id-check.com in bold, reason listed, parts marked (1100 and 375 px)");

  // A known site's sign-in page: likely safe, and the reason says why.
  await page.setViewportSize({ width: 1100, height: 800 });
  await page.fill("#url", "https://www.facebook.com/login.php");
  await page.click("#check");
  await verdict.filter({ hasText: "Likely safe" }).waitFor();
  await page.locator("#reasons li").filter({ hasText: "facebook.com is a widely used site" }).waitFor();
  step("a known site's sign-in page → \"Likely safe\", \"facebook.com is a widely used site\"");

  // A phishing link as company mail delivers it, rewritten by a link wrapper (Proofpoint URL
  // Defense): scored as the page it leads to, which the verdict names as the real site.
  const wrapped = "https://urldefense.com/v3/__https://docs-share-review.top/invoice/view__;!!G3vK!c2Fm$";
  for (const [width, shot] of [[1100, "12-wrapped-link-desktop.png"], [375, "13-wrapped-link-phone.png"]]) {
    await page.setViewportSize({ width, height: 800 });
    await page.fill("#url", wrapped);
    await page.click("#check");
    await verdict.filter({ hasText: "Likely phishing" }).waitFor();
    await page.locator("#site-name").filter({ hasText: "docs-share-review.top" }).waitFor();
    assert.equal(await page.locator("#site-via").textContent(), " (the link passes through urldefense.com)");
    await page.locator("#reasons li").filter({ hasText: "passes you on to docs-share-review.top" }).waitFor();
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth);
    assert.equal(overflow, false, `no horizontal scrolling at ${width} px`);
    await page.waitForTimeout(400);
    await page.screenshot({ path: path.join(outDir, shot), fullPage: true });
  }
  // A page read whole names no other site.
  await page.fill("#url", "https://www.facebook.com/login.php");
  await page.click("#check");
  await page.locator("#site-name").filter({ hasText: "facebook.com" }).waitFor();
  assert.equal(await page.locator("#site-via").textContent(), "");
  step("a phishing link inside Proofpoint's wrapper → \"Likely phishing\", real site docs-share-review.top, through urldefense.com (1100 and 375 px)");

  // The middle band: a page on a hosting service that names a brand in its path.
  for (const [width, shot] of [[1100, "9-suspicious-desktop.png"], [375, "10-suspicious-phone.png"]]) {
    await page.setViewportSize({ width, height: 800 });
    await page.fill("#url", "https://sites.google.com/view/paypal-secure-account-update");
    await page.click("#check");
    await verdict.filter({ hasText: "Suspicious" }).waitFor();
    assert.ok(await page.locator("#result").evaluate((e) => e.classList.contains("suspicious")));
    await page.locator("#reasons li").filter({ hasText: "'paypal.com' appears in the address's path" }).waitFor();
    await page.waitForTimeout(400);
    await page.screenshot({ path: path.join(outDir, shot), fullPage: true });
  }
  step("a Google Sites page naming PayPal → \"Suspicious\", the reason says why (1100 and 375 px)");

  // Not a web address: its own message, no score.
  for (const [width, shot] of [[1100, "8-not-a-web-address.png"], [375, "11-not-a-web-address-phone.png"]]) {
    await page.setViewportSize({ width, height: 800 });
    await page.fill("#url", "not a url at all");
    await page.click("#check");
    await page.locator("#error").filter({ hasText: "doesn't look like a web address" }).waitFor();
    assert.ok(await page.locator("#result").isHidden(), "no verdict or score for a non-URL");
    await page.screenshot({ path: path.join(outDir, shot), fullPage: true });
  }
  await page.setViewportSize({ width: 1100, height: 800 });
  step("\"not a url at all\" → \"That doesn't look like a web address\", no score (1100 and 375 px)");

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

  // The 422 (not a web address) and 502 (model-service stopped) answers are logged by Chromium as
  // failed loads; anything else is a script error.
  assert.deepEqual(consoleErrors.filter((e) => !e.includes("502") && !e.includes("422")), [], "no script errors");
  console.log(`browser test passed (${steps.length} steps); screenshots in ${outDir}`);
} catch (e) {
  console.error("browser test FAILED:", e);
  process.exitCode = 1;
} finally {
  if (browser) await browser.close();
  for (const c of [app, model]) if (c) await stop(c);
}
