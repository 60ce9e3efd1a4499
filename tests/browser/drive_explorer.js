// drive_explorer.js -- drives the hnswc.viz explorer page in Debian's
// Chromium (never a downloaded browser) and writes down what it shows.
//
//   node drive_explorer.js PAGE.html PLAN.json OUT.json [SCREENSHOT.png]
//
// PLAN: {"queries": [{"x": px, "y": py, "ef": 4, "k": 5}, ...]}, click
// positions in canvas pixels. For each query the script clicks the map, sets
// k and ef the way a person does (typing, then leaving the field), then
// presses "step" until the last step, reading the page's status line after
// every press, then checks "back" and "run to end". OUT holds, per query, the
// query vector the page searched (from window.hnswcExplorer) and every
// status it displayed. tests/viz/test_explorer.py compares OUT with the
// library's own trace of the same query. This script judges nothing.
"use strict";
const fs = require("fs");
const os = require("os");
const path = require("path");
// playwright-core as `make test-viz` installs it ($HNSWC_PLAYWRIGHT), else
// from a node_modules found the usual way
const { chromium } = require(process.env.HNSWC_PLAYWRIGHT || "playwright-core");

const CHROMIUM = process.env.HNSWC_CHROMIUM || "/usr/bin/chromium";

async function status(page) {
  return page.evaluate(() => {
    const t = id => document.getElementById(id).textContent;
    return { layer: t("layer"), step: t("stepno"), expanded: t("expanded"),
             visited: t("visited"), results: t("results") };
  });
}

async function main() {
  const [pageFile, planFile, outFile, shot] = process.argv.slice(2);
  const plan = JSON.parse(fs.readFileSync(planFile, "utf8"));
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), "hnswc-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run"],
    viewport: { width: 1100, height: 800 },
  });
  const out = { queries: [], errors: [], requests: [] };
  try {
    const page = await context.newPage();
    page.on("pageerror", e => out.errors.push(String(e)));
    page.on("console", m => { if (m.type() === "error") out.errors.push(m.text()); });
    page.on("request", r => { if (!r.url().startsWith("file:")) out.requests.push(r.url()); });
    await page.goto("file://" + path.resolve(pageFile));
    out.title = await page.title();
    const canvas = page.locator("#map");
    for (const q of plan.queries) {
      for (const [id, v] of [["k", q.k], ["ef", q.ef]]) {
        await page.fill("#" + id, String(v));
        await page.press("#" + id, "Tab");          // "change" fires on leaving the field
      }
      await canvas.click({ position: { x: q.x, y: q.y } });
      const rec = { plan: q, query: await page.evaluate(() => window.hnswcExplorer.query()),
                    start: await status(page), steps: [] };
      for (let guard = 0; guard < 100000; guard++) {
        const s = await status(page);
        const [i, n] = s.step.split(" of ").map(Number);
        if (i >= n) break;
        await page.click("#step");
        rec.steps.push(await status(page));
      }
      await page.click("#back");
      rec.afterBack = await status(page);
      await page.click("#run");
      rec.afterRun = await status(page);
      await page.click("#reset");
      rec.afterReset = await status(page);
      await page.click("#run");
      out.queries.push(rec);
    }
    if (shot) {
      // a picture for people: the last query, a few steps into layer 0
      await page.click("#reset");
      for (let i = 0; i < 6; i++) await page.click("#step");
      await page.screenshot({ path: shot, fullPage: true });
    }
  } finally {
    await context.close();
    fs.rmSync(profile, { recursive: true, force: true });
  }
  fs.writeFileSync(outFile, JSON.stringify(out, null, 1));
}

main().catch(e => { console.error(e); process.exit(1); });
