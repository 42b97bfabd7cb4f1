// Drives the dashboard in Debian's chromium (headless, through playwright-core) against the
// api and router in serve mode on DynamoDB Local. Set up by scripts/browser-test.sh.
import assert from "node:assert/strict";
import { createRequire } from "node:module";

const require = createRequire(process.env.PLAYWRIGHT_FROM);
const { chromium } = require("playwright-core");

const api = process.env.DASH_API;
const shots = process.env.DASH_SCREENSHOTS;
const admin = process.env.DASH_ADMIN_TOKEN;
const viewer = process.env.DASH_READ_TOKEN;
const eventId = process.env.DASH_EVENT_ID;
const step = (what) => console.log(`dashboard: ${what}`);

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--no-first-run"],
});
const failures = [];
const page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
page.on("pageerror", (e) => failures.push(`page error: ${e.message}`));
page.on("console", (m) => { if (m.type() === "error" && !/401/.test(m.text())) failures.push(`console: ${m.text()}`); });
page.on("dialog", (d) => d.accept());
page.setDefaultTimeout(15000);

async function login(token) {
  await page.goto(`${api}/dashboard`);
  await page.locator("#token").fill(token);
  await page.getByRole("button", { name: "Use token" }).click();
  await page.locator("#nav").waitFor();
}

try {
  // The token is asked once and kept in sessionStorage, never in the URL.
  await login(admin);
  assert.equal(await page.evaluate(() => sessionStorage.getItem("switchyard.token")), admin);
  assert.ok(!page.url().includes(admin));

  step("the delivery appears in Deliveries");
  const row = page.getByTestId("delivery").filter({ hasText: "pull_request opened" });
  await row.first().waitFor();
  assert.match(await row.first().innerText(), /dispatched 2/);
  await page.screenshot({ path: `${shots}/deliveries.png` });

  step("its detail shows the matched modules and the skipped one with its reason");
  await row.first().click();
  await page.getByRole("heading", { name: "pull_request opened from github" }).waitFor();
  const matched = await page.getByTestId("matched").allInnerTexts();
  assert.ok(matched.some((t) => t.startsWith("pr-review matched")), matched.join("\n"));
  const skipped = await page.getByTestId("skipped").allInnerTexts();
  assert.ok(skipped.some((t) => /release-notes skipped: action/.test(t) && /closed/.test(t)), skipped.join("\n"));
  await page.getByText("Show the payload").click();
  assert.match(await page.getByTestId("payload").innerText(), /"pull_request"/);
  // No signature or secret is shown.
  assert.doesNotMatch(await page.locator("#view").innerText(), /sha256=|X-Hub-Signature/i);

  step("a dry-run replay shows the plan");
  await page.getByTestId("dry-run").click();
  await page.getByText("Replay plan (dry run: nothing dispatched)").waitFor();
  assert.match(await page.getByTestId("replay-result").innerText(), /kept as they are\s+.*pr-review/s);
  await page.screenshot({ path: `${shots}/delivery.png`, fullPage: true });

  step("invoke a module from Modules and follow it to its job");
  await page.locator("#nav a[data-view=modules]").click();
  await page.getByTestId("module").first().waitFor();
  const words = await page.getByTestId("module").filter({ hasText: "pr-review" }).innerText();
  assert.match(words, /on pull_request opened/);
  await page.getByTestId("versions").waitFor();
  await page.screenshot({ path: `${shots}/modules.png`, fullPage: true });
  await page.getByTestId("invoke-deploy-box").click();
  await page.locator("#invoke-payload").fill('{"target": "staging"}');
  await page.getByTestId("invoke-send").click();
  await page.getByTestId("invoked-job").click();
  await page.getByRole("heading", { name: /^Job / }).waitFor();
  assert.equal(await page.getByTestId("job-status").innerText(), "queued");
  await page.screenshot({ path: `${shots}/job.png` });

  step("cancel the queued job");
  await page.getByTestId("cancel").click();
  await page.getByText("Job cancelled.").waitFor();
  assert.equal(await page.getByTestId("job-status").innerText(), "cancelled");
  assert.doesNotMatch(await page.locator("#view").innerText(), /\bnull\b|undefined|\[object/);

  step("Jobs lists it");
  await page.locator("#nav a[data-view=jobs]").click();
  await page.getByTestId("job").filter({ hasText: "deploy-box" }).first().waitFor();
  assert.match(await page.getByTestId("job").filter({ hasText: "deploy-box" }).first().innerText(), /cancelled/);
  await page.screenshot({ path: `${shots}/jobs.png` });

  step("a wrong token goes back to the prompt, with the reason in words");
  await page.evaluate(() => sessionStorage.setItem("switchyard.token", "sy_wrong"));
  await page.reload();
  await page.locator("#login").waitFor({ state: "visible" });
  assert.match(await page.locator("#flash").innerText(), /token was refused/);

  step("a read-only token shows no invoke, replay, cancel or admin controls");
  await login(viewer);
  await page.goto(`${api}/dashboard#/events/${encodeURIComponent(eventId)}`);
  await page.getByTestId("dry-run").waitFor();
  assert.equal(await page.getByTestId("replay").count(), 0);
  await page.locator("#nav a[data-view=modules]").click();
  await page.getByTestId("module").first().waitFor();
  assert.equal(await page.locator("button[data-testid^=invoke-]").count(), 0);
  assert.equal(await page.getByText("Registry versions").count(), 0);
  assert.equal(await page.locator("[data-testid^=rollback-]").count(), 0);
  await page.locator("#nav a[data-view=jobs]").click();
  await page.getByTestId("job").first().click();
  await page.getByRole("heading", { name: /^Job / }).waitFor();
  assert.equal(await page.getByTestId("cancel").count(), 0);

  assert.deepEqual(failures, []);
  step("all checks passed");
} catch (e) {
  await page.screenshot({ path: `${shots}/failure.png`, fullPage: true }).catch(() => {});
  console.error(`dashboard: FAILED (screenshot ${shots}/failure.png): ${e.stack || e}`);
  if (failures.length) console.error(failures.join("\n"));
  process.exitCode = 1;
} finally {
  await browser.close();
}
