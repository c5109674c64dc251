/* peaktrade run page: the interactive chart. Reads window.PEAKTRADE_CHART (runs/<run_id>.chart.js, written by
   `peaktrade site build`) and draws it with the vendored TradingView Lightweight Charts: price (candles) with
   buy/sell fills and blocked orders marked, equity, drawdown and position in panes that share one time axis.
   Hover shows the values under the cursor; mouse wheel / drag / pinch zoom and pan; "fit all" resets.
   Text from artifacts only ever goes through textContent. On any failure the inline SVG charts stay visible. */
(function () {
  "use strict";
  var data = window.PEAKTRADE_CHART, LWC = window.LightweightCharts;
  var box = document.getElementById("run-chart"), legend = document.getElementById("run-chart-legend");
  if (!box || !data || !LWC || !data.candles || !data.candles.t.length) { return; }
  box.hidden = false;  /* the library measures its container: show it before drawing */
  var cur = data.currency || "";
  function num(v, digits) {
    if (v === null || v === undefined) { return "-"; }
    return v.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
  }
  function price(v) { return num(v, Math.abs(v) >= 100 ? 2 : 6); }
  function utc(t) { return new Date(t * 1000).toISOString().slice(0, 16).replace("T", " ") + " UTC"; }

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

  var c = data.candles, bars = [];
  for (var i = 0; i < c.t.length; i++) { bars.push({ time: c.t[i], open: c.o[i], high: c.h[i], low: c.l[i], close: c.c[i] }); }
  var priceSeries = chart.addSeries(LWC.CandlestickSeries, {
    upColor: "#16a34a", downColor: "#dc2626", borderVisible: false, wickUpColor: "#16a34a", wickDownColor: "#dc2626",
    title: data.symbol || "", priceFormat: two
  }, 0);
  priceSeries.setData(bars);

  var marks = [], byTime = {};
  (data.markers || []).forEach(function (m) {
    var blocked = m.status === "blocked", buy = m.side === "buy";
    marks.push({
      time: m.t,
      position: blocked ? "aboveBar" : (buy ? "belowBar" : "aboveBar"),
      color: blocked ? "#d97706" : (buy ? "#15803d" : "#b91c1c"),
      shape: blocked ? "square" : (buy ? "arrowUp" : "arrowDown"),
      text: blocked ? "blocked" : (buy ? "B" : "S")
    });
    (byTime[m.t] = byTime[m.t] || []).push(m);
  });
  LWC.createSeriesMarkers(priceSeries, marks);

  function lineData(cols, scale) {
    var out = [];
    if (!cols || !cols.t) { return out; }
    for (var k = 0; k < cols.t.length; k++) { if (cols.v[k] !== null) { out.push({ time: cols.t[k], value: cols.v[k] * scale }); } }
    return out;
  }
  var equity = chart.addSeries(LWC.LineSeries, { color: "#15803d", lineWidth: 2, title: "equity " + cur, priceFormat: two }, 1);
  equity.setData(lineData(data.equity, 1));
  var pct = { type: "custom", formatter: function (v) { return (v < 0 ? "−" : "") + Math.abs(v).toFixed(2) + "%"; }, minMove: 0.01 };
  var dd = chart.addSeries(LWC.AreaSeries, {
    lineColor: "#b91c1c", topColor: "rgba(185,28,28,0.05)", bottomColor: "rgba(185,28,28,0.35)", lineWidth: 1,
    invertFilledArea: true, priceFormat: pct, title: "drawdown"
  }, 2);
  dd.setData(lineData(data.drawdown, -100));
  var pos = chart.addSeries(LWC.LineSeries, { color: "#2563eb", lineWidth: 1, lineType: 1, title: "position", priceFormat: { type: "price", precision: 6, minMove: 0.000001 } }, 3);
  pos.setData(lineData(data.position, 1));
  var panes = chart.panes(), stretch = [5, 2.2, 1.4, 1.2];  /* price, equity, drawdown, position */
  for (var p = 0; p < panes.length && p < stretch.length; p++) { panes[p].setStretchFactor(stretch[p]); }
  chart.timeScale().fitContent();

  function show(param) {
    var parts = [];
    var t = param && param.time !== undefined ? param.time : bars[bars.length - 1].time;
    var get = function (s) { return param && param.seriesData ? param.seriesData.get(s) : undefined; };
    var bar = get(priceSeries) || (param && param.time !== undefined ? undefined : bars[bars.length - 1]);
    parts.push(utc(t));
    if (bar) { parts.push("O " + price(bar.open) + "  H " + price(bar.high) + "  L " + price(bar.low) + "  C " + price(bar.close)); }
    var e = get(equity), d = get(dd), q = get(pos);
    if (e) { parts.push("equity " + num(e.value, 2) + " " + cur); }
    if (d) { parts.push("drawdown " + Math.abs(d.value).toFixed(2) + "%"); }
    if (q) { parts.push("position " + num(q.value, 6)); }
    (byTime[t] || []).forEach(function (m) {
      parts.push(m.status === "blocked" ? "BLOCKED " + m.side + (m.reason ? " (" + m.reason + ")" : "")
        : "FILL " + m.side + " " + num(m.qty, 6) + " @ " + price(m.price));
    });
    legend.textContent = parts.join("  ·  ");
  }
  chart.subscribeCrosshairMove(show);
  show(null);
  var fit = document.getElementById("run-chart-fit");
  if (fit) { fit.hidden = false; fit.addEventListener("click", function () { chart.timeScale().fitContent(); }); }
  var fallback = document.getElementById("svg-charts");
  if (fallback) { fallback.hidden = true; }
  box.setAttribute("data-rendered", String(marks.length));
})();
