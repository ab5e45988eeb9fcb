/* blocks.js: the blocks page (served by `orrery compact --wait` and `orrery
 * tools bucket web`), plain JavaScript (no build step). The bucket's blocks
 * from api/v1/blocks (Thanos's bucket web answer) on a timeline: a group per
 * external label set, a lane per resolution, overlapping blocks stacked in
 * extra lanes. A click shows the block's meta.json; a label filter, an
 * overlap highlight and UTC/local time are kept in the URL. Every URL is
 * relative to the page, so it works behind a path prefix. */
"use strict";

(function () {
  const main = document.getElementById("main");
  const RES_NAMES = { 0: "raw", 300000: "5m", 3600000: "1h" };
  const q = new URLSearchParams(location.search);
  const state = {
    filter: q.get("filter") || "",
    overlaps: q.get("overlaps") === "1",
    utc: q.get("tz") !== "local",
    block: q.get("block") || "",
  };
  let data = null;

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

  // ---------------------------------------------------------------- a block
  const labelsOf = (b) => (b.thanos && b.thanos.labels) || {};
  const resOf = (b) => (b.thanos && b.thanos.downsample && b.thanos.downsample.resolution) || 0;
  const resName = (r) => RES_NAMES[r] || fmtDur(r);
  const levelOf = (b) => (b.compaction && b.compaction.level) || 1;
  const stat = (b, k) => (b.stats && b.stats[k]) || 0;
  function labelKey(ls) {
    return "{" + Object.keys(ls).sort().map((k) => k + "=" + JSON.stringify(ls[k])).join(", ") + "}";
  }
  // The group's title: --label's value when the blocks have it, as Thanos
  // titles its timeline; the label set otherwise.
  function groupTitle(ls) {
    return data.label && ls[data.label] !== undefined ? ls[data.label] : labelKey(ls);
  }
  // The block's meta.json: the answer's own additions taken off.
  function metaJson(b) {
    const m = Object.assign({}, b);
    delete m.marks;
    delete m.sizeBytes;
    return m;
  }
  const marksOf = (b) => Object.keys(b.marks || {});

  // ---------------------------------------------------------------- formats
  const pad = (n, w) => String(n).padStart(w || 2, "0");
  function fmtTime(ms) {
    const d = new Date(ms);
    if (state.utc) return d.toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
    return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + " " +
      pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds());
  }
  function fmtDur(ms) {
    let s = Math.round(ms / 1000);
    if (s === 0) return ms + "ms";
    let out = "";
    for (const [u, n] of [["d", 86400], ["h", 3600], ["m", 60], ["s", 1]])
      if (s >= n) {
        out += Math.floor(s / n) + u;
        s %= n;
      }
    return out;
  }
  function fmtBytes(n) {
    const u = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0;
    while (n >= 1024 && i < u.length - 1) {
      n /= 1024;
      i++;
    }
    return (i ? n.toFixed(1) : n) + " " + u[i];
  }

  // ---------------------------------------------------------------- filter
  // Terms separated by spaces or commas: label=value, label!=value,
  // label=~regex; a term without an operator matches the label set's text.
  function parseFilter(text) {
    const terms = [];
    for (const t of text.split(/[\s,]+/).filter(Boolean)) {
      const m = /^([a-zA-Z_][a-zA-Z0-9_]*)(=~|!=|=)"?(.*?)"?$/.exec(t);
      if (!m) terms.push({ text: t });
      else if (m[2] === "=~") {
        let re = null;
        try { re = new RegExp("^(?:" + m[3] + ")$"); } catch (e) { re = /$^/; }
        terms.push({ name: m[1], re });
      } else terms.push({ name: m[1], value: m[3], neg: m[2] === "!=" });
    }
    return terms;
  }
  function matches(b, terms) {
    const ls = labelsOf(b);
    return terms.every((t) => {
      if (t.text !== undefined) return labelKey(ls).includes(t.text);
      const v = ls[t.name] === undefined ? "" : ls[t.name];
      if (t.re) return t.re.test(v);
      return t.neg ? v !== t.value : v === t.value;
    });
  }

  // ---------------------------------------------------------------- overlaps
  // ULIDs of blocks whose time range overlaps another block's of the same
  // label set and resolution (the compactor's groups), over the whole bucket.
  // Blocks marked for deletion are left out, as the compactor leaves them
  // out: a compacted block's sources wait out the delete delay beside it.
  function overlapping(blocks) {
    const groups = new Map();
    for (const b of blocks) {
      if (b.marks && b.marks.deletion) continue;
      const k = labelKey(labelsOf(b)) + "@" + resOf(b);
      if (!groups.has(k)) groups.set(k, []);
      groups.get(k).push(b);
    }
    const out = new Set();
    for (const g of groups.values()) {
      g.sort((a, b) => a.minTime - b.minTime);
      let last = null; // the block reaching furthest so far
      for (const b of g) {
        if (last && b.minTime < last.maxTime) {
          out.add(b.ulid);
          // every earlier block reaching past b's start overlaps it
          for (const a of g) {
            if (a === b) break;
            if (a.maxTime > b.minTime) out.add(a.ulid);
          }
        }
        if (!last || b.maxTime > last.maxTime) last = b;
      }
    }
    return out;
  }

  // Stacks blocks (sorted by minTime) into the fewest lanes where none
  // overlaps another.
  function lanes(blocks) {
    const ends = [], out = [];
    for (const b of blocks.slice().sort((a, c) => a.minTime - c.minTime || a.maxTime - c.maxTime)) {
      let i = ends.findIndex((e) => e <= b.minTime);
      if (i < 0) {
        i = ends.length;
        ends.push(0);
        out.push([]);
      }
      ends[i] = b.maxTime;
      out[i].push(b);
    }
    return out;
  }

  // ---------------------------------------------------------------- page
  function saveUrl() {
    const p = new URLSearchParams();
    if (state.filter) p.set("filter", state.filter);
    if (state.overlaps) p.set("overlaps", "1");
    if (!state.utc) p.set("tz", "local");
    if (state.block) p.set("block", state.block);
    const s = p.toString();
    history.replaceState(null, "", location.pathname + (s ? "?" + s : ""));
  }

  const summary = el("span", { class: "summary" });
  const timeline = el("div", { class: "timeline" });
  const details = el("div", { class: "details", hidden: true });

  function toolbar() {
    const filter = el("input", {
      class: "filter", type: "text", placeholder: "filter: cluster=eu replica!=b", value: state.filter,
      oninput: (e) => { state.filter = e.target.value; render(); },
    });
    const check = (cls, label, on, set) => el("label", {},
      el("input", { type: "checkbox", class: cls, checked: on, onchange: (e) => { set(e.target.checked); render(); } }),
      " " + label);
    return el("div", { class: "toolbar" }, filter,
      check("opt-overlaps", "Highlight overlapping blocks", state.overlaps, (v) => { state.overlaps = v; }),
      check("opt-utc", "UTC", state.utc, (v) => { state.utc = v; }),
      summary);
  }

  function legend() {
    const item = (style, text) => el("span", {}, el("i", { style }), text);
    return el("div", { class: "legend" },
      item("background:#90caf9", "level 1"), item("background:#42a5f5", "2"),
      item("background:#1e88e5", "3"), item("background:#1565c0", "4+"),
      item("background:repeating-linear-gradient(135deg,#ccc 0 4px,#b71c1c 4px 6px)", "deletion mark"),
      item("border:2px dashed #6a1b9a", "no-compact mark"),
      item("background:#e53935", "overlap (when highlighted; deletion-marked blocks left out)"));
  }

  function render() {
    saveUrl();
    const all = data.blocks;
    const terms = parseFilter(state.filter);
    const shown = all.filter((b) => matches(b, terms));
    const ovl = state.overlaps ? overlapping(all) : new Set();
    timeline.classList.toggle("show-overlaps", state.overlaps);
    timeline.replaceChildren();
    const groups = new Map();
    for (const b of shown) {
      const k = labelKey(labelsOf(b));
      if (!groups.has(k)) groups.set(k, { ls: labelsOf(b), blocks: [] });
      groups.get(k).blocks.push(b);
    }
    summary.textContent = shown.length + " of " + all.length + " blocks in " + groups.size +
      " group" + (groups.size === 1 ? "" : "s") + (state.overlaps ? ", " + ovl.size + " overlapping" : "") +
      " · bucket read " + fmtTime(Date.parse(data.refreshedAt)) + (state.utc ? "" : " (local time)");
    if (!shown.length) {
      timeline.append(el("div", { class: "empty" }, all.length ? "No block matches the filter." : "The bucket has no blocks."));
      return;
    }
    const t0 = Math.min(...shown.map((b) => b.minTime)), t1 = Math.max(...shown.map((b) => b.maxTime));
    const span = Math.max(t1 - t0, 1);
    const pct = (t) => ((t - t0) / span) * 100;
    const axis = el("div", { class: "axis" });
    for (let i = 0; i <= 4; i++) {
      const t = t0 + (span * i) / 4;
      axis.append(el("span", { style: "left:" + (i * 25) + "%" }, fmtTime(t)));
    }
    timeline.append(axis);
    for (const k of [...groups.keys()].sort()) {
      const g = groups.get(k);
      const div = el("div", { class: "group", "data-labels": k },
        el("h2", { class: "group-title", title: k }, groupTitle(g.ls)));
      const byRes = new Map();
      for (const b of g.blocks) {
        if (!byRes.has(resOf(b))) byRes.set(resOf(b), []);
        byRes.get(resOf(b)).push(b);
      }
      for (const r of [...byRes.keys()].sort((a, b) => a - b)) {
        lanes(byRes.get(r)).forEach((lane, i) => {
          const track = el("div", { class: "track" });
          for (const b of lane) {
            const cls = ["block", "l" + Math.min(levelOf(b), 4)];
            if (b.marks && b.marks.deletion) cls.push("deletion");
            if (b.marks && b.marks.noCompact) cls.push("nocompact");
            if (ovl.has(b.ulid)) cls.push("overlap");
            if (b.ulid === state.block) cls.push("selected");
            const left = pct(b.minTime);
            track.append(el("div", {
              class: cls.join(" "), "data-ulid": b.ulid, "data-resolution": resName(r),
              style: "left:" + left + "%;width:" + Math.max(pct(b.maxTime) - left, 0) + "%",
              title: b.ulid + "\n" + fmtTime(b.minTime) + " – " + fmtTime(b.maxTime) + " (" +
                fmtDur(b.maxTime - b.minTime) + ")\nlevel " + levelOf(b) + ", " + resName(r) + ", " +
                stat(b, "numSeries") + " series, " + fmtBytes(b.sizeBytes || 0) +
                (marksOf(b).length ? "\nmarks: " + marksOf(b).join(", ") : ""),
              onclick: () => { state.block = b.ulid; render(); },
            }, "L" + levelOf(b)));
          }
          div.append(el("div", { class: "lane" },
            el("span", { class: "lane-name" }, i === 0 ? resName(r) : ""), track));
        });
      }
      timeline.append(div);
    }
    showDetails();
  }

  function showDetails() {
    const b = data.blocks.find((x) => x.ulid === state.block);
    details.hidden = !b;
    if (!b) return;
    const row = (k, v) => el("tr", {}, el("td", {}, k), el("td", {}, v));
    const marks = marksOf(b).map((m) => {
      const mk = b.marks[m];
      const when = mk.deletion_time || mk.no_compact_time;
      return (m === "deletion" ? "deletion" : "no-compact") + (when ? " at " + fmtTime(when * 1000) : "") +
        (mk.reason ? " (" + mk.reason + ")" : "") + (mk.details ? ": " + mk.details : "");
    });
    details.replaceChildren(
      el("h2", {}, "Block ", el("span", { class: "ulid" }, b.ulid)),
      el("table", {},
        row("Labels", labelKey(labelsOf(b))),
        row("Time range", fmtTime(b.minTime) + " – " + fmtTime(b.maxTime) + " (" + fmtDur(b.maxTime - b.minTime) + ")"),
        row("Level", String(levelOf(b))),
        row("Resolution", resName(resOf(b))),
        row("Series", String(stat(b, "numSeries"))),
        row("Samples", String(stat(b, "numSamples"))),
        row("Chunks", String(stat(b, "numChunks"))),
        row("Size", fmtBytes(b.sizeBytes || 0) + " (" + (b.sizeBytes || 0) + " bytes)"),
        row("Marks", marks.join("; ") || "none"),
        row("Source", (b.thanos && b.thanos.source) || "")),
      el("h2", {}, "meta.json"),
      el("pre", { class: "meta-json" }, JSON.stringify(metaJson(b), null, 2)));
  }

  async function start() {
    main.append(el("h1", {}, "Blocks"));
    try {
      const r = await fetch("api/v1/blocks");
      const j = await r.json().catch(() => ({ error: "unexpected response (HTTP " + r.status + ")" }));
      if (j.status !== "success") throw new Error(j.error || "HTTP " + r.status);
      data = j.data;
    } catch (e) {
      main.append(el("div", { class: "alert error" }, "Error loading blocks: " + e.message));
      return;
    }
    main.append(toolbar(), legend(), timeline, details);
    render();
    // The test (and a person) can tell the page is drawn.
    document.body.dataset.ready = "1";
  }
  start();
})();
