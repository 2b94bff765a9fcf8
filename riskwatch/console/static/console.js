/* riskwatch operator console: plain JS, no dependencies, no build step. */
"use strict";
const LEVELS = ["red", "orange", "yellow", "blue"];
/* level icons as inline SVG (no icon font or emoji font needed): a distinct shape per level
   so the level never depends on colour alone */
const SHAPE = {
  red: '<polygon points="5,0 11,0 16,5 16,11 11,16 5,16 0,11 0,5"/><rect x="7" y="3" width="2" height="7" fill="#fff"/><rect x="7" y="11.5" width="2" height="2" fill="#fff"/>',
  orange: '<polygon points="8,0 16,15 0,15"/><rect x="7" y="5" width="2" height="5.5" fill="#fff"/><rect x="7" y="11.5" width="2" height="2" fill="#fff"/>',
  yellow: '<polygon points="8,0 16,8 8,16 0,8"/><rect x="7" y="4" width="2" height="5" fill="#1b1f24"/><rect x="7" y="10.5" width="2" height="2" fill="#1b1f24"/>',
  blue: '<circle cx="8" cy="8" r="8"/><rect x="7" y="7" width="2" height="6" fill="#fff"/><rect x="7" y="3.5" width="2" height="2" fill="#fff"/>',
  none: '<circle cx="8" cy="8" r="8"/><polyline points="4,8 7,11 12,5" stroke="#fff" stroke-width="2" fill="none"/>',
};
const FILL = { red: "#c62828", orange: "#ef6c00", yellow: "#f9a825", blue: "#1565c0", none: "#90a4ae" };
const icon = (k) => `<svg class="ico" viewBox="0 0 16 16" width="16" height="16" aria-hidden="true" fill="${FILL[k]}">${SHAPE[k]}</svg>`;
const S = { me: null, dict: {}, lang: "en", alerts: new Map(), es: null, seen: new Set(),
  muted: localStorage.getItem("rw.muted") === "1", first: true };
