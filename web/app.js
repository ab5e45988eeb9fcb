/* app.js: the gateway's web UI, plain JavaScript (no build step): the query
 * page (panels kept in the URL as Prometheus's g0.expr=...&g0.tab=...), the
 * stores page and the status page. Every URL is relative to the page, so it
 * works behind a path prefix. The graph is uPlot (static/uPlot.js). */
"use strict";

(function () {
  const main = document.getElementById("main");
  const HISTORY_KEY = "orrery.history";
  const HISTORY_MAX = 50;
  // Timings the browser test reads: the last graph's request-to-drawn time.
  window.orreryTimings = {};

  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") e.className = v;
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else if (v !== undefined && v !== null && v !== false) e.setAttribute(k, v === true ? "" : v);
    }
    for (const k of kids) if (k !== null && k !== undefined) e.append(k);
    return e;
  }

  function page() {
    const seg = location.pathname.replace(/\/+$/, "").split("/").pop();
    return seg === "stores" || seg === "status" ? seg : "graph";
  }

  async function api(path, params) {
    const body = new URLSearchParams(params || {});
    const r = await fetch("api/v1/" + path, {
      method: params ? "POST" : "GET",
      body: params ? body : undefined,
      headers: params ? { "Content-Type": "application/x-www-form-urlencoded" } : undefined,
    });
    let j;
    try {
      j = await r.json();
    } catch (e) {
      throw new Error("unexpected response (HTTP " + r.status + ")");
    }
    if (j.status !== "success") throw new Error(j.error || "HTTP " + r.status);
    return j;
  }

  function metricName(m) {
    const name = m.__name__ || "";
    const ls = Object.keys(m).filter((k) => k !== "__name__").sort()
      .map((k) => k + "=" + JSON.stringify(m[k]));
    return name + "{" + ls.join(", ") + "}";
  }

  // ---------------------------------------------------------------- durations
  const UNITS = { y: 31536000, w: 604800, d: 86400, h: 3600, m: 60, s: 1 };
  function parseDuration(s) {
    if (!s) return null;
    s = String(s).trim();
    const re = /(\d+)(ms|y|w|d|h|m|s)/g;
    let total = 0, used = 0, m;
    while ((m = re.exec(s)) !== null) {
      total += m[2] === "ms" ? Number(m[1]) / 1000 : Number(m[1]) * UNITS[m[2]];
      used += m[0].length;
    }
    if (used !== s.length || used === 0) return /^\d+(\.\d+)?$/.test(s) ? Number(s) : null;
    return total;
  }
  // Whole seconds as Prometheus prints a duration: "1d2h3m4s", "0s".
  function formatDuration(sec) {
    let out = "";
    for (const [u, n] of Object.entries(UNITS)) {
      if (u === "y" || u === "w" || sec < n) continue;
      out += Math.floor(sec / n) + u;
      sec %= n;
    }
    return out || "0s";
  }

  // ---------------------------------------------------------------- highlighting
  // A small PromQL tokenizer for the expression box's highlight layer.
  const KEYWORDS = new Set(["by", "without", "on", "ignoring", "group_left", "group_right",
    "offset", "bool", "and", "or", "unless", "atan2", "sum", "avg", "min", "max", "count",
    "stddev", "stdvar", "topk", "bottomk", "quantile", "count_values", "group"]);
  function highlight(src) {
    const re = /("(?:[^"\\]|\\.)*"?|'(?:[^'\\]|\\.)*'?|`[^`]*`?)|(#.*)|(\d+(?:\.\d+)?(?:ms|[smhdwy])(?:\d+(?:ms|[smhdwy]))*)|(\d+(?:\.\d+)?(?:e[+-]?\d+)?|0x[0-9a-fA-F]+)|([a-zA-Z_:][a-zA-Z0-9_:]*)|(=~|!~|!=|==|<=|>=|[-+*/%^<>=]|@)|([\s\S])/g;
    const out = [];
    let m;
    while ((m = re.exec(src)) !== null) {
      let cls = null;
      if (m[1]) cls = "str";
      else if (m[2]) cls = "com";
      else if (m[3]) cls = "dur";
      else if (m[4]) cls = "num";
      else if (m[5]) {
        const rest = src.slice(re.lastIndex);
        if (KEYWORDS.has(m[5].toLowerCase())) cls = "kw";
        else if (/^\s*\(/.test(rest)) cls = "fn";
        else if (/^\s*(=~|!~|!=|=)/.test(rest) && /[{,]\s*$/.test(src.slice(0, m.index))) cls = "lbl";
        else cls = "met";
      } else if (m[6]) cls = "op";
      const span = document.createElement("span");
      if (cls) span.className = "t-" + cls;
      span.textContent = m[0];
      out.push(span);
    }
    return out;
  }

  // ---------------------------------------------------------------- history
  function history() {
    try {
      return JSON.parse(localStorage.getItem(HISTORY_KEY)) || [];
    } catch (e) {
      return [];
    }
  }
  function remember(expr) {
    const h = history().filter((x) => x !== expr);
    h.unshift(expr);
    try {
      localStorage.setItem(HISTORY_KEY, JSON.stringify(h.slice(0, HISTORY_MAX)));
    } catch (e) { /* storage full or disabled: history is best effort */ }
  }

  // ---------------------------------------------------------------- panels and the URL
  // Panel options as Prometheus's URL has them (g<i>.expr, g<i>.tab with 0 =
  // graph and 1 = table, g<i>.range_input, g<i>.end_input, g<i>.step_input,
  // g<i>.moment_input), plus Thanos Query's g<i>.deduplicate,
  // g<i>.partial_response and g<i>.max_source_resolution.
  const panels = [];

  function defaults() {
    return { expr: "", tab: 1, range_input: "1h", end_input: "", step_input: "",
      moment_input: "", deduplicate: 1, partial_response: 0, max_source_resolution: "auto",
      legend: 1 };
  }

  function readURL() {
    const q = new URLSearchParams(location.search);
    const out = [];
    for (let i = 0; q.has("g" + i + ".expr") || q.has("g" + i + ".tab"); i++) {
      const p = defaults();
      for (const k of Object.keys(p)) {
        const v = q.get("g" + i + "." + k);
        if (v !== null) p[k] = typeof p[k] === "number" ? Number(v) : v;
      }
      out.push(p);
    }
    return out.length ? out : [defaults()];
  }

  function writeURL() {
    const q = new URLSearchParams();
    panels.forEach((p, i) => {
      for (const [k, v] of Object.entries(p.opts)) {
        if (k === "legend" && v === 1) continue;
        if (v === "" && k !== "expr") continue;
        q.set("g" + i + "." + k, v);
      }
    });
    history_replace("?" + q.toString());
  }
  function history_replace(search) {
    window.history.replaceState(null, "", location.pathname + search);
  }

  function renderGraphPage() {
    main.replaceChildren();
    const list = el("div", { id: "panels" });
    main.append(list);
    for (const o of readURL()) addPanel(list, o, false);
    main.append(el("button", { class: "add", id: "add-panel",
      onclick: () => { addPanel(list, defaults(), true); writeURL(); } }, "Add Panel"));
    for (const p of panels) if (p.opts.expr) p.execute();
  }

  function addPanel(list, opts, focus) {
    const p = { opts, plot: null };
    panels.push(p);
    const idx = () => panels.indexOf(p);

    const box = el("textarea", { class: "expr", rows: 1, spellcheck: "false",
      placeholder: "Expression (press Shift+Enter for newlines)", "aria-label": "Expression" });
    box.value = opts.expr;
    const hl = el("pre", { class: "expr-hl", "aria-hidden": "true" });
    const syncHL = () => {
      hl.replaceChildren(...highlight(box.value + "\n"));
      box.rows = Math.min(10, box.value.split("\n").length);
    };
    box.addEventListener("input", syncHL);
    box.addEventListener("scroll", () => { hl.scrollTop = box.scrollTop; });
    box.addEventListener("keydown", (ev) => {
      if (ev.key === "Enter" && !ev.shiftKey) {
        ev.preventDefault();
        p.execute();
      }
    });
    const hist = el("select", { class: "history", title: "Query history", "aria-label": "History" });
    const fillHist = () => {
      hist.replaceChildren(el("option", { value: "" }, "History"),
        ...history().map((h) => el("option", { value: h }, h.length > 80 ? h.slice(0, 77) + "..." : h)));
    };
    fillHist();
    hist.addEventListener("change", () => {
      if (hist.value) {
        box.value = hist.value;
        syncHL();
        hist.value = "";
        box.focus();
      }
    });
    const exec = el("button", { class: "execute", onclick: () => p.execute() }, "Execute");
    const remove = el("button", { class: "remove", title: "Remove panel",
      onclick: () => {
        panels.splice(idx(), 1);
        if (p.plot) p.plot.destroy();
        root.remove();
        writeURL();
      } }, "\u00d7");

    const check = (key, label) => {
      const c = el("input", { type: "checkbox", class: "opt-" + key });
      c.checked = !!opts[key];
      c.addEventListener("change", () => { opts[key] = c.checked ? 1 : 0; p.execute(); });
      return el("label", { class: "toggle" }, c, " " + label);
    };
    const res = el("select", { class: "opt-max_source_resolution", "aria-label": "Max source resolution" },
      ...[["auto", "Auto downsampling"], ["0s", "Only raw data"], ["5m", "Max 5m downsampling"],
        ["1h", "Max 1h downsampling"]].map(([v, t]) => el("option", { value: v }, t)));
    res.value = opts.max_source_resolution;
    res.addEventListener("change", () => { opts.max_source_resolution = res.value; p.execute(); });
    const options = el("div", { class: "options" }, check("deduplicate", "Use Deduplication"),
      check("partial_response", "Use Partial Response"), res);

    const tabTable = el("button", { class: "tab tab-table" }, "Table");
    const tabGraph = el("button", { class: "tab tab-graph" }, "Graph");
    const setTab = (t) => {
      opts.tab = t;
      tabTable.classList.toggle("active", t === 1);
      tabGraph.classList.toggle("active", t === 0);
      tableCtl.hidden = t !== 1;
      graphCtl.hidden = t !== 0;
    };
    tabTable.addEventListener("click", () => { setTab(1); p.execute(); });
    tabGraph.addEventListener("click", () => { setTab(0); p.execute(); });

    const input = (key, label, width) => {
      const i = el("input", { type: "text", class: "opt-" + key, placeholder: label,
        "aria-label": label, size: width });
      i.value = opts[key];
      i.addEventListener("change", () => { opts[key] = i.value.trim(); p.execute(); });
      return i;
    };
    const moment = input("moment_input", "Evaluation time", 22);
    const tableCtl = el("div", { class: "controls" }, moment);
    const legendToggle = el("input", { type: "checkbox", class: "opt-legend" });
    legendToggle.checked = !!opts.legend;
    legendToggle.addEventListener("change", () => {
      opts.legend = legendToggle.checked ? 1 : 0;
      result.classList.toggle("no-legend", !opts.legend);
      writeURL();
    });
    const graphCtl = el("div", { class: "controls" }, input("range_input", "Range", 6),
      input("end_input", "End time", 22), input("step_input", "Res. (s)", 8),
      el("label", { class: "toggle" }, legendToggle, " Show legend"));
    const alerts = el("div", { class: "alerts" });
    const stats = el("div", { class: "stats" });
    const result = el("div", { class: "result" });
    result.classList.toggle("no-legend", !opts.legend);

    const root = el("section", { class: "panel" },
      el("div", { class: "expr-row" }, el("div", { class: "expr-wrap" }, hl, box), hist, exec, remove),
      options,
      el("div", { class: "tabs" }, tabTable, tabGraph, tableCtl, graphCtl),
      alerts, stats, result);
    list.append(root);
    syncHL();
    setTab(opts.tab === 0 ? 0 : 1);
    if (focus) box.focus();

    let seq = 0;
    p.execute = async () => {
      const expr = box.value.trim();
      opts.expr = box.value;
      writeURL();
      alerts.replaceChildren();
      if (!expr) {
        result.replaceChildren();
        stats.textContent = "";
        return;
      }
      remember(expr);
      fillHist();
      const my = ++seq;
      const params = { query: expr, dedup: opts.deduplicate ? "true" : "false",
        partial_response: opts.partial_response ? "true" : "false" };
      if (opts.max_source_resolution !== "auto") params.max_source_resolution = opts.max_source_resolution;
      const t0 = performance.now();
      let endSec;
      if (opts.tab === 0) {
        const range = parseDuration(opts.range_input) || 3600;
        endSec = parseTime(opts.end_input);
        if (endSec === null) return showError(alerts, "Invalid end time: " + opts.end_input);
        let step = opts.step_input ? Number(opts.step_input) : Math.max(Math.floor(range / 250), 1);
        if (!(step > 0)) return showError(alerts, "Invalid resolution: " + opts.step_input);
        params.start = String(endSec - range);
        params.end = String(endSec);
        params.step = String(step);
      } else {
        const t = parseTime(opts.moment_input);
        if (t === null) return showError(alerts, "Invalid evaluation time: " + opts.moment_input);
        params.time = String(t);
      }
      result.classList.add("loading");
      let j;
      try {
        j = await api(opts.tab === 0 ? "query_range" : "query", params);
      } catch (e) {
        if (my !== seq) return;
        result.classList.remove("loading");
        result.replaceChildren();
        stats.textContent = "";
        return showError(alerts, "Error executing query: " + e.message);
      }
      if (my !== seq) return;
      result.classList.remove("loading");
      const tq = performance.now() - t0;
      for (const w of j.warnings || []) alerts.append(el("div", { class: "alert warning" }, "Warning: " + w));
      const d = j.data;
      const n = Array.isArray(d.result) ? d.result.length : 1;
      stats.textContent = "Load time: " + Math.round(tq) + "ms \u00a0 Result series: " + n;
      if (p.plot) {
        p.plot.destroy();
        p.plot = null;
      }
      if (opts.tab === 1) renderTable(result, d);
      else {
        p.plot = renderGraph(result, d, Number(params.start), Number(params.end), Number(params.step), opts);
        window.orreryTimings.graphMs = performance.now() - t0;
        window.orreryTimings.graphSeries = n;
      }
    };
  }

  // Absolute time: empty = now; RFC 3339 or "YYYY-MM-DD HH:MM[:SS]" (UTC);
  // or a Unix timestamp. Returns seconds or null.
  function parseTime(s) {
    if (!s) return Date.now() / 1000;
    if (/^\d+(\.\d+)?$/.test(s)) return Number(s);
    let t = s.replace(" ", "T");
    if (!/(Z|[+-]\d\d:?\d\d)$/.test(t)) t += "Z";
    const ms = Date.parse(t);
    return isNaN(ms) ? null : ms / 1000;
  }

  function showError(alerts, msg) {
    alerts.append(el("div", { class: "alert error" }, msg));
  }

  function renderTable(result, d) {
    const rows = [];
    if (d.resultType === "vector") {
      for (const s of d.result) rows.push([metricName(s.metric), s.value[1]]);
    } else if (d.resultType === "matrix") {
      for (const s of d.result)
        rows.push([metricName(s.metric), s.values.map((v) => v[1] + " @" + v[0]).join("\n")]);
    } else if (d.resultType === "scalar" || d.resultType === "string") {
      rows.push([d.resultType, d.result[1]]);
    }
    if (!rows.length) {
      result.replaceChildren(el("div", { class: "empty" }, "Empty query result"));
      return;
    }
    const tb = el("tbody", {}, ...rows.map(([a, b]) =>
      el("tr", {}, el("td", { class: "series" }, a), el("td", { class: "value" }, b))));
    result.replaceChildren(el("table", { class: "data-table" }, tb));
  }

  const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
    "#7f7f7f", "#bcbd22", "#17becf"];

  function renderGraph(result, d, start, end, step, opts) {
    result.replaceChildren();
    if (window.uPlotMissing || typeof uPlot !== "function") {
      result.append(el("div", { class: "alert error" }, window.uPlotMissing || "uPlot is missing"));
      return null;
    }
    if (d.resultType !== "matrix") {
      result.append(el("div", { class: "empty" }, "Cannot graph a result of type " + d.resultType));
      return null;
    }
    if (!d.result.length) {
      result.append(el("div", { class: "empty" }, "Empty query result"));
      return null;
    }
    // query_range answers on start + k*step: one x array, nulls for gaps.
    const npts = Math.floor((end - start) / step) + 1;
    const xs = new Float64Array(npts);
    for (let i = 0; i < npts; i++) xs[i] = start + i * step;
    const data = [xs];
    const series = [{}];
    const names = [];
    d.result.forEach((s, si) => {
      const ys = new Array(npts).fill(null);
      for (const [t, v] of s.values) {
        const i = Math.round((t - start) / step);
        if (i >= 0 && i < npts) ys[i] = Number(v);
      }
      data.push(ys);
      const name = metricName(s.metric);
      names.push(name);
      series.push({ label: name, stroke: PALETTE[si % PALETTE.length], width: 1, spanGaps: false,
        points: { show: false } });
    });
    const tip = el("div", { class: "tooltip", hidden: true });
    const wrap = el("div", { class: "graph" });
    result.append(wrap);
    const width = Math.max(300, wrap.clientWidth || result.clientWidth || 800);
    const plot = new uPlot({
      width, height: 400, series, legend: { live: false },
      cursor: { points: { show: false } },
      scales: { x: { time: true } },
      plugins: [{ hooks: { setCursor: (u) => hover(u, tip, names) } }],
    }, data, wrap);
    plot.over.append(tip);
    result.classList.toggle("no-legend", !opts.legend);
    return plot;
  }

  // The tooltip: the series nearest the cursor, its labels and value.
  function hover(u, tip, names) {
    const idx = u.cursor.idx;
    if (idx === null || idx === undefined || u.cursor.left < 0) {
      tip.hidden = true;
      return;
    }
    let best = -1, bestd = Infinity;
    for (let i = 1; i < u.series.length; i++) {
      if (!u.series[i].show) continue;
      const v = u.data[i][idx];
      if (v === null || v === undefined) continue;
      const dist = Math.abs(u.valToPos(v, "y") - u.cursor.top);
      if (dist < bestd) {
        bestd = dist;
        best = i;
      }
    }
    if (best < 0) {
      tip.hidden = true;
      return;
    }
    const t = new Date(u.data[0][idx] * 1000).toISOString().replace("T", " ").replace(".000Z", "Z");
    tip.replaceChildren(el("div", { class: "tip-time" }, t), el("div", { class: "tip-name" }, names[best - 1]),
      el("div", { class: "tip-value" }, "value: " + u.data[best][idx]));
    tip.hidden = false;
    const left = u.cursor.left + 12, top = u.cursor.top + 12;
    tip.style.left = Math.min(left, u.over.clientWidth - 260) + "px";
    tip.style.top = top + "px";
  }

  // ---------------------------------------------------------------- stores
  async function renderStores() {
    main.replaceChildren(el("h1", {}, "Stores"));
    let j;
    try {
      j = await api("stores");
    } catch (e) {
      main.append(el("div", { class: "alert error" }, "Error fetching stores: " + e.message));
      return;
    }
    const ts = (ms) => (ms <= -9223372036854 || ms >= 9223372036854) ? (ms < 0 ? "-Inf" : "+Inf")
      : new Date(ms).toISOString();
    for (const [kind, eps] of Object.entries(j.data || {})) {
      const rows = (eps || []).map((e) => el("tr", { class: "endpoint" },
        el("td", { class: "ep-name" }, e.name),
        el("td", { class: e.lastError ? "down" : "up" }, e.lastError ? "DOWN" : "UP"),
        el("td", {}, e.lastCheck || ""),
        el("td", { class: "ep-error" }, e.lastError || ""),
        el("td", {}, ...(e.labelSets || []).map((ls) => el("div", { class: "labelset" }, metricName(ls)))),
        el("td", {}, ts(e.minTime)), el("td", {}, ts(e.maxTime))));
      main.append(el("h2", {}, kind + " (" + rows.length + ")"),
        el("table", { class: "data-table stores" },
          el("thead", {}, el("tr", {}, ...["Endpoint", "Health", "Last check", "Last error",
            "Label sets", "Min time", "Max time"].map((h) => el("th", {}, h)))),
          el("tbody", {}, ...rows)));
    }
  }

  // ---------------------------------------------------------------- status
  async function renderStatus() {
    main.replaceChildren(el("h1", {}, "Status"));
    const kv = (title, obj, cls) => {
      main.append(el("h2", {}, title), el("table", { class: "data-table " + cls },
        el("tbody", {}, ...Object.entries(obj).map(([k, v]) =>
          el("tr", {}, el("th", {}, k), el("td", {}, String(v)))))));
    };
    try {
      kv("Build information", (await api("status/buildinfo")).data, "buildinfo");
      const rt = await runtime();
      if (rt) kv("Runtime information", rt, "runtime");
      kv("Command-line flags", (await api("status/flags")).data, "flags");
    } catch (e) {
      main.append(el("div", { class: "alert error" }, "Error fetching status: " + e.message));
    }
  }

  // The gateway's own figures, from its /metrics (served at the root even
  // under --web.route-prefix; tried beside the page first, as behind a
  // proxy only that may be reachable). Unlabelled process_* and
  // orrery/thanos gauges and counters; null when /metrics is unreachable.
  async function runtime() {
    let text = null;
    for (const u of ["metrics", "/metrics"]) {
      try {
        const r = await fetch(u);
        if (r.ok) {
          text = await r.text();
          break;
        }
      } catch (e) { /* try the next */ }
    }
    if (text === null) return null;
    const out = {};
    const now = Date.now() / 1000;
    for (const line of text.split("\n")) {
      const m = /^((?:process|orrery|thanos)_[a-zA-Z0-9_:]*) ([^ ]+)$/.exec(line);
      if (!m) continue;
      const v = Number(m[2]);
      if (m[1] === "process_start_time_seconds") {
        out["Start time"] = new Date(v * 1000).toISOString();
        out["Uptime"] = formatDuration(Math.round(now - v));
      } else if (/_timestamp_seconds$/.test(m[1])) {
        out[m[1]] = v > 0 ? new Date(v * 1000).toISOString() : "never";
      } else if (/_bytes$/.test(m[1]) && v < 2 ** 50) {
        out[m[1]] = (v / 1048576).toFixed(1) + " MiB";
      } else {
        out[m[1]] = m[2];
      }
    }
    return out;
  }

  // ---------------------------------------------------------------- start
  const cur = page();
  for (const a of document.querySelectorAll("#nav a"))
    a.classList.toggle("active", a.dataset.page === cur);
  if (cur === "stores") renderStores();
  else if (cur === "status") renderStatus();
  else renderGraphPage();
})();
