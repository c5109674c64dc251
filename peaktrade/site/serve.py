"""`peaktrade site serve`: a read-only static server for the built site (development and LAN use)."""

from __future__ import annotations

import functools
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class _Handler(SimpleHTTPRequestHandler):
    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-store")  # pages change every build; refresh must see that
        super().end_headers()

    def log_message(self, fmt: str, *args) -> None:  # quiet: one line per request is noise under meta refresh
        pass


def make_server(site_dir: Path, bind: str, port: int) -> ThreadingHTTPServer:
    handler = functools.partial(_Handler, directory=str(site_dir))
    return ThreadingHTTPServer((bind, port), handler)
