// web_ui.js: drives headless chromium (puppeteer-core from web/node_modules)
// over the gateway's page, as web_ui.py set it up; argv[2] is a JSON spec.
// Prints PASS/FAIL lines, the time to first graph, and DONE; saves a
// screenshot of each page in spec.artifacts. Exit 1 when a check failed.
"use strict";
const { spec, check, WAIT, launch, watch, finish } = require("./webtest.js");

// Coloured pixels of the graph's canvas (series are drawn in app.js's
// palette; axes, grid and text are grey): a drawn line, not just the axes.
async function seriesPixels(page) {
  return page.evaluate(() => {
    const c = document.querySelector(".panel .uplot canvas");
    if (!c) return -1;
    const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
    let n = 0;
    for (let i = 0; i < d.length; i += 4)
      if (d[i + 3] > 100 && Math.max(d[i], d[i + 1], d[i + 2]) - Math.min(d[i], d[i + 1], d[i + 2]) > 60) n++;
    return n;
  });
}

// uPlot's legend without live values lists the y series only.
const legendCount = (page) => page.$$eval(".panel .u-legend .u-series", (s) => s.length);

// Runs |act| and waits until the panel has drawn a new graph.
async function redraw(page, act) {
  await page.evaluate(() => { window.orreryTimings.graphMs = 0; });
  await act();
  await page.waitForFunction(() => window.orreryTimings.graphMs > 0, WAIT);
}
const rowCount = (page) => page.$$eval(".panel .data-table tbody tr", (r) => r.length);

