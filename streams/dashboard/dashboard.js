/* driftline dashboard: an overview of the models, a page per model, live alerts. Reads the worker's JSON API
   (same origin) or, in a report, the document embedded in the page. No library, no request elsewhere. */
"use strict";
(() => {
  const PAGE_SIZE = 50, SPARK_POINTS = 60, HISTORY_POINTS = 1440, REFRESH_MS = 10000;
  const embedded = document.getElementById("driftline-report");
  const REPORT = embedded ? JSON.parse(embedded.textContent) : null;
  const view = { page: 0, search: "", alerts: [], timer: null, feature: null };
  const main = () => document.getElementById("main");

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "onclick") node.onclick = v; else node.setAttribute(k, String(v));
    }
    for (const child of children) node.append(child instanceof Node ? child : String(child ?? ""));
    return node;
  }

  async function api(path) {
    const response = await fetch(path, { headers: { Accept: "application/json" } });
    if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
    return response.json();
  }

  const badge = (status) => el("span", { class: `badge ${status || "unknown"}` }, status || "unknown");
  const metricOf = (p) => (p && p.metric ? p[p.metric] : undefined);
  const enc = encodeURIComponent;

  function done(name) {
    document.body.dataset.view = name;
    document.body.dataset.ready = "1";
  }

  /* ---- overview ---- */
  async function overview() {
    const q = new URLSearchParams({ offset: view.page * PAGE_SIZE, limit: PAGE_SIZE, sort: "status" });
    if (view.search) q.set("q", view.search);
    const data = await api(`/api/models?${q}`);
    const ids = data.models.map((m) => m.model_id);
    const sparks = ids.length ? (await api(`/api/history?points=${SPARK_POINTS}&models=${ids.map(enc).join(",")}`)).history : {};
    const rows = data.models.map((m) => {
      const values = (sparks[m.model_id] || []).map(metricOf).filter((v) => v !== undefined);
      const link = el("a", { href: `#/model/${enc(m.model_id)}` }, m.model_id);
      return el("tr", { "data-model": m.model_id }, el("td", {}, link), el("td", {}, badge(m.status)),
        ...["predictions", "outcomes", "joined"].map((k) => el("td", { class: "num" }, (m[k] ?? 0).toLocaleString("en"))),
        el("td", { class: "num" }, m.metric ? `${m.metric} ${Charts.fmt(m[m.metric])}` : "–"),
        el("td", { class: "num" }, m.open_alerts ?? 0), el("td", { class: "spark-cell" }, Charts.sparkline(values)));
    });
    const counts = Object.entries(data.statuses || {}).map(([s, n]) => el("div", { class: "card" }, el("b", {}, n), badge(s)));
    const search = el("input", { placeholder: "filter models", value: view.search, id: "search" });
    search.onchange = () => { view.search = search.value; view.page = 0; refresh(); };
    const pages = Math.max(1, Math.ceil(data.total / PAGE_SIZE));
    const prev = el("button", { onclick: () => { view.page = Math.max(0, view.page - 1); refresh(); } }, "‹ previous");
    const next = el("button", { onclick: () => { view.page = Math.min(pages - 1, view.page + 1); refresh(); } }, "next ›");
    const head = ["model", "status", "predictions", "outcomes", "joined", "metric", "open alerts", "metric over time"];
    main().replaceChildren(el("h1", {}, `Models (${data.total})`), el("div", { class: "cards" }, ...counts),
      el("div", { class: "toolbar" }, search, prev, el("span", { class: "muted" }, `page ${view.page + 1} of ${pages}`), next),
      el("table", { id: "models" }, el("thead", {}, el("tr", {}, ...head.map((h) => el("th", {}, h)))), el("tbody", {}, ...rows)));
    document.getElementById("where").textContent = "";
    done("overview");
  }

  /* ---- one model ---- */
  async function modelPage(modelId, feature) {
    const [detail, history, recent] = await Promise.all([
      api(`/api/models/${enc(modelId)}`),
      api(`/api/models/${enc(modelId)}/history?points=${HISTORY_POINTS}`),
      api(`/api/alerts/recent?limit=200&model=${enc(modelId)}`),
    ]);
    renderModel({ ...detail, history, recent_alerts: recent.alerts.map((e) => e.alert) }, feature);
  }

  function ranked(features) {
    return Object.entries(features).sort((a, b) => (b[1].drift_statistic || 0) - (a[1].drift_statistic || 0) || (a[0] < b[0] ? -1 : 1));
  }

  function renderModel(doc, feature) {
    const model = doc.model, points = doc.history.points, features = ranked(doc.features);
    const wanted = feature || view.feature;
    const chosen = wanted && doc.features[wanted] ? wanted : features.length ? features[0][0] : null;
    const alerts = doc.recent_alerts || [];
    const markers = alerts.map((a) => ({ t: Date.parse(a.window_end) / 1000, cls: a.status === "resolved" ? "resolved" : a.severity === "critical" ? "firing" : "warning", title: `${a.status} ${a.kind} ${a.feature || ""}: ${a.message}` }));
    const metric = model.metric || (points.length ? points[points.length - 1].metric : null);
    const series = [];
    if (metric) series.push({ name: metric, points: points.filter((p) => p[metric] !== undefined).map((p) => [p.t, p[metric]]) });
    if (points.some((p) => p.estimated_accuracy !== undefined)) series.push({ name: "estimated_accuracy", points: points.filter((p) => p.estimated_accuracy !== undefined).map((p) => [p.t, p.estimated_accuracy]) });
    const cards = [["status", badge(model.status)], ["predictions", model.predictions], ["outcomes", model.outcomes], ["joined", model.joined],
      [metric || "metric", Charts.fmt(model[metric])], ["estimated accuracy", Charts.fmt(model.estimated_accuracy)], ["open alerts", model.open_alerts]];
    const legend = el("div", { class: "legend" }, ...series.map((s, i) => el("span", {}, el("i", { style: `background: ${i ? "#8e24aa" : "#1565c0"}` }), s.name)),
      el("span", { class: "muted" }, "dashed lines: alerts (red firing, orange warning, green resolved), at their evidence's end"));
    const rows = features.map(([name, f]) => el("tr", { class: "clickable" + (name === chosen ? " selected" : ""), "data-feature": name, onclick: () => select(doc, name) },
      el("td", {}, name), el("td", {}, f.type), el("td", { class: "num" }, Charts.fmt(f.drift_statistic)), el("td", {}, Charts.scoreBar(f.drift_statistic || 0)),
      el("td", {}, badge(f.status)), el("td", { class: "num" }, Charts.fmt(f.window_psi)), el("td", { class: "num" }, Charts.fmt(f.window_ks ?? f.window_chi2)),
      el("td", { class: "num" }, Charts.fmt(f.missing_rate)), el("td", { class: "num" }, f.n)));
    const head = ["feature", "type", "drift score", "", "status", "PSI", "KS / χ²", "missing", "values"];
    main().replaceChildren(
      el("h1", {}, model.model_id, " ", el("span", { class: "muted" }, model.model_version || "")),
      el("div", { class: "cards" }, ...cards.map(([k, v]) => el("div", { class: "card" }, el("b", {}, v), k))),
      el("div", { class: "panel" }, el("h2", {}, `${metric || "metric"} and estimated accuracy over event time`), legend,
        Charts.timeChart({ series, markers, name: "metric" })),
      el("div", { class: "panel" }, el("h2", {}, "Features, by drift score (1 or more: significant)"),
        el("table", { id: "features" }, el("thead", {}, el("tr", {}, ...head.map((h) => el("th", {}, h)))), el("tbody", {}, ...rows))),
      el("div", { class: "panel", id: "feature-panel" }),
      el("div", { class: "panel" }, el("h2", {}, "Open alerts: the evidence"), ...openAlerts(doc.open_alerts)),
    );
    document.getElementById("where").textContent = `› ${model.model_id}`;
    if (chosen) select(doc, chosen);
    if (REPORT) showAlerts(alerts);
    done("model");
  }

  function select(doc, name) {
    view.feature = name;
    if (!REPORT) history.replaceState(null, "", `#/model/${enc(doc.model.model_id)}/${enc(name)}`);
    document.querySelectorAll("#features tr[data-feature]").forEach((r) => r.classList.toggle("selected", r.dataset.feature === name));
    const dist = (doc.distributions || {})[name], series = (doc.history.features || {})[name] || [];
    const panel = document.getElementById("feature-panel");
    const picture = dist ? Charts.distribution(dist) : el("p", { class: "muted" }, "no reference yet: the feature's first values are building it");
    const note = dist ? `${dist.type === "numeric" ? "the last full window" : "the window so far"}: ${dist.recent_n} values, against a reference of ${dist.reference_n}` : "";
    panel.replaceChildren(el("h2", {}, `${name}: reference (grey) against recent values (blue)`), el("p", { class: "muted" }, note), picture,
      el("h2", {}, `${name}: drift score over event time`),
      Charts.timeChart({ series: [{ name: "drift score", points: series.filter((p) => p.score !== undefined).map((p) => [p.t, p.score]) }], height: 160, name: "feature-score", threshold: 1 }));
    panel.dataset.feature = name;
  }

  function openAlerts(alerts) {
    if (!alerts.length) return [el("p", { class: "muted" }, "none")];
    return alerts.map((a) => el("div", { class: "evidence" }, badge(a.severity === "critical" ? "critical" : "warning"), ` ${a.kind} ${a.feature || ""} (${a.detector}): ${a.message}`,
      el("br"), `statistic ${Charts.fmt(a.statistic)} against threshold ${Charts.fmt(a.threshold)} over ${a.n} events, event time ${a.window_start} to ${a.window_end}; detected ${a.detected_at}`));
  }

  /* ---- alerts: recent, then live through the alerts stream ---- */
  function showAlerts(alerts) {
    const list = document.getElementById("alert-list");
    const shownAlerts = !REPORT && view.model ? alerts.filter((a) => a.model_id === view.model) : alerts;
    const items = shownAlerts.slice(0, 100).map((a) => el("li", { class: a.status === "resolved" ? "resolved" : a.severity, "data-alert": a.alert_id },
      el("b", {}, `${a.status} ${a.kind}`), ` ${a.model_id}${a.feature ? " / " + a.feature : ""}`, el("br"), el("span", { class: "muted" }, a.detected_at), el("br"), a.message));
    list.replaceChildren(...(items.length ? items : [el("li", {}, "no alerts")]));
  }

  async function follow() {
    const recent = await api("/api/alerts/recent?limit=100");
    view.alerts = recent.alerts.map((e) => e.alert);
    showAlerts(view.alerts);
    const after = recent.alerts.length ? recent.alerts[0].id : null;
    const source = new EventSource(after ? `/api/alerts/stream?after=${enc(after)}` : "/api/alerts/stream");
    const live = document.getElementById("live");
    source.onopen = () => { live.textContent = "alerts: live"; };
    source.onerror = () => { live.textContent = "alerts: reconnecting"; };
    source.addEventListener("alert", (event) => {
      view.alerts.unshift(JSON.parse(event.data));
      view.alerts.length = Math.min(view.alerts.length, 200);
      showAlerts(view.alerts);
    });
  }

  /* ---- routing ---- */
  function route() {
    const parts = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
    return parts[0] === "model" && parts[1] ? { model: parts[1], feature: parts[2] } : {};
  }

  async function refresh() {
    document.body.dataset.ready = "";
    const where = route();
    if (where.model !== view.model) view.feature = null;
    view.model = where.model;
    showAlerts(view.alerts);
    try {
      await (where.model ? modelPage(where.model, where.feature) : overview());
    } catch (error) {
      main().replaceChildren(el("p", { class: "error" }, String(error)));
      done("error");
    }
  }

  if (REPORT) {
    document.getElementById("live").textContent = `report generated ${REPORT.generated_at}`;
    renderModel(REPORT);
  } else {
    window.addEventListener("hashchange", refresh);
    refresh();
    follow().catch((error) => { document.getElementById("live").textContent = `alerts: ${error}`; });
    view.timer = setInterval(() => { if (!document.hidden) refresh(); }, REFRESH_MS);
  }
})();
