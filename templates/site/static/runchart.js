/* peaktrade run page: the interactive chart. Reads window.PEAKTRADE_CHART (runs/<run_id>.chart.js, written by
   `peaktrade site build`; every series on one grid of time buckets, see peaktrade/site/chartdata.py) and draws it
   with the vendored TradingView Lightweight Charts: price candles with buy/sell fills and blocked orders marked,
   then equity, drawdown and position in panes that share the time axis. Hover shows every value at that time;
   mouse wheel / drag / pinch zoom and pan; "fit all" resets. Text from artifacts only goes through textContent.
   If anything fails, the inline SVG charts stay visible. */
(function () {
  "use strict";
  var data = window.PEAKTRADE_CHART, LWC = window.LightweightCharts;
  var wrap = document.getElementById("run-chart-wrap"), box = document.getElementById("run-chart");
  var legend = document.getElementById("run-chart-legend");
  if (!wrap || !box || !data || !LWC || !data.t || !data.t.length) { return; }
  wrap.hidden = false;  /* the library measures its container: show it before drawing */
  var cur = data.currency || "", n = data.t.length;
  function num(v, digits) {
    if (v === null || v === undefined) { return "-"; }
    return v.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
  }
  function price(v) { return v === null || v === undefined ? "-" : num(v, Math.abs(v) >= 100 ? 2 : 6); }
  function utc(t) { return new Date(t * 1000).toISOString().slice(0, 16).replace("T", " ") + " UTC"; }
  function points(values, scale) {
    var out = [];
    for (var k = 0; k < n; k++) {
      out.push(values[k] === null ? { time: data.t[k] } : { time: data.t[k], value: values[k] * scale });
    }
    return out;
  }

  var chart = LWC.createChart(box, {
    autoSize: true,
    layout: { background: { color: "#ffffff" }, textColor: "#1d2330", fontSize: 12,
              panes: { separatorColor: "#cbd5e1", enableResize: true } },
    grid: { vertLines: { color: "#f1f5f9" }, horzLines: { color: "#f1f5f9" } },
    timeScale: { timeVisible: true, secondsVisible: false, borderColor: "#cbd5e1" },
    rightPriceScale: { borderColor: "#cbd5e1" },
    crosshair: { mode: 0 }
  });
  var two = { type: "price", precision: 2, minMove: 0.01 };
  var bars = [];
  for (var i = 0; i < n; i++) {
    bars.push(data.c[i] === null ? { time: data.t[i] }
      : { time: data.t[i], open: data.o[i], high: data.h[i], low: data.l[i], close: data.c[i] });
  }
  var priceSeries = chart.addSeries(LWC.CandlestickSeries, {
    upColor: "#16a34a", downColor: "#dc2626", borderVisible: false, wickUpColor: "#16a34a", wickDownColor: "#dc2626",
    title: data.symbol || "", priceFormat: two
  }, 0);
  priceSeries.setData(bars);

  var style = {
    buy: { position: "belowBar", color: "#15803d", shape: "arrowUp", text: "B" },
    sell: { position: "aboveBar", color: "#b91c1c", shape: "arrowDown", text: "S" },
    blocked: { position: "aboveBar", color: "#d97706", shape: "square", text: "blocked" }
  };
  var marks = [], byTime = {}, all = data.markers || [];
  var busy = all.length > 20;  /* many marked candles: small arrows without labels; the legend has the counts */
  all.forEach(function (m) {
    var s = style[m.kind];
    if (!s) { return; }
    marks.push({ time: m.t, position: s.position, color: s.color, shape: s.shape, size: busy ? 0.6 : 1,
                 text: busy ? "" : (m.n > 1 ? s.text + " ×" + m.n : s.text) });
    (byTime[m.t] = byTime[m.t] || []).push(m);
  });
  LWC.createSeriesMarkers(priceSeries, marks);

  var equity = chart.addSeries(LWC.LineSeries, { color: "#15803d", lineWidth: 2, title: "equity " + cur, priceFormat: two }, 1);
  equity.setData(points(data.equity, 1));
  var pct = { type: "custom", minMove: 0.01,
              formatter: function (v) { return (v < -0.0001 ? "−" : "") + Math.abs(v).toFixed(2) + "%"; } };
  var dd = chart.addSeries(LWC.AreaSeries, {
    lineColor: "#b91c1c", topColor: "rgba(185,28,28,0.05)", bottomColor: "rgba(185,28,28,0.35)", lineWidth: 1,
    invertFilledArea: true, priceFormat: pct, title: "drawdown",
    autoscaleInfoProvider: function (original) {  /* under water: 0 % at the top, at least 1 % of depth */
      var r = original();
      if (r) { r.priceRange.maxValue = 0; r.priceRange.minValue = Math.min(r.priceRange.minValue, -1); }
      return r;
    }
  }, 2);
  dd.setData(points(data.drawdown, -100));
  var pos = chart.addSeries(LWC.LineSeries, { color: "#2563eb", lineWidth: 1, lineType: 1, title: "position",
    priceFormat: { type: "price", precision: 6, minMove: 0.000001 } }, 3);
  pos.setData(points(data.position, 1));
  var panes = chart.panes(), stretch = [5, 2.2, 1.4, 1.2];  /* price, equity, drawdown, position */
  for (var p = 0; p < panes.length && p < stretch.length; p++) { panes[p].setStretchFactor(stretch[p]); }
  chart.timeScale().fitContent();

  var index = {};
  for (var j = 0; j < n; j++) { index[data.t[j]] = j; }
  function show(param) {
    var k = param && param.time !== undefined && index[param.time] !== undefined ? index[param.time] : n - 1;
    var t = data.t[k], parts = [utc(t)];
    if (data.c[k] !== null) {
      parts.push("O " + price(data.o[k]) + "  H " + price(data.h[k]) + "  L " + price(data.l[k]) + "  C " + price(data.c[k]));
    }
    parts.push("equity " + num(data.equity[k], 2) + " " + cur);
    parts.push("drawdown " + (data.drawdown[k] === null ? "-" : (data.drawdown[k] * 100).toFixed(2) + "%"));
    parts.push("position " + num(data.position[k], 6));
    (byTime[t] || []).forEach(function (m) {
      if (m.kind === "blocked") { parts.push(m.n + " blocked" + (m.reason ? " (" + m.reason + ")" : "")); }
      else { parts.push(m.n + " " + m.kind + (m.n > 1 ? "s" : "") + " filled, " + num(m.qty, 6) + " @ " + price(m.price)); }
    });
    legend.textContent = parts.join("  ·  ");
  }
  chart.subscribeCrosshairMove(show);
  show(null);
  var fit = document.getElementById("run-chart-fit");
  if (fit) { fit.addEventListener("click", function () { chart.timeScale().fitContent(); }); }
  var fallback = document.getElementById("svg-charts");
  if (fallback) { fallback.hidden = true; }
  box.setAttribute("data-rendered", String(marks.length));
})();
