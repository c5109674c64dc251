window.PEAKTRADE_BUILD={"built":1735740000,"health":{"status":"ok","title":"ops health: never ran \u00b7 build: 0 problem(s), 0 stale run(s)"},"stale_after":180};
