/* The quality page's control chart: the points, the centre line, the control limits (a step line:
   p and u charts have limits per point), the spec limits when given, the baseline shaded, and the
   points a run rule flagged in red. The numbers are the server's (microfab spc --json). */
(function () {
  var data = document.getElementById("spc-data");
  var el = document.getElementById("chart-spc");
  if (!data || !el || typeof echarts === "undefined") { return; }
  var d = JSON.parse(data.textContent);
  var pts = d.points;
  var x = pts.map(function (p) { return p.t; });
  var baselineEnd = -1;
  pts.forEach(function (p, i) { if (p.baseline) { baselineEnd = i; } });
  function why(p) {
    var parts = [];
    if (p.rules.length) { parts.push("rules " + p.rules.join(", ")); }
    if (p.dispersion_rules.length) { parts.push("dispersion beyond its limits"); }
    return parts.join("; ");
  }
  var flagged = pts.map(function (p, i) { return p.out ? [i, p.value, why(p)] : null; })
    .filter(function (v) { return v !== null; });
  var series = [
    { name: d.name, type: "line", data: pts.map(function (p) { return p.value; }), symbol: "circle", symbolSize: 4,
      lineStyle: { width: 1, color: "#1f2937" }, itemStyle: { color: "#1f2937" },
      markArea: baselineEnd >= 0 ? { silent: true, itemStyle: { color: "rgba(37,99,235,0.07)" },
        data: [[{ name: "baseline", xAxis: 0 }, { xAxis: baselineEnd }]] } : undefined },
    { name: "UCL", type: "line", step: "middle", data: pts.map(function (p) { return p.upper; }), symbol: "none",
      lineStyle: { type: "dashed", color: "#dc2626" }, itemStyle: { color: "#dc2626" } },
    { name: "LCL", type: "line", step: "middle", data: pts.map(function (p) { return p.lower; }), symbol: "none",
      lineStyle: { type: "dashed", color: "#dc2626" }, itemStyle: { color: "#dc2626" } },
    { name: "CL", type: "line", data: pts.map(function () { return d.center; }), symbol: "none",
      lineStyle: { color: "#16a34a" }, itemStyle: { color: "#16a34a" } },
    { name: "rule", type: "scatter", data: flagged, symbolSize: 8, itemStyle: { color: "#dc2626" },
      tooltip: { formatter: function (p) { return x[p.value[0]] + "<br>" + p.value[1].toPrecision(5) + " · " + p.value[2]; } } }
  ];
  ["lsl", "usl"].forEach(function (k) {
    if (d[k] !== null && d[k] !== undefined) {
      series.push({ name: k.toUpperCase(), type: "line", data: pts.map(function () { return d[k]; }), symbol: "none",
        lineStyle: { type: "dotted", color: "#7c3aed" }, itemStyle: { color: "#7c3aed" } });
    }
  });
  var chart = echarts.init(el, null, { renderer: "canvas" });
  chart.setOption({
    animation: false,
    grid: { left: 60, right: 20, top: 30, bottom: 60 },
    legend: { top: 0 },
    tooltip: { trigger: "axis" },
    dataZoom: [{ type: "inside" }, { type: "slider", height: 18, bottom: 8 }],
    xAxis: { type: "category", data: x },
    yAxis: { type: "value", scale: true },
    series: series
  });
  window.addEventListener("resize", function () { chart.resize(); });
})();
