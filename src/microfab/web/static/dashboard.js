/* microfab dashboard: draws the charts (ECharts) and follows /live (Server-Sent Events), swapping
   in the panels the server re-renders. Everything shown is rendered by the server first. */
(function () {
  "use strict";
  var script = document.getElementById("dashboard-script");
  var seq = parseInt(script.dataset.seq, 10) || 0;
  var factoryVersion = script.dataset.factoryVersion;
  var labels = JSON.parse(document.getElementById("chart-labels").textContent);
  var data = JSON.parse(document.getElementById("chart-data").textContent);
  var charts = {};
  var colours = { a: "#2563eb", p: "#d97706", q: "#16a34a", oee: "#111827" };

  function L(key) { var pair = labels[key]; return pair ? pair[window.microfabLang()] : key; }
  function pct(v) { return v === null || v === undefined ? null : Math.round(v * 1000) / 10; }

  function chart(id) {
    if (typeof echarts === "undefined") { return null; }
    var el = document.getElementById(id);
    if (!el) { return null; }
    if (!charts[id]) { charts[id] = echarts.init(el, null, { renderer: "canvas" }); }
    return charts[id];
  }

  function empty(c) {
    c.setOption({ title: { text: L("no_data"), left: "center", top: "middle", textStyle: { color: "#9ca3af", fontWeight: 400 } },
                  xAxis: { show: false }, yAxis: { show: false }, series: [] }, true);
  }

  function drawOee(rows) {
    var c = chart("chart-oee"); if (!c) { return; }
    if (!rows.length) { empty(c); return; }
    var names = rows.map(function (r) { return r.line ? r.name + " ▣" : r.name; });
    function series(key, label) {
      return { name: label, type: "bar", itemStyle: { color: colours[key] }, barMaxWidth: 18,
               data: rows.map(function (r) { return pct(r[key]); }) };
    }
    c.setOption({
      tooltip: { trigger: "axis", valueFormatter: function (v) { return v === null ? "—" : v + "%"; } },
      legend: { top: 0 },
      grid: { left: 48, right: 16, top: 36, bottom: 56 },
      xAxis: { type: "category", data: names, axisLabel: { interval: 0, rotate: names.length > 6 ? 30 : 0 } },
      yAxis: { type: "value", min: 0, max: 100, axisLabel: { formatter: "{value}%" } },
      series: [series("a", L("availability")), series("p", L("performance")), series("q", L("quality")), series("oee", L("oee"))]
    }, true);
  }

  function drawPareto(rows) {
    var c = chart("chart-pareto"); if (!c) { return; }
    if (!rows.length) { empty(c); return; }
    var lang = window.microfabLang() === "zh" ? 1 : 0;
    var cum = 0;
    c.setOption({
      tooltip: { trigger: "axis" },
      legend: { top: 0 },
      grid: { left: 56, right: 56, top: 36, bottom: 72 },
      xAxis: { type: "category", data: rows.map(function (r) { return r.name[lang]; }), axisLabel: { interval: 0, rotate: 30 } },
      yAxis: [{ type: "value", name: L("minutes") }, { type: "value", min: 0, max: 100, axisLabel: { formatter: "{value}%" } }],
      series: [
        { name: L("lost"), type: "bar", itemStyle: { color: "#dc2626" }, data: rows.map(function (r) { return r.minutes; }) },
        { name: L("cumulative"), type: "line", yAxisIndex: 1, symbolSize: 6, itemStyle: { color: "#111827" },
          data: rows.map(function (r) { cum += r.share; return Math.round(cum * 1000) / 10; }) }
      ]
    }, true);
  }

  function drawOutput(output) {
    var c = chart("chart-output"); if (!c) { return; }
    if (!output.series.length) { empty(c); return; }
    c.setOption({
      tooltip: { trigger: "axis" },
      legend: { top: 0, show: output.series.length > 1 },
      grid: { left: 48, right: 16, top: 32, bottom: 32 },
      xAxis: { type: "category", data: output.hours },
      yAxis: { type: "value", name: L("units") },
      series: output.series.map(function (s) {
        return { name: s.line, type: "bar", stack: "output", itemStyle: { color: "#16a34a" }, data: s.values };
      })
    }, true);
  }

  function drawShifts(shifts) {
    var c = chart("chart-shifts"); if (!c) { return; }
    if (!shifts.series.length) { empty(c); return; }
    c.setOption({
      tooltip: { trigger: "axis", valueFormatter: function (v) { return v === null ? "—" : v + "%"; } },
      legend: { top: 0, show: shifts.series.length > 1 },
      grid: { left: 48, right: 16, top: 32, bottom: 48 },
      xAxis: { type: "category", data: shifts.shifts, axisLabel: { rotate: 30 } },
      yAxis: { type: "value", min: 0, max: 100, axisLabel: { formatter: "{value}%" } },
      series: shifts.series.map(function (s) {
        return { name: s.line, type: "line", connectNulls: false, symbolSize: 7, itemStyle: { color: "#2563eb" },
                 data: s.values.map(pct) };
      })
    }, true);
  }

  var shown = {};  /* panel name -> its HTML as last sent by the live stream */
  var draw = { oee: drawOee, pareto: drawPareto, output: drawOutput, shifts: drawShifts };

  function drawAll() {
    drawOee(data.oee); drawPareto(data.pareto); drawOutput(data.output); drawShifts(data.shifts);
  }

  function apply(update) {
    if (update.factory_version !== undefined && String(update.factory_version) !== String(factoryVersion)) {
      window.location.reload();  /* a new factory model: lines and machines may have changed */
      return;
    }
    Object.keys(update.panels || {}).forEach(function (name) {
      shown[name] = update.panels[name];
      var el = document.getElementById("panel-" + name);
      if (el) { el.innerHTML = update.panels[name]; }
    });
    /* a panel sent in full before may come as line edits of it: [from, to, lines], applied last first */
    Object.keys(update.patches || {}).forEach(function (name) {
      if (shown[name] === undefined) { return; }
      var lines = shown[name].split("\n");
      update.patches[name].slice().reverse().forEach(function (edit) {
        Array.prototype.splice.apply(lines, [edit[0], edit[1] - edit[0]].concat(edit[2]));
      });
      shown[name] = lines.join("\n");
      var el = document.getElementById("panel-" + name);
      if (el) { el.innerHTML = shown[name]; }
    });
    /* only the charts whose data changed come; the others keep theirs */
    Object.keys(update.charts || {}).forEach(function (name) {
      data[name] = update.charts[name];
      if (draw[name]) { draw[name](data[name]); }
    });
    seq = update.seq;
    document.body.dataset.seq = seq;
  }

  var live = document.getElementById("live");
  function follow() {
    if (!window.EventSource) { return; }
    var source = new EventSource("/live?since=" + seq);
    source.onopen = function () { live.dataset.state = "open"; };
    source.onerror = function () { live.dataset.state = "closed"; };
    source.addEventListener("update", function (e) { apply(JSON.parse(e.data)); });
    source.addEventListener("problem", function (e) {
      var p = JSON.parse(e.data); live.dataset.state = "closed"; live.title = p.error.message;
    });
  }

  document.body.dataset.seq = seq;
  drawAll();
  document.addEventListener("microfab:lang", drawAll);
  window.addEventListener("resize", function () { Object.keys(charts).forEach(function (k) { charts[k].resize(); }); });
  follow();
})();
