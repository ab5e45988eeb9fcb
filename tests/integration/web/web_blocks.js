// web_blocks.js: drives headless chromium (puppeteer-core from
// web/node_modules) over the blocks page, as web_blocks.py set it up;
// argv[2] is a JSON spec. Prints PASS/FAIL lines and DONE; saves a
// screenshot of each view in spec.artifacts. Exit 1 when a check failed.
"use strict";
const { spec, check, WAIT, launch, watch, finish } = require("./webtest.js");
const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);
const sorted = (a) => a.slice().sort();

// What a person sees: the bars (those with a box on the screen), the group
// titles, the highlighted bars (drawn red).
const bars = (page) => page.$$eval(".block", (bs) => bs.filter((b) => {
  const r = b.getBoundingClientRect();
  return r.width > 0 && r.height > 0;
}).map((b) => b.dataset.ulid));
const titles = (page) => page.$$eval(".group-title", (t) => t.map((x) => x.textContent));
const redBars = (page) => page.$$eval(".block", (bs) => bs.filter((b) =>
  getComputedStyle(b).backgroundColor === "rgb(229, 57, 53)").map((b) => b.dataset.ulid));

async function open(page, url) {
  await page.goto(url, { waitUntil: "load" });
  await page.waitForSelector("body[data-ready]", WAIT);
}

