/* Freshness: compare the newest site build (build-time.js, rewritten by every build) with this browser's clock.
   Older than a few refresh intervals means the cron build stopped (or the disk is full): say so in a banner.
   The health badge shows the newest build's too: a page is rendered again only when its own content changes. */
(function () {
  var el = document.getElementById("freshness"), banner = document.getElementById("stale-banner");
  var site = window.PEAKTRADE_BUILD || {};
  var badge = document.getElementById("health-badge"), health = site.health || {};
  /* not from a build older than this page (a cached build-time.js) */
  var newer = (site.built || 0) >= Number(el.getAttribute("data-built"));
  if (badge && newer && typeof health.status === "string" && /^(ok|degraded|fail)$/.test(health.status)) {
    badge.className = "badge st-" + health.status;
    badge.textContent = "health: " + health.status.toUpperCase();
    badge.title = String(health.title || "");
  }
  var built = Math.max(Number(el.getAttribute("data-built")), site.built || 0);
  var data = Number(el.getAttribute("data-data"));
  var limit = site.stale_after || Number(el.getAttribute("data-stale-after"));
  function ago(s) {
    s = Math.max(0, s);
    if (s < 90) { return Math.round(s) + " s"; }
    if (s < 5400) { return Math.round(s / 60) + " min"; }
    if (s < 172800) { return Math.round(s / 3600) + " h"; }
    return Math.round(s / 86400) + " d";
  }
  var since = document.querySelectorAll("[data-since]");  /* "checked 5 min ago": kept current between builds */
  function tick() {
    var now = Date.now() / 1000, age = now - built;
    for (var i = 0; i < since.length; i++) {
      var at = Number(since[i].getAttribute("data-since"));
      if (at) { since[i].textContent = ago(now - at); }
    }
    el.textContent = (data ? "data " + ago(now - data) + " old · " : "") + "site built " + ago(age) + " ago";
    el.title = "built " + new Date(built * 1000).toISOString().replace(".000Z", " UTC").replace("T", " ");
    if (age > limit) {
      el.className = "fresh old";
      banner.textContent = "Stale page: the site was last built " + ago(age) + " ago (expected every few minutes). " +
        "Numbers here may be out of date. Check that cron still runs \u201cpeaktrade site build\u201d and that the disk is not full.";
      banner.hidden = false;
    } else {
      el.className = "fresh";
      banner.hidden = true;
    }
  }
  tick();
  setInterval(tick, 15000);
})();