const $ = (sel, el) => (el || document).querySelector(sel);
const esc = (s) => String(s == null ? "" : s).replace(/[&<>"']/g,
  (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
function t(key, args) {
  let s = S.dict[key] || key;
  for (const k in args || {}) s = s.replace("{" + k + "}", args[k]);
  return s;
}
const fmtTime = (ms) => ms == null ? "" : new Date(ms).toLocaleString(S.lang);
function age(ms) {
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (s < 60) return s + "s";
  if (s < 3600) return Math.floor(s / 60) + "m";
  return Math.floor(s / 3600) + "h" + Math.floor((s % 3600) / 60) + "m";
}
function levelBadge(lv) {
  const k = lv || "none";
  return `<span class="lvl lvl-${k}" data-level="${k}">${icon(k)} ${esc(t("level." + k))}</span>`;
}
async function api(path, opts) {
  opts = opts || {};
  const headers = { "Content-Type": "application/json" };
  if (S.me) headers["X-CSRF-Token"] = S.me.csrf;
  const r = await fetch(path, { method: opts.method || "GET", headers, credentials: "same-origin",
    body: opts.body ? JSON.stringify(opts.body) : undefined });
  let data = null;
  try { data = await r.json(); } catch (e) { data = null; }
  if (r.status === 401 && !opts.noLogin) { S.me = null; renderLogin(); throw new Error("401"); }
  if (!r.ok) { const e = new Error((data && data.detail) || r.statusText); e.status = r.status; throw e; }
  return data;
}
async function setLang(lang) {
  S.lang = lang;
  localStorage.setItem("rw.lang", lang);
  S.dict = await (await fetch("/i18n/" + lang + ".json")).json();
  document.documentElement.lang = lang;
  $("#lang").value = lang;
  document.querySelectorAll("[data-i18n]").forEach((el) => { el.textContent = t(el.dataset.i18n); });
  document.querySelectorAll("[data-i18n-title]").forEach((el) => { el.title = t(el.dataset.i18nTitle); });
  $("#mute").textContent = S.muted ? t("unmute") : t("mute");
  setLive(S.es && S.es.readyState === 1);
}
function setLive(ok) { const el = $("#live"); el.classList.toggle("ok", !!ok); el.textContent = ok ? t("live.on") : t("live.off"); }

/* ---------------------------------------------------------------- login */
function renderLogin() {
  $("#top").hidden = true;
  if (S.es) { S.es.close(); S.es = null; }
  $("#main").innerHTML = `<form class="login" id="loginform">
    <h2>riskwatch</h2>
    <label>${esc(t("user"))}<input name="name" id="name" autocomplete="username" required></label>
    <label>${esc(t("password"))}<input name="password" id="password" type="password" autocomplete="current-password" required></label>
    <p class="err" id="loginerr"></p><button id="loginbtn">${esc(t("login"))}</button></form>`;
  $("#loginform").onsubmit = async (ev) => {
    ev.preventDefault();
    try {
      S.me = await api("/api/login", { method: "POST", noLogin: true,
        body: { name: $("#name").value, password: $("#password").value } });
      if (location.pathname === "/login") history.replaceState(null, "", "/board");
      start();
    } catch (e) { $("#loginerr").textContent = e.status === 429 ? t("login.throttled") : t("login.wrong"); }
  };
}

/* ---------------------------------------------------------------- live feed */
function connect() {
  if (S.es) return;
  S.es = new EventSource("/api/events");
  S.es.onopen = () => setLive(true);
  S.es.onerror = () => { setLive(false); if (S.es && S.es.readyState === 2) { S.es = null; setTimeout(check, 2000); } };
  S.es.addEventListener("snapshot", (ev) => {
    S.alerts.clear();
    for (const a of JSON.parse(ev.data)) { S.alerts.set(a.id, a); S.seen.add(a.id); }
    onAlerts([]);
  });
  S.es.addEventListener("update", (ev) => {
    const fresh = [];
    for (const a of JSON.parse(ev.data)) {
      if (a.state === "closed") S.alerts.delete(a.id); else S.alerts.set(a.id, a);
      if (!S.seen.has(a.id)) { S.seen.add(a.id); fresh.push(a); }
    }
    onAlerts(fresh);
  });
}
async function check() { try { await api("/api/me"); connect(); } catch (e) { /* login shown */ } }
function onAlerts(fresh) {
  const red = fresh.filter((a) => a.level === "red" && a.state !== "closed");
  if (red.length) announce(red[0]);
  if (S.view === "board") renderBoard();
}
function announce(a) {
  const el = $("#announce");
  el.innerHTML = icon("red") + " " + esc(t("announce.red", { msg: a.message || a.rule, where: a.enterprise + "/" + a.site }));
  el.hidden = false;
  clearTimeout(S.annTimer);
  S.annTimer = setTimeout(() => { el.hidden = true; }, 15000);
  if (!S.muted) beep();
}
function beep() {
  try {
    const ctx = S.audio || (S.audio = new (window.AudioContext || window.webkitAudioContext)());
    const o = ctx.createOscillator(), g = ctx.createGain();
    o.type = "square"; o.frequency.value = 880; g.gain.value = 0.08;
    o.connect(g); g.connect(ctx.destination); o.start(); o.stop(ctx.currentTime + 0.6);
  } catch (e) { /* no audio */ }
}

/* ---------------------------------------------------------------- board */
function rank(a) {
  const hidden = a.state === "shelved" || a.state === "out_of_service";
  const li = a.level ? LEVELS.indexOf(a.level) : 4;
  return [hidden ? 1 : 0, li, -a.since];
}
function cmp(x, y) { const a = rank(x), b = rank(y); for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i] - b[i]; return 0; }
function handled(a) {
  const out = [];
  if (a.acked_by) out.push(t("acked_by", { who: esc(a.acked_by) }));
  if (a.state === "shelved") out.push(t("shelved_by", { who: "", reason: esc(a.reason) }));
  return out.join("<br>");
}
function sensorLink(a) {
  if (!a.sensor) return esc(a.group || "");
  const href = `/sensor/${encodeURIComponent(a.enterprise)}/${encodeURIComponent(a.site)}/${encodeURIComponent(a.sensor)}`;
  return `<a href="${href}" data-link>${esc(a.sensor)}</a>`;
}
function alertRow(a, acts) {
  const cls = ["lv-" + (a.level || "none")];
  if (!a.acked && a.state !== "closed") cls.push("unacked");
  if (a.state === "shelved" || a.state === "out_of_service") cls.push("dim");
  let buttons = "";
  if (acts && S.me.can_act) {
    if (!a.acked && a.state !== "shelved") buttons += `<button class="ack">${esc(t("ack"))}</button>`;
    if (a.state !== "shelved" && a.state !== "out_of_service") buttons += `<button class="shelve">${esc(t("shelve"))}</button>`;
    if (a.state === "shelved") buttons += `<button class="unshelve">${esc(t("unshelve"))}</button>`;
    if (a.state === "resolved" || (a.acked && !a.active)) buttons += `<button class="close">${esc(t("close"))}</button>`;
  }
  return `<tr data-id="${esc(a.id)}" class="${cls.join(" ")}">
    <td>${levelBadge(a.level)}</td><td class="state">${esc(t("state." + a.state))}</td>
    <td>${esc(a.enterprise)} / ${esc(a.site)}</td><td>${sensorLink(a)}</td>
    <td><a href="/alert/${esc(a.id)}" data-link>${esc(a.message || a.rule)}</a></td>
    <td>${a.value == null ? "" : esc(a.value)}${a.threshold == null ? "" : " / " + esc(a.threshold)}</td>
    <td title="${esc(fmtTime(a.since))}">${esc(age(a.since))}</td>
    <td class="by">${handled(a)}</td>${acts ? `<td class="acts">${buttons}</td>` : ""}</tr>`;
}
function alertTable(items, acts) {
  return `<table><thead><tr><th>${t("col.level")}</th><th>${t("col.state")}</th><th>${t("col.where")}</th>
    <th>${t("col.sensor")}</th><th>${t("col.message")}</th><th>${t("col.value")}</th><th>${t("col.since")}</th>
    <th>${t("col.by")}</th>${acts ? `<th>${t("col.actions")}</th>` : ""}</tr></thead>
    <tbody>${items.map((a) => alertRow(a, acts)).join("")}</tbody></table>`;
}
function renderBoard() {
  const items = [...S.alerts.values()].sort(cmp);
  const unacked = items.filter((a) => !a.acked).length;
  $("#main").innerHTML = `<div class="toolbar"><span id="count">${esc(t("board.count", { n: items.length, u: unacked }))}</span>
    <a href="/api/alerts.csv?open=1">${esc(t("search.csv"))}</a></div>` +
    (items.length ? alertTable(items, true) : `<div class="empty">${esc(t("board.empty"))}</div>`);
}
function bindActions() {
  $("#main").addEventListener("click", (ev) => {
    const b = ev.target.closest("button");
    if (!b) return;
    const tr = b.closest("tr[data-id]");
    if (!tr) return;
    const id = tr.dataset.id;
    if (b.classList.contains("ack")) act(id, "ack", t("ack.title"),
      `<label>${t("ack.note")}<input id="f-note"></label>`, () => ({ note: $("#f-note").value || null }));
    else if (b.classList.contains("shelve")) act(id, "shelve", t("shelve.title"),
      `<label>${t("shelve.duration")}<input id="f-dur" type="number" min="1" value="60"></label>
       <label>${t("shelve.reason")}<input id="f-reason" required></label>`,
      () => ({ duration_s: 60 * Number($("#f-dur").value), reason: $("#f-reason").value }));
    else if (b.classList.contains("unshelve")) act(id, "unshelve", t("unshelve"),
      `<label>${t("ack.note")}<input id="f-note"></label>`, () => ({ note: $("#f-note").value || null }));
    else if (b.classList.contains("close")) act(id, "close", t("close.title"),
      `<label>${t("close.note")}<textarea id="f-note" rows="3" required></textarea></label>`,
      () => ({ note: $("#f-note").value }));
  });
}
function act(id, verb, title, body, collect) {
  const d = $("#dlg");
  $("#dlgtitle").textContent = title;
  $("#dlgbody").innerHTML = body;
  $("#dlgerr").textContent = "";
  $("#dlgcancel").onclick = () => d.close();
  $("#dlgform").onsubmit = async (ev) => {
    ev.preventDefault();
    try {
      const a = await api(`/api/alerts/${encodeURIComponent(id)}/${verb}`, { method: "POST", body: collect() });
      if (a.state === "closed") S.alerts.delete(a.id); else if (S.alerts.has(a.id)) S.alerts.set(a.id, a);
      d.close();
      route();
    } catch (e) { $("#dlgerr").textContent = t("forbidden", { detail: e.message }); }
  };
  d.showModal();
}

/* ---------------------------------------------------------------- alert detail */
async function renderAlert(id) {
  const a = await api("/api/alerts/" + encodeURIComponent(id));
  const hist = a.history.map((h) => `<tr><td>${esc(fmtTime(h.at))}</td><td>${esc(h.who)}</td><td>${esc(h.action)}</td>
    <td>${esc(t("state." + h.to_state))}</td><td>${levelBadge(h.level)}</td><td>${h.value == null ? "" : esc(h.value)}</td><td>${esc(h.note)}</td></tr>`).join("");
  $("#main").innerHTML = `<h2>${levelBadge(a.level)} ${esc(a.message || a.rule)}</h2>
    <table class="one">${alertTable([a], true).replace(/^<table>|<\/table>$/g, "")}</table>
    <dl class="kv"><dt>${t("detail.rule")}</dt><dd><code>${esc(a.rule)}</code> (${esc(a.kind)})</dd>
    <dt>${t("detail.message")}</dt><dd>${esc(a.message)}</dd>
    <dt>${t("col.since")}</dt><dd>${esc(fmtTime(a.since))}</dd>
    <dt>${t("link")}</dt><dd><a href="${esc(location.href)}">${esc(location.href)}</a></dd></dl>
    ${a.sensor ? `<p><a data-link href="/sensor/${encodeURIComponent(a.enterprise)}/${encodeURIComponent(a.site)}/${encodeURIComponent(a.sensor)}?alert=${encodeURIComponent(a.id)}">${t("sensor.view")}</a></p>` : ""}
    <h3>${t("history")} <a href="/api/alerts/${esc(a.id)}/history.csv">${t("history.csv")}</a></h3>
    <table id="history"><thead><tr><th>${t("h.at")}</th><th>${t("h.who")}</th><th>${t("h.action")}</th><th>${t("h.to")}</th>
    <th>${t("col.level")}</th><th>${t("col.value")}</th><th>${t("h.note")}</th></tr></thead><tbody>${hist}</tbody></table>`;
}

/* ---------------------------------------------------------------- sensor view */
const COL = { red: "#c62828", orange: "#ef6c00", yellow: "#f9a825", blue: "#1565c0" };
function chart(d, focus) {
  const W = 900, H = 300, L = 50, R = 120, T = 10, B = 30;
  const now = d.now;  /* from the first reading in the window (at least 2 min) to now */
  let t0 = d.t.length ? Math.min(d.t[0], now - 120000) : now - 3600000;
  t0 -= (now - t0) * 0.04;
  const vals = d.v.filter((x) => x != null).concat(d.thresholds.map((x) => x.value));
  let lo = Math.min(...vals, 0), hi = Math.max(...vals, 1);
  const pad = (hi - lo) * 0.08 || 1; lo -= pad; hi += pad;
  const x = (ms) => L + (W - L - R) * (ms - t0) / Math.max(1, now - t0);
  const y = (v) => T + (H - T - B) * (1 - (v - lo) / (hi - lo));
  let svg = `<svg class="chart" id="chart" viewBox="0 0 ${W} ${H}" width="100%" role="img" aria-label="${esc(d.key)}">`;
  for (const a of d.alerts) {  // alert spans
    const [start, stop] = a.span || [a.since, a.active ? null : a.ts];
    const end = stop == null ? now : stop;
    if (end < t0) continue;
    const x0 = x(Math.max(start, t0)), x1 = x(Math.min(end, now));
    const c = COL[a.max_level || a.level] || "#90a4ae";
    svg += `<rect class="span${a.id === focus ? " focus" : ""}" data-alert="${esc(a.id)}" x="${x0}" y="${T}" width="${Math.max(2, x1 - x0)}" height="${H - T - B}" fill="${c}" fill-opacity="${a.id === focus ? 0.25 : 0.12}"/>`;
  }
  for (let i = 0; i <= 4; i++) {  // axes
    const v = lo + (hi - lo) * i / 4;
    svg += `<line x1="${L}" x2="${W - R}" y1="${y(v)}" y2="${y(v)}" stroke="#eceff3"/><text x="${L - 6}" y="${y(v) + 4}" text-anchor="end">${v.toPrecision(3)}</text>`;
    const ms = t0 + (now - t0) * i / 4;
    svg += `<text x="${x(ms)}" y="${H - 10}" text-anchor="middle">${new Date(ms).toLocaleTimeString(S.lang)}</text>`;
  }
  for (const th of d.thresholds) {
    svg += `<line class="thr" data-threshold="${esc(th.name)}" x1="${L}" x2="${W - R}" y1="${y(th.value)}" y2="${y(th.value)}" stroke="#c62828"/>
      <text x="${W - R + 4}" y="${y(th.value) + 4}">${esc(th.name)} ${esc(th.value)}</text>`;
  }
  const pts = [];
  for (let i = 0; i < d.t.length; i++) if (d.v[i] != null) pts.push(`${x(d.t[i]).toFixed(1)},${y(d.v[i]).toFixed(1)}`);
  if (pts.length) svg += `<polyline id="series" fill="none" stroke="#1b1f24" stroke-width="1.6" points="${pts.join(" ")}"/>`;
  if (pts.length === 1) svg += `<circle cx="${pts[0].split(",")[0]}" cy="${pts[0].split(",")[1]}" r="3"/>`;
  return svg + "</svg>";
}
async function renderSensor(ent, site, sensor) {
  const focus = new URLSearchParams(location.search).get("alert");
  const m = 60;
  const d = await api(`/api/sensors/${encodeURIComponent(ent)}/${encodeURIComponent(site)}/${encodeURIComponent(sensor)}?minutes=${m}`);
  $("#main").innerHTML = `<h2>${esc(d.key)} <small>${esc(d.meta.kind || "")} ${esc(d.meta.unit || "")} ${esc(d.meta.location || "")}</small></h2>
    <h3>${t("sensor.recent", { m })} <small id="source" data-source="${esc(d.source)}">${esc(t("source." + d.source))}</small></h3>${d.t.length ? "" : `<p class="empty">${t("sensor.nodata")}</p>`}${chart(d, focus)}
    <h3>${t("sensor.alerts")}</h3>${alertTable(d.alerts, false)}`;
}

/* ---------------------------------------------------------------- overview */
async function renderOverview() {
  const d = await api("/api/overview");
  const sil = await api("/api/silences");
  const silenced = (s) => sil.filter((x) => x.matchers.enterprise.includes(s.enterprise) &&
    (!x.matchers.site || x.matchers.site.includes(s.site)));
  if (!d.sites.length) { $("#main").innerHTML = `<div class="empty">${t("overview.empty")}</div>`; return; }
  $("#main").innerHTML = `<div class="grid">${d.sites.map((s) => {
    const h = s.health || {};
    return `<div class="card w-${s.worst || "none"}" data-site="${esc(s.enterprise + "/" + s.site)}">
      <h3>${esc(s.enterprise)} / ${esc(s.site)}</h3><div>${levelBadge(s.worst)}</div>
      <p class="counts">${LEVELS.map((l) => `<span title="${esc(t("level." + l))}" data-count="${l}">${icon(l)} ${s.counts[l]}</span>`).join("")}</p>
      <p>${s.unacked} ${t("overview.unacked")} · <span class="gw">${s.gateways_offline} ${t("overview.gateways")}</span></p>
      <p class="by">${t("overview.rate")}: ${h.alarms_10min == null ? "–" : h.alarms_10min}${h.flood ? ` <b>${t("overview.flood")}</b>` : ""}<br>
      ${t("overview.chatter")}: ${h.chattering_count == null ? "–" : h.chattering_count} · ${t("overview.stale")}: ${h.stale_count == null ? "–" : h.stale_count}</p>
      ${silenced(s).map((x) => `<p class="by silenced">${esc(t("silenced", { until: fmtTime(x.ends), who: x.author, reason: x.reason }))}</p>`).join("")}
      <a data-link href="/search?enterprise=${encodeURIComponent(s.enterprise)}&site=${encodeURIComponent(s.site)}&open=1">${t("nav.search")}</a>
      ${S.me.can_engineer ? `<button class="silence" data-ent="${esc(s.enterprise)}" data-site="${esc(s.site)}">${esc(t("silence"))}</button>` : ""}</div>`;
  }).join("")}</div>${S.me.can_reload ? `<p><button id="reload">${esc(t("reload"))}</button> <span id="reloaded"></span></p>` : ""}`;
  document.querySelectorAll("button.silence").forEach((b) => { b.onclick = () => silenceSite(b.dataset.ent, b.dataset.site); });
  const rl = $("#reload");
  if (rl) rl.onclick = async () => {
    try { await api("/api/reload", { method: "POST" }); $("#reloaded").textContent = t("reload.done"); }
    catch (e) { $("#reloaded").textContent = e.message; }
  };
}
function silenceSite(ent, site) {
  const d = $("#dlg");
  $("#dlgtitle").textContent = t("silence") + ": " + ent + " / " + site;
  $("#dlgbody").innerHTML = `<label>${t("shelve.duration")}<input id="f-dur" type="number" min="1" value="60"></label>
    <label>${t("shelve.reason")}<input id="f-reason" required></label>`;
  $("#dlgerr").textContent = "";
  $("#dlgcancel").onclick = () => d.close();
  $("#dlgform").onsubmit = async (ev) => {
    ev.preventDefault();
    try {
      await api("/api/silences", { method: "POST", body: { enterprise: ent, site, duration_s: 60 * Number($("#f-dur").value), reason: $("#f-reason").value } });
      d.close();
      route();
    } catch (e) { $("#dlgerr").textContent = t("forbidden", { detail: e.message }); }
  };
  d.showModal();
}

/* ---------------------------------------------------------------- search */
async function renderSearch() {
  const q = new URLSearchParams(location.search);
  const sel = (name, opts) => `<select name="${name}"><option value="">${t("search.any")}</option>${opts.map(([v, l]) =>
    `<option value="${esc(v)}"${q.get(name) === v ? " selected" : ""}>${esc(l)}</option>`).join("")}</select>`;
  const inp = (name, label, type) => `<label>${label}<input name="${name}" type="${type || "text"}" value="${esc(q.get(name) || "")}"></label>`;
  $("#main").innerHTML = `<form class="filters" id="sf">
    ${inp("enterprise", t("search.enterprise"))}${inp("site", t("search.site"))}${inp("kind", t("col.kind"))}${inp("rule", t("col.rule"))}
    <label>${t("col.level")}${sel("level", LEVELS.map((l) => [l, t("level." + l)]))}</label>
    <label>${t("col.state")}${sel("state", ["firing", "acknowledged", "resolved", "shelved", "out_of_service", "closed"].map((s) => [s, t("state." + s)]))}</label>
    ${inp("from", t("search.from"), "datetime-local")}${inp("to", t("search.to"), "datetime-local")}
    <button>${t("search.run")}</button> <a id="csv" href="#">${t("search.csv")}</a></form><div id="res"></div>`;
  $("#sf").onsubmit = (ev) => {
    ev.preventDefault();
    const p = new URLSearchParams();
    for (const [k, v] of new FormData($("#sf"))) if (v) p.set(k, v);
    history.pushState(null, "", "/search?" + p);
    renderSearch();
  };
  const p = new URLSearchParams();
  for (const [k, v] of q) {
    if (!v) continue;
    if (k === "from") p.set("since", String(Date.parse(v)));
    else if (k === "to") p.set("until", String(Date.parse(v)));
    else p.set(k, v);
  }
  $("#csv").href = "/api/alerts.csv?" + p;
  const d = await api("/api/alerts?" + p);
  $("#res").innerHTML = d.items.length ? alertTable(d.items, false) : `<div class="empty">–</div>`;
}

/* ---------------------------------------------------------------- routing */
async function route() {
  const parts = location.pathname.split("/").filter(Boolean).map(decodeURIComponent);
  const view = parts[0] || "board";
  S.view = view;
  document.querySelectorAll("header nav a").forEach((a) => a.classList.toggle("on", a.getAttribute("href") === "/" + view));
  try {
    if (view === "alert") await renderAlert(parts[1]);
    else if (view === "sensor") await renderSensor(parts[1], parts[2], parts.slice(3).join("/"));
    else if (view === "overview") await renderOverview();
    else if (view === "search") await renderSearch();
    else { S.view = "board"; renderBoard(); }
  } catch (e) {
    if (e.message !== "401") $("#main").innerHTML = `<div class="empty err">${esc(e.message)}</div>`;
  }
}
function start() {
  $("#top").hidden = false;
  $("#who").textContent = `${S.me.name} (${S.me.role})`;
  connect();
  route();
}
document.addEventListener("click", (ev) => {
  const a = ev.target.closest("a[data-link]");
  if (!a || ev.ctrlKey || ev.metaKey || ev.button !== 0) return;
  ev.preventDefault();
  history.pushState(null, "", a.getAttribute("href"));
  route();
});
window.addEventListener("popstate", route);
setInterval(() => { if (S.view === "board" && !$("#dlg").open) renderBoard(); }, 30000); /* ages only */
(async function boot() {
  bindActions();
  $("#lang").onchange = async () => { await setLang($("#lang").value); if (S.me) route(); else renderLogin(); };
  $("#mute").onclick = () => { S.muted = !S.muted; localStorage.setItem("rw.muted", S.muted ? "1" : "0"); $("#mute").textContent = S.muted ? t("unmute") : t("mute"); };
  $("#logout").onclick = async () => { await api("/api/logout", { method: "POST" }); S.me = null; renderLogin(); };
  const saved = localStorage.getItem("rw.lang");
  await setLang(saved || ((navigator.language || "en").toLowerCase().startsWith("zh") ? "zh-CN" : "en"));
  try { S.me = await api("/api/me", { noLogin: true }); start(); } catch (e) { renderLogin(); }
})();
