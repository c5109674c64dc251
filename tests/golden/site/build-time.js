window.PEAKTRADE_BUILD={"built":1735740000,"stale_after":180};
