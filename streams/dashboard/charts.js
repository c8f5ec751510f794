/* driftline charts: plain SVG, no library. Every chart carries data-points (how many values it draws). */
"use strict";
const Charts = (() => {
  const NS = "http://www.w3.org/2000/svg";

  function svg(tag, attrs, ...children) {
    const node = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
    for (const child of children) node.append(child);
    return node;
  }

  function text(x, y, label, anchor = "middle") {
    return svg("text", { x, y, "text-anchor": anchor }, String(label));
  }

  function scale(d0, d1, r0, r1) {
    const span = d1 - d0 || 1;
    return (v) => r0 + ((v - d0) / span) * (r1 - r0);
  }

  function extent(values, pad) {
    let lo = Math.min(...values), hi = Math.max(...values);
    if (!isFinite(lo)) return [0, 1];
    if (hi - lo < 1e-9) { const d = Math.abs(lo) * 0.05 || 0.05; lo -= d; hi += d; }
    const margin = (hi - lo) * pad;
    return [lo - margin, hi + margin];
  }

  function timeLabel(t, span) {
    const d = new Date(t * 1000);
    const iso = d.toISOString();
    return span > 2 * 86400 ? iso.slice(5, 10) + " " + iso.slice(11, 16) : iso.slice(11, 16);
  }

  function fmt(v) {
    if (v === null || v === undefined || Number.isNaN(v)) return "–";
    const a = Math.abs(v);
    return a >= 1000 ? v.toFixed(0) : a >= 10 ? v.toFixed(1) : v.toFixed(3);
  }

  /* series: [{name, points: [[t, v], ...]}]; markers: [{t, cls, title}] */
  function timeChart({ series, markers = [], width = 720, height = 220, name = "chart", threshold = null }) {
    const m = { l: 48, r: 12, t: 10, b: 24 };
    const all = series.flatMap((s) => s.points);
    const count = all.length;
    const root = svg("svg", { width, height, viewBox: `0 0 ${width} ${height}`, class: "chart", "data-chart": name, "data-points": count, "data-markers": markers.length });
    if (!count) {
      root.append(text(width / 2, height / 2, "no history yet"));
      return root;
    }
    const ts = all.map((p) => p[0]).concat(markers.map((k) => k.t));
    const t0 = Math.min(...ts), t1 = Math.max(...ts) + (Math.max(...ts) === Math.min(...ts) ? 60 : 0);
    const values = all.map((p) => p[1]).concat(threshold === null ? [] : [threshold]);
    let [v0, v1] = extent(values, 0.08);
    if (Math.min(...values) >= 0) v0 = Math.max(v0, 0);
    const x = scale(t0, t1, m.l, width - m.r), y = scale(v0, v1, height - m.b, m.t);
    const axis = svg("g", { class: "axis" });
    for (let i = 0; i <= 4; i++) {
      const v = v0 + ((v1 - v0) * i) / 4;
      axis.append(svg("line", { class: "grid", x1: m.l, x2: width - m.r, y1: y(v), y2: y(v) }), text(m.l - 4, y(v) + 4, fmt(v), "end"));
      const t = t0 + ((t1 - t0) * i) / 4;
      axis.append(text(x(t), height - 6, timeLabel(t, t1 - t0)));
    }
    root.append(axis);
    if (threshold !== null) {
      const line = svg("line", { class: "marker firing", x1: m.l, x2: width - m.r, y1: y(threshold), y2: y(threshold) });
      line.append(svg("title", {}, `threshold ${threshold}`));
      root.append(line);
    }
    for (const k of markers) {
      const line = svg("line", { class: `marker ${k.cls}`, x1: x(k.t), x2: x(k.t), y1: m.t, y2: height - m.b });
      line.append(svg("title", {}, k.title));
      root.append(line);
    }
    series.forEach((s, i) => {
      if (!s.points.length) return;
      const d = s.points.map((p, j) => `${j ? "L" : "M"}${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join("");
      const path = svg("path", { d, class: `series-${i}`, "data-series": s.name, "data-points": s.points.length });
      path.append(svg("title", {}, s.name));
      root.append(path);
    });
    return root;
  }

  function sparkline(values, width = 120, height = 24) {
    const root = svg("svg", { width, height, class: "sparkline", "data-points": values.length });
    if (values.length < 2) return root;
    const [v0, v1] = extent(values, 0.1);
    const x = scale(0, values.length - 1, 1, width - 1), y = scale(v0, v1, height - 2, 2);
    root.append(svg("path", { class: "spark", d: values.map((v, i) => `${i ? "L" : "M"}${x(i).toFixed(1)},${y(v).toFixed(1)}`).join("") }));
    return root;
  }

  /* dist: {type, labels, edges, reference, recent, recent_n}: reference and recent shares per bin, side by side */
  function distribution(dist, width = 720, height = 220) {
    const m = { l: 40, r: 10, t: 10, b: dist.type === "categorical" ? 46 : 24 };
    const bins = dist.reference.length;
    const root = svg("svg", { width, height, class: "chart", "data-chart": "distribution", "data-points": bins ? dist.recent_n : 0, "data-bins": bins });
    const top = Math.max(0.01, ...dist.reference, ...dist.recent);
    const y = scale(0, top * 1.1, height - m.b, m.t);
    const slot = (width - m.l - m.r) / Math.max(bins, 1);
    for (let i = 0; i <= 4; i++) {
      const v = (top * 1.1 * i) / 4;
      root.append(svg("line", { class: "grid", x1: m.l, x2: width - m.r, y1: y(v), y2: y(v) }), text(m.l - 4, y(v) + 4, (v * 100).toFixed(0) + "%", "end"));
    }
    for (let i = 0; i < bins; i++) {
      const x0 = m.l + i * slot;
      for (const [k, cls, share] of [[0, "bar-ref", dist.reference[i]], [1, "bar-recent", dist.recent[i]]]) {
        const rect = svg("rect", { class: cls, x: x0 + slot * (0.1 + 0.4 * k), width: slot * 0.4, y: y(share), height: Math.max(0, y(0) - y(share)) });
        rect.append(svg("title", {}, `${cls === "bar-ref" ? "reference" : "recent"}: ${(share * 100).toFixed(1)}%`));
        root.append(rect);
      }
      const label = dist.type === "categorical" ? dist.labels[i] : i % Math.ceil(bins / 6) === 0 ? fmt(dist.edges[i]) : "";
      if (label) root.append(text(x0 + slot / 2, height - m.b + 14, label.length > 12 ? label.slice(0, 11) + "…" : label));
    }
    return root;
  }

  function scoreBar(score, width = 90) {
    const root = svg("svg", { width, height: 10, class: "score" });
    const w = Math.min(1, score / 2) * width;
    root.append(svg("rect", { class: "score-bar" + (score >= 1 ? " hot" : ""), x: 0, y: 1, height: 8, width: w }));
    root.append(svg("line", { x1: width / 2, x2: width / 2, y1: 0, y2: 10, stroke: "#546e7a" }));
    return root;
  }

  return { timeChart, sparkline, distribution, scoreBar, fmt };
})();
