"""`peaktrade site serve` serves files only: a NUL in the path is a 400, a directory is never listed."""

from __future__ import annotations

import http.client
import threading
from pathlib import Path

import pytest

from peaktrade.site.serve import make_server


@pytest.fixture
def server(tmp_path: Path):
    site = tmp_path / "site"
    (site / "runs").mkdir(parents=True)
    (site / "index.html").write_text("<p>home</p>")
    (site / "runs" / "secret-run.html").write_text("<p>run</p>")
    (site / "sessions").mkdir()
    (site / "sessions" / "index.html").write_text("<p>sessions</p>")
    srv = make_server(site, "127.0.0.1", 0)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv.server_address[1]
    srv.shutdown()
    srv.server_close()
    thread.join(timeout=10)


def get(port: int, path: str) -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read().decode("utf-8", "replace")
    finally:
        conn.close()


def test_nul_in_a_path_is_a_bad_request(server: int) -> None:
    for path in ("/%00", "/index.html%00.txt", "/runs/%00/x"):
        status, body = get(server, path)
        assert status == 400, path
        assert "Traceback" not in body
    assert get(server, "/index.html")[0] == 200  # the server survived them


def test_directories_are_never_listed(server: int) -> None:
    status, body = get(server, "/runs/")
    assert status == 404 and "secret-run.html" not in body
    assert get(server, "/runs")[0] in (301, 404)  # the redirect to /runs/ then ends in 404
    status, body = get(server, "/sessions/")
    assert status == 200 and "sessions" in body  # a directory with an index.html serves that page
    assert get(server, "/")[0] == 200
