"""Real alert endpoints on 127.0.0.1 for the alert tests: an HTTP server (json:// and form://) and SMTP (aiosmtpd)."""

from __future__ import annotations

import json
import socket
import threading
import urllib.parse
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Post:
    path: str
    content_type: str
    body: bytes

    def fields(self) -> dict[str, Any]:
        """The apprise payload: JSON for json://, the form fields for form:// (urlencoded or multipart)."""
        if self.content_type.startswith("application/json"):
            return json.loads(self.body)
        if self.content_type.startswith("application/x-www-form-urlencoded"):
            return {k: v[0] for k, v in urllib.parse.parse_qs(self.body.decode()).items()}
        msg = message_from_bytes(b"Content-Type: " + self.content_type.encode() + b"\r\n\r\n" + self.body)
        out: dict[str, Any] = {"files": []}
        for part in msg.walk():
            name = part.get_param("name", header="content-disposition")
            if part.get_filename():
                out["files"].append((part.get_filename(), part.get_content_type(), part.get_payload(decode=True)))
            elif name:
                out[name] = part.get_payload(decode=True).decode()
        return out


@dataclass
class HttpSink:
    """Records every POST. `down` makes it answer 503 (a target that is down); `hold` delays the first answer."""

    host: str = ""
    posts: list[Post] = field(default_factory=list)
    down: bool = False
    hold: threading.Event | None = None
    got_one: threading.Event = field(default_factory=threading.Event)

    def to(self, path: str) -> list[Post]:
        return [p for p in self.posts if p.path.startswith(path)]


def start_http_sink() -> tuple[HttpSink, ThreadingHTTPServer]:
    sink = HttpSink()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if sink.down:
                self.send_response(503)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            sink.posts.append(Post(self.path, self.headers.get("Content-Type", ""), body))
            sink.got_one.set()
            if sink.hold is not None:
                sink.hold.wait(30)  # bounded: the test releases it
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    sink.host = f"127.0.0.1:{server.server_address[1]}"
    return sink, server


class SmtpSink:
    """aiosmtpd on a free port (its Controller cannot bind port 0: its self-check connects to the port)."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        self.messages: list[Message] = []
        sink = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                sink.messages.append(message_from_bytes(envelope.original_content or envelope.content))
                return "250 OK"

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def url(self) -> str:
        return f"mailto://127.0.0.1:{self.port}?mode=insecure&from=bot@example.com&to=oncall@example.com"

    def stop(self) -> None:
        self.controller.stop()
