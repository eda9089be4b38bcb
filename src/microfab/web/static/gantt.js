/* Plan page: the Gantt chart per machine (ECharts custom series). Two rows per machine, the
   plan and what the events say; a late order's bars are red; stops are a thin band under the
   actual row; a line marks the plant clock. Times are drawn in site time (the data's offset). */
(function () {
  "use strict";
  var el = document.getElementById("chart-gantt");
  if (!el || typeof echarts === "undefined") { return; }
  var data = JSON.parse(document.getElementById("gantt-data").textContent);
  var labels = JSON.parse(document.getElementById("gantt-labels").textContent);
  var shift = (data.utc_offset_s || 0) * 1000;
  var stateColours = { setup: "#0891b2", planned_stop: "#2563eb", unplanned_stop: "#dc2626",
                       micro_stop: "#c026d3", offline: "#6b7280" };
  var chart = echarts.init(el, null, { renderer: "canvas" });

  function L(key) { var pair = labels[key]; return pair ? pair[window.microfabLang()] : key; }
  function ms(text) { return Date.parse(text) + shift; }
  function clock(v) { return echarts.time.format(v, "{dd}/{MM} {HH}:{mm}", true); }

  function rows() {
    var names = [];
    data.machines.forEach(function (m) { names.push(m.name + " · " + L("plan")); names.push(m.name + " · " + L("actual")); });
    return names;
  }

  function items() {
    var late = {};
    data.late_orders.forEach(function (o) { late[o] = true; });
    var out = [];
    data.machines.forEach(function (m, i) {
      m.plan.forEach(function (b) {
        out.push({ value: [2 * i, ms(b.start), ms(b.end), "plan", b.order, b.operation, late[b.order] ? 1 : 0, b.fixed ? 1 : 0, b.units, b.setup_s] });
      });
      m.actual.forEach(function (b) {
        out.push({ value: [2 * i + 1, ms(b.start), ms(b.end), "actual", b.order, b.operation, late[b.order] ? 1 : 0, b.running ? 1 : 0, b.good, b.scrap] });
      });
      m.stops.forEach(function (s) {
        out.push({ value: [2 * i + 1, ms(s.start), ms(s.end), "stop", s.state, s.reason || "", 0, 0, 0, 0] });
      });
      (m.maintenance || []).forEach(function (w) {
        out.push({ value: [2 * i, ms(w.start), ms(w.end), "maint", "WO " + w.order, "", 0, 0, 0, 0] });
      });
    });
    return out;
  }

  function render(params, api) {
    var row = api.value(0), kind = api.value(3), isLate = api.value(6) === 1;
    var a = api.coord([api.value(1), row]), b = api.coord([api.value(2), row]);
    var band = api.size([0, 1])[1];
    var height = kind === "stop" ? band * 0.14 : band * 0.56;
    var top = kind === "stop" ? a[1] + band * 0.3 : a[1] - band * 0.3;
    var width = Math.max(b[0] - a[0], 3);
    var rect = echarts.graphic.clipRectByRect({ x: a[0], y: top, width: width, height: height }, {
      x: params.coordSys.x, y: params.coordSys.y, width: params.coordSys.width, height: params.coordSys.height });
    if (!rect) { return null; }
    var fill, stroke = null;
    if (kind === "stop") { fill = stateColours[api.value(4)] || "#9ca3af"; }
    else if (kind === "maint") { fill = "#fde68a"; stroke = "#d97706"; }
    else if (kind === "plan") { fill = isLate ? "#fecaca" : "#bfdbfe"; stroke = isLate ? "#dc2626" : "#2563eb"; }
    else { fill = isLate ? "#dc2626" : "#16a34a"; }
    var children = [{ type: "rect", shape: rect, style: { fill: fill, stroke: stroke, lineWidth: stroke ? 1 : 0 } }];
    if (kind !== "stop" && rect.width > 44) {
      children.push({ type: "text", style: { text: String(api.value(4)), x: rect.x + 4, y: rect.y + rect.height / 2,
        verticalAlign: "middle", fill: kind === "plan" ? "#111827" : "#fff", font: "12px sans-serif", width: rect.width - 8, overflow: "truncate" } });
    }
    return { type: "group", children: children };
  }

  function tip(p) {
    var v = p.value;
    var when = clock(v[1]) + " – " + clock(v[2]);
    if (v[3] === "stop") { return v[4] + (v[5] ? " · " + v[5] : "") + "<br>" + when; }
    if (v[3] === "maint") { return L("maintenance") + ": " + v[4] + "<br>" + when; }
    var head = "<b>" + v[4] + "</b> · " + v[5] + (v[6] ? " · <span style='color:#dc2626'>" + L("late") + "</span>" : "");
    if (v[3] === "plan") {
      return L("plan") + ": " + head + "<br>" + when + "<br>" + v[8] + (v[9] ? " · " + L("setup_s") + " " + Math.round(v[9] / 60) + " min" : "");
    }
    return L("actual") + ": " + head + (v[7] ? " · " + L("running") : "") + "<br>" + when + "<br>" + L("good") + " " + v[8] + " · " + L("scrap") + " " + v[9];
  }

  function draw() {
    if (!data.machines.length) {
      chart.setOption({ title: { text: L("no_data"), left: "center", top: "middle", textStyle: { color: "#9ca3af", fontWeight: 400 } } }, true);
      return;
    }
    chart.setOption({
      useUTC: true,
      animation: false,
      tooltip: { formatter: tip },
      grid: { left: 120, right: 24, top: 28, bottom: 64 },
      dataZoom: [{ type: "slider", xAxisIndex: 0, filterMode: "weakFilter", height: 22, bottom: 8 },
                 { type: "inside", xAxisIndex: 0, filterMode: "weakFilter" }],
      xAxis: { type: "time", min: ms(data.from), max: ms(data.to), axisLabel: { hideOverlap: true } },
      yAxis: { type: "category", data: rows(), inverse: true, axisTick: { show: false },
               splitLine: { show: true, interval: 1 } },
      series: [{
        type: "custom", renderItem: render, encode: { x: [1, 2], y: 0 }, data: items(),
        markLine: { symbol: "none", silent: true, label: { formatter: L("now"), position: "start" }, lineStyle: { color: "#111827", type: "dashed" },
                    data: [{ xAxis: ms(data.now) }] }
      }]
    }, true);
  }

  draw();
  document.addEventListener("microfab:lang", draw);
  window.addEventListener("resize", function () { chart.resize(); });
  window.microfabGantt = chart;
})();