async function main() {
  const t0 = Date.now();
  const browser = await launch();
  try {
    const page = await browser.newPage();
    const { pageErrors, shot } = watch(page);
    console.log("chromium started in " + (Date.now() - t0) + " ms");

    // 1. Type a query, press Enter: the table has the deduplicated series.
    await page.goto(spec.base + "/", { waitUntil: "load" });
    await page.waitForSelector(".panel textarea.expr", WAIT);
    await page.type(".panel textarea.expr", "up");
    await page.keyboard.press("Enter");
    await page.waitForSelector(".panel .data-table tbody tr", WAIT);
    const rows = await rowCount(page);
    check("table shows the deduplicated series", rows === spec.dedup, rows + " rows, want " + spec.dedup);
    const url1 = await page.url();
    check("the URL keeps the panel", /[?&]g0\.expr=up(&|$)/.test(url1) && /g0\.tab=1/.test(url1), url1);
    await shot("query-table");

    // 2. The Graph tab draws, and its legend lists the series.
    await redraw(page, () => page.click(".panel .tab-graph"));
    // The range control: the last 20 s, where the scrapes are.
    await redraw(page, async () => {
      await page.$eval(".panel .opt-range_input", (i) => { i.value = ""; });
      await page.type(".panel .opt-range_input", "20s");
      await page.keyboard.press("Tab");
    });
    const px = await seriesPixels(page);
    check("graph canvas has a drawn series", px > 50, px + " coloured pixels");
    const leg = await legendCount(page);
    check("legend lists the series", leg === spec.dedup, leg + " entries, want " + spec.dedup);
    // Hover over the middle of the plot: the tooltip names a series.
    const box = await (await page.$(".panel .u-over")).boundingBox();
    await page.mouse.move(box.x + box.width * 0.9, box.y + box.height / 2);
    const tip = await page.$eval(".panel .tooltip", (t) => (t.hidden ? "" : t.textContent)).catch(() => "");
    check("hovering shows a series' labels and value", /up\{.*\}/.test(tip) && /value: /.test(tip), tip);
    // The legend toggle hides it.
    await page.click(".panel .opt-legend");
    const legHidden = await page.$eval(".panel .u-legend", (l) => getComputedStyle(l).display === "none");
    check("the legend can be hidden", legHidden);
    await page.click(".panel .opt-legend");
    await shot("query-graph");

    // 3. Deduplication off: the HA pair's series double.
    await redraw(page, () => page.click(".panel .opt-deduplicate"));
    const leg2 = await legendCount(page);
    check("dedup off doubles the series (graph legend)", leg2 === 2 * spec.dedup && leg2 === spec.nodedup,
      leg2 + " entries, want " + spec.nodedup);
    await page.click(".panel .tab-table");
    await page.waitForFunction((n) => document.querySelectorAll(".panel .data-table tbody tr").length === n,
      WAIT, spec.nodedup).catch(() => {});
    const rows2 = await rowCount(page);
    check("dedup off doubles the series (table)", rows2 === spec.nodedup, rows2 + " rows");
    await shot("query-nodedup");

    // 4. A reload of the URL reproduces the view (dedup stays off).
    await page.reload({ waitUntil: "load" });
    await page.waitForSelector(".panel .data-table tbody tr", WAIT);
    const rows3 = await rowCount(page);
    const dd = await page.$eval(".panel .opt-deduplicate", (c) => c.checked);
    check("the URL reproduces the panel", rows3 === spec.nodedup && !dd, rows3 + " rows, dedup " + dd);

    // 5. A bad query shows Prometheus's error text above the result.
    await page.$eval(".panel textarea.expr", (t) => { t.value = ""; });
    await page.type(".panel textarea.expr", spec.bad);
    await page.keyboard.press("Enter");
    await page.waitForSelector(".panel .alert.error", WAIT);
    const err = await page.$eval(".panel .alert.error", (e) => e.textContent);
    check("a bad query shows Prometheus's error", err === "Error executing query: " + spec.bad_error,
      JSON.stringify(err));
    await shot("query-error");

    // 6. History: the earlier query is offered.
    const hist = await page.$$eval(".panel select.history option", (o) => o.map((x) => x.value));
    check("history lists the earlier queries", hist.includes("up") && hist.includes(spec.bad), hist.join(" | "));

    // 7. Stores and status pages.
    await page.goto(spec.base + "/stores", { waitUntil: "load" });
    await page.waitForSelector("tr.endpoint", WAIT);
    const eps = await page.$$eval("tr.endpoint", (r) => r.map((x) => [x.querySelector(".ep-name").textContent,
      x.children[1].textContent]));
    const names = eps.map((e) => e[0]).sort();
    check("the stores page lists every endpoint, up", JSON.stringify(names) === JSON.stringify(spec.stores)
      && eps.every((e) => e[1] === "UP"), JSON.stringify(eps));
    await shot("stores");
    await page.goto(spec.base + "/status", { waitUntil: "load" });
    await page.waitForSelector("table.flags", WAIT);
    const flags = await page.$eval("table.flags", (t) => t.textContent);
    const build = await page.$eval("table.buildinfo", (t) => t.textContent);
    const rt = await page.$eval("table.runtime", (t) => t.textContent).catch(() => "");
    check("the status page shows flags, build and runtime info", flags.includes("query.replica-label")
      && build.includes("version") && rt.includes("Uptime") && rt.includes("process_resident_memory_bytes"),
      flags.slice(0, 60) + " / " + rt.slice(0, 120));
    await shot("status");

    // 8. The gateway behind --web.route-prefix: the page, a query, the
    // stores page through the nav's relative link.
    await page.goto(spec.prefixed + "/graph", { waitUntil: "load" });
    await page.waitForSelector(".panel textarea.expr", WAIT);
    await page.type(".panel textarea.expr", "up");
    await page.keyboard.press("Enter");
    await page.waitForSelector(".panel .data-table tbody tr", WAIT);
    const rowsP = await rowCount(page);
    await Promise.all([page.waitForNavigation(WAIT), page.click('#nav a[data-page="stores"]')]);
    await page.waitForSelector("tr.endpoint", WAIT);
    const epsP = (await page.$$("tr.endpoint")).length;
    check("behind a route prefix: query and stores pages work", rowsP === spec.dedup && epsP === 2
      && page.url() === spec.prefixed + "/stores", rowsP + " rows, " + epsP + " endpoints, " + page.url());
    await shot("prefixed-stores");

    // 9. Time to first graph: 200 series x 1,001 points (5 s at 5 ms steps,
    // after the first scrapes of every series), from a link.
    while (Date.now() / 1000 < spec.t_first + 6) await new Promise((r) => setTimeout(r, 100));
    const end = (Date.now() / 1000 - 0.5).toFixed(3);
    const q = new URLSearchParams({ "g0.expr": spec.big_expr, "g0.tab": "0", "g0.range_input": "5s",
      "g0.end_input": end, "g0.step_input": "0.005" });
    const tNav = Date.now();
    await page.goto(spec.base + "/graph?" + q.toString(), { waitUntil: "load" });
    await page.waitForFunction(() => window.orreryTimings && window.orreryTimings.graphMs, { timeout: 60000 });
    const tDrawn = Date.now() - tNav;
    const tm = await page.evaluate(() => window.orreryTimings);
    const leg3 = await legendCount(page);
    const pts = await page.evaluate(() => document.querySelector(".panel .uplot") !== null);
    check("the 200-series graph draws", leg3 === spec.big_series && pts && (await seriesPixels(page)) > 50,
      leg3 + " series");
    console.log("time to first graph (" + spec.big_series + " series x 1001 points): " + Math.round(tm.graphMs)
      + " ms from Execute to drawn (query included), " + tDrawn + " ms from navigation");
    await shot("graph-200-series");
    check("no JavaScript errors on the pages", pageErrors.length === 0, pageErrors.join("; "));
  } finally {
    await browser.close();
  }
  console.log("DONE");
}

finish(main);
