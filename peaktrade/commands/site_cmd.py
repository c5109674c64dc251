from __future__ import annotations

import time

from peaktrade.commands import few_gc_pauses, out, settings, warn
from peaktrade.errors import LockHeld, UsageError


def build(args) -> int:
    from pathlib import Path

    from peaktrade import site

    cfg = settings(args)
    out_dir = Path(args.out) if args.out else None
    if args.loop is not None and args.loop <= 0:
        raise UsageError("--loop takes a positive number of seconds")
    while True:
        try:
            with few_gc_pauses():
                result = site.build(cfg, out_dir=out_dir, full=args.full)  # records itself as the `site-build` job
        except LockHeld as exc:
            if args.loop is None:
                raise
            warn(str(exc))
        else:
            for problem in result.problems:
                warn(problem)
            out(_summary(result), flush=True)
        if args.loop is None:
            return 0
        try:
            time.sleep(args.loop)
        except KeyboardInterrupt:
            return 0


def _summary(result) -> str:
    where = f"site: {result.out_dir}/index.html"
    if result.unchanged:
        return f"{where} (no input changed since the last build: freshness stamps rewritten, {result.seconds:.2f} s)"
    workers = f" by {result.workers} worker processes" if result.workers > 1 else ""
    return (
        f"{where} ({result.written} files written, {result.rendered_runs} run pages, {result.rendered_sessions}"
        f" session pages re-rendered{workers}, {result.seconds:.2f} s)"
    )


def serve(args) -> int:
    from pathlib import Path

    from peaktrade.site.serve import make_server

    cfg = settings(args)
    site_dir = Path(args.dir) if args.dir else cfg.paths.site_dir
    if not (site_dir / "index.html").is_file():
        raise UsageError(f"{site_dir}/index.html does not exist; run `peaktrade site build` first")
    server = make_server(site_dir, args.bind, args.port)
    host, port = server.server_address[:2]
    print(f"serving {site_dir} at http://{host}:{port}/ (read-only; Ctrl+C to stop)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
