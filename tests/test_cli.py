from __future__ import annotations

import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from tests.conftest import ROOT, run_cli


def test_help_lists_commands_and_exit_codes(workspace: Path) -> None:
    out = run_cli("--help", cwd=workspace)
    assert out.returncode == 0 and "exit codes: 0 ok, 1 failure, 2 usage" in out.stdout


def test_help_does_not_import_heavy_modules() -> None:
    code = (
        "import sys; from peaktrade.cli import build_parser; build_parser(); "
        "print(sorted(m for m in ('pandas','pyarrow','ccxt','matplotlib','apprise','jinja2') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_no_command_and_bad_flags_are_usage_errors(workspace: Path) -> None:
    assert run_cli(cwd=workspace).returncode == 2
    assert run_cli("runs", "list", "--nope", cwd=workspace).returncode == 2


def test_unknown_run_id_with_traversal_is_rejected(workspace: Path) -> None:
    out = run_cli("runs", "recover", "--run-id", "../../etc", cwd=workspace)
    assert out.returncode == 2 and "invalid run id" in out.stderr and "Traceback" not in out.stderr


class _Hook(BaseHTTPRequestHandler):
    received: list[dict] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Hook.received.append(json.loads(body))
        self.send_response(200 if "fail" not in self.path else 500)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


def test_alerts_test_delivers_through_apprise_to_a_local_endpoint(workspace: Path) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"json://127.0.0.1:{server.server_port}/hook-secret-token"
        ok = run_cli("alerts", "test", cwd=workspace, env={"PEAKTRADE_ALERT_URLS": url})
        assert ok.returncode == 0, ok.stderr
        assert "delivered to 1 target(s)" in ok.stdout
        assert _Hook.received[-1]["title"] == "[peaktrade] test message"
        bad = run_cli(
            "alerts",
            "test",
            cwd=workspace,
            env={"PEAKTRADE_ALERT_URLS": f"json://127.0.0.1:{server.server_port}/fail-secret"},
        )
        assert bad.returncode == 1 and "delivery failed" in bad.stdout
        assert "secret" not in bad.stdout + bad.stderr
    finally:
        server.shutdown()


def test_alerts_test_without_targets_fails_clearly(workspace: Path) -> None:
    out = run_cli("alerts", "test", cwd=workspace)
    assert out.returncode == 1 and "no alert targets configured" in out.stdout
