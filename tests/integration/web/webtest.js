// webtest.js: what the browser halves of web_ui.py and web_blocks.py share —
// the JSON spec from argv[2], PASS/FAIL lines, chromium's launch, a page's
// error log and screenshots, and the exit status the Python side reads
// (DONE printed at the end; exit 1 when a check failed, 2 when the script
// raised).
"use strict";
const path = require("path");
const spec = JSON.parse(process.argv[2]);
const puppeteer = require(path.join(spec.modules, "puppeteer-core"));

let failures = 0;
function check(name, ok, detail) {
  console.log((ok ? "PASS " : "FAIL ") + name + (detail !== undefined ? ": " + detail : ""));
  if (!ok) failures++;
}

const WAIT = { timeout: 30000 };

function launch() {
  return puppeteer.launch({
    executablePath: spec.chromium, headless: true, userDataDir: spec.profile,
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"],
    defaultViewport: { width: 1280, height: 900 },
  });
}

// The JavaScript errors |page| raises, and a full-page screenshot into
// spec.artifacts by name.
function watch(page) {
  const pageErrors = [];
  page.on("pageerror", (e) => pageErrors.push(String(e)));
  const shot = (name) => page.screenshot({ path: path.join(spec.artifacts, name + ".png"), fullPage: true });
  return { pageErrors, shot };
}

function finish(main) {
  main().then(() => process.exit(failures ? 1 : 0), (e) => {
    console.log("FAIL browser script raised: " + (e && e.stack ? e.stack : e));
    process.exit(2);
  });
}

module.exports = { spec, check, WAIT, launch, watch, finish };
