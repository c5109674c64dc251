"""`peaktrade site serve`: a read-only static server for the built site (development and LAN use).

Only files are served: a directory without an `index.html` answers 404 instead of a listing (run directories and
state must not be browsable), and a path that cannot name a file (a NUL byte, `%00`) answers 400.
"""

from __future__ import annotations

import functools
import urllib.parse
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class _Handler(SimpleHTTPRequestHandler):
    def send_head(self):
        path = urllib.parse.unquote(self.path.split("?", 1)[0].split("#", 1)[0])
        if "\x00" in path:
            self.send_error(HTTPStatus.BAD_REQUEST, "Bad path")
            return None
        return super().send_head()

    def list_directory(self, path):
        self.send_error(HTTPStatus.NOT_FOUND, "No such page")
        return None

    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-store")  # pages change every build; refresh must see that
        super().end_headers()

    def log_message(self, fmt: str, *args) -> None:  # quiet: one line per request is noise under meta refresh
        pass


def make_server(site_dir: Path, bind: str, port: int) -> ThreadingHTTPServer:
    """A threading HTTP server for `site_dir` on `bind:port` (port 0: any free port)."""
    handler = functools.partial(_Handler, directory=str(site_dir))
    return ThreadingHTTPServer((bind, port), handler)
