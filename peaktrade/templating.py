"""Jinja2 environments for the site (HTML, autoescaped) and reports (Markdown, escaped by the `md` filter).

Templates live in `templates/` at the project root and ship inside the wheel as `peaktrade/templates/`.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

from peaktrade import views

_PACKAGE = Path(__file__).resolve().parent
_MD_SPECIAL = re.compile(r"([\\`*\[\]|#<>])")
_MD_EDGE_UNDERSCORE = re.compile(r"(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")  # intraword _ never emphasizes


def template_dir() -> Path:
    """`peaktrade/templates` in an installed wheel, else `templates/` beside the package (a checkout)."""
    for candidate in (_PACKAGE / "templates", _PACKAGE.parent / "templates"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError("peaktrade templates not found (expected peaktrade/templates or ./templates)")


def md_escape(value: object) -> str:
    """Text from artifacts inside Markdown: no HTML, no table breaks, no emphasis, one line."""
    from peaktrade.terminal import printable  # a report read with `cat` must not drive the terminal

    text = printable("" if value is None else str(value))
    text = text.replace("&", "&amp;").replace("\r", " ").replace("\n", " ")
    text = _MD_SPECIAL.sub(lambda m: {"<": "&lt;", ">": "&gt;"}.get(m.group(1), "\\" + m.group(1)), text)
    return _MD_EDGE_UNDERSCORE.sub(r"\\_", text)


@cache
def environment(kind: str):
    """`kind` is "site" (HTML, autoescape on) or "reports" (Markdown, `md` filter for untrusted text)."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(template_dir() / kind)),
        # Match "x.html.j2" too: select_autoescape looks at the name's suffix, and ours end in .j2.
        autoescape=jinja2.select_autoescape(["html", "xml", "html.j2", "xml.j2"], default_for_string=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        # Compiling the templates costs more than a no-change `site build` may take (cron runs it every
        # minute): keep the compiled code in jinja2's per-user cache directory (created 0700, checked owned).
        bytecode_cache=_bytecode_cache(jinja2),
    )
    env.filters.update(
        money=views.money,
        amount=views.amount,
        percent=views.percent,
        md=md_escape,
        time=views.fmt_time,
        short=views.short_id,
    )
    if kind == "site":
        from peaktrade.site import badges, fmt, healthview, rows

        env.globals.update(
            mode=badges.mode,
            status=badges.status,
            pnl=badges.pnl,
            ended=badges.ended,
            health_badge=healthview.badge,
            session_row=rows.session_row,
        )

        env.filters.update(
            money_ccy=fmt.money_ccy,
            metric=fmt.metric_text,
            limit=fmt.limit_text,
            label=fmt.metric_label,
            when=fmt.short_time,
            sparkline=fmt.sparkline_svg,
        )
    return env


def _bytecode_cache(jinja2):
    """A compiled-template cache that can only speed things up: a failure to read or write it compiles."""

    class QuietCache(jinja2.FileSystemBytecodeCache):
        def load_bytecode(self, bucket) -> None:
            try:
                super().load_bytecode(bucket)
            except (OSError, ValueError, EOFError, TypeError):  # damaged cache file: compile instead
                bucket.reset()

        def dump_bytecode(self, bucket) -> None:
            try:
                super().dump_bytecode(bucket)
            except OSError:  # full or read-only temp directory
                pass

    try:
        return QuietCache()
    except (RuntimeError, OSError):  # no safe per-user temp directory: compile every time
        return None


def template_hash(kind: str) -> str:
    """A fingerprint of every template of `kind`: a change re-renders everything."""
    import hashlib

    h = hashlib.blake2b(digest_size=12)
    for path in sorted((template_dir() / kind).rglob("*")):
        if path.is_file():
            h.update(path.name.encode())
            h.update(path.read_bytes())
    return h.hexdigest()