async function main() {
  const browser = await launch();
  try {
    const page = await browser.newPage();
    // Local time differs from UTC, so the toggle shows.
    await page.emulateTimezone("Asia/Tokyo");
    const { pageErrors, shot } = watch(page);

    // 1. A bar per block, groups titled by their label sets, resolution lanes.
    await open(page, spec.base + "/blocks");
    const b1 = await bars(page);
    check("a bar per block of the bucket", same(sorted(b1), spec.ulids), b1.length + " bars, want " + spec.ulids.length);
    const t1 = await titles(page);
    check("groups titled by their external label sets", same(sorted(t1), spec.groups), JSON.stringify(t1));
    const perGroup = await page.$$eval(".group", (gs) => Object.fromEntries(gs.map((g) =>
      [g.dataset.labels, g.querySelectorAll(".block").length])));
    check("each group holds its blocks", same(perGroup, Object.fromEntries(Object.keys(spec.group_sizes).sort()
      .map((k) => [k, spec.group_sizes[k]]))), JSON.stringify(perGroup));
    const ds = await page.$eval(`.block[data-ulid="${spec.downsampled}"]`, (b) =>
      [b.dataset.resolution, b.closest(".lane").querySelector(".lane-name").textContent]).catch((e) => String(e));
    const lanesE = await page.$$eval('.group[data-labels="{cluster=\\"e\\"}"] .lane-name', (l) =>
      l.map((x) => x.textContent).filter(Boolean));
    check("the downsampled block is in its own 5m lane", same(ds, ["5m", "5m"]) && same(lanesE, ["raw", "5m"]),
      JSON.stringify(ds) + " " + JSON.stringify(lanesE));
    const marked = await page.$eval(`.block[data-ulid="${spec.deleted}"]`, (b) =>
      getComputedStyle(b).backgroundImage.includes("repeating-linear-gradient"));
    check("the deletion-marked block is drawn hatched", marked);
    const summary = await page.$eval(".summary", (s) => s.textContent);
    check("the summary counts the blocks and groups", summary.startsWith(spec.ulids.length + " of " +
      spec.ulids.length + " blocks in " + spec.groups.length + " groups"), summary);
    await shot("blocks-timeline");

    // 2. A click shows that block's meta.json, pretty-printed, and its marks.
    await page.click(`.block[data-ulid="${spec.deleted}"]`);
    await page.waitForSelector(".details:not([hidden]) pre.meta-json", WAIT);
    const shown = await page.$eval(".details .ulid", (u) => u.textContent);
    const json = await page.$eval(".details pre.meta-json", (p) => p.textContent);
    let parsed = null;
    try { parsed = JSON.parse(json); } catch (e) { /* checked below */ }
    check("a click shows the block's meta.json", shown === spec.deleted && same(parsed, spec.metas[spec.deleted])
      && json.includes('\n  "ulid": "' + spec.deleted + '"'), shown + " " + json.slice(0, 80));
    const marksRow = await page.$eval(".details table", (t) => t.textContent);
    check("the details list its deletion mark", /Marksdeletion at .*web_blocks test/.test(marksRow), marksRow.slice(0, 300));
    await shot("blocks-details");

    // 3. UTC / local time.
    const axisUtc = await page.$eval(".axis span", (s) => s.textContent);
    await page.click(".opt-utc");
    const axisLocal = await page.$eval(".axis span", (s) => s.textContent);
    check("the UTC toggle switches the times to local (UTC+9 here)", axisUtc.endsWith("Z") && !axisLocal.endsWith("Z")
      && new Date(axisUtc.replace(" ", "T")).getUTCHours() !== Number(axisLocal.slice(11, 13)),
      axisUtc + " -> " + axisLocal);
    await page.click(".opt-utc");

    // 4. The label filter.
    await page.type("input.filter", spec.filter);
    const b2 = await bars(page);
    const t2 = await titles(page);
    check("the label filter leaves that label's blocks", b2.length === spec.filter_count && t2.length === 1
      && t2[0].includes('cluster="b"'), b2.length + " bars in " + JSON.stringify(t2));
    await shot("blocks-filtered");
    await page.$eval("input.filter", (i) => { i.value = ""; i.dispatchEvent(new Event("input")); });
    await page.type("input.filter", "nope=x");
    const b3 = await bars(page);
    const empty = await page.$eval(".timeline .empty", (e) => e.textContent).catch(() => "");
    check("a filter matching nothing says so", b3.length === 0 && empty.includes("No block"), empty);
    await page.$eval("input.filter", (i) => { i.value = ""; i.dispatchEvent(new Event("input")); });
    check("clearing the filter shows every block again", (await bars(page)).length === spec.ulids.length);

    // 5. The overlap toggle highlights exactly the overlapping blocks.
    check("no block is highlighted before the toggle", (await redBars(page)).length === 0);
    await page.click(".opt-overlaps");
    const red = await redBars(page);
    check("the overlap toggle highlights exactly the overlapping blocks", same(sorted(red), spec.overlapping),
      JSON.stringify(sorted(red)) + " want " + JSON.stringify(spec.overlapping));
    await shot("blocks-overlaps");
    // The view is in the URL: a reload keeps the toggle.
    await open(page, page.url());
    check("the URL keeps the view", same(sorted(await redBars(page)), spec.overlapping)
      && (await page.$eval(".opt-overlaps", (c) => c.checked)), page.url());

    // 6. The compactor's page behind --web.route-prefix, titled by
    // --bucket-web-label; the nav's relative link stays under the prefix.
    await open(page, spec.prefixed + "/blocks");
    const b4 = await bars(page);
    const t4 = await titles(page);
    check("behind a route prefix (compact): every block, groups titled by the cluster label",
      same(sorted(b4), spec.ulids) && same(sorted(t4), spec.cluster_titles),
      b4.length + " bars, " + JSON.stringify(t4));
    await Promise.all([page.waitForNavigation(WAIT), page.click("#nav a")]);
    await page.waitForSelector("body[data-ready]", WAIT);
    check("the nav link stays under the prefix", page.url() === spec.prefixed + "/blocks", page.url());
    await page.click(`.block[data-ulid="${spec.downsampled}"]`);
    await page.waitForSelector(".details:not([hidden]) pre.meta-json", WAIT);
    const res = await page.$eval(".details table", (t) => t.textContent);
    check("the downsampled block's details say 5m", res.includes("Resolution5m"), res.slice(0, 200));
    await shot("blocks-prefixed-compact");
    check("no JavaScript errors on the pages", pageErrors.length === 0, pageErrors.join("; "));
  } finally {
    await browser.close();
  }
  console.log("DONE");
}

finish(main);
