"""The header and footer around session pages (`site.sessionpage.Shell`), rendered once per build from
`base.html.j2`; the pages themselves are pinned by the golden site tree."""

from __future__ import annotations

from datetime import UTC, datetime

from peaktrade.site import render, sessionpage
from peaktrade.templating import environment


def _base(title: str, status: str = "ok") -> dict:
    now = datetime(2025, 1, 1, 14, tzinfo=UTC)
    return dict(
        site_title=title,
        nav=render.NAV,
        health={"status": status, "problems": [], "stale_runs": [], "ops_health": None},
        generated_at=now,
        data_time=now,
        labels={},
        currency="EUR",
        built_epoch=0,
        stale_after=180,
        data_age="0 s",
        data_epoch=0,
    )


def test_a_site_title_holding_the_shells_markers_is_escaped_and_the_page_is_whole() -> None:
    title = "<!--peaktrade:title--><!--peaktrade:body-->"
    page = sessionpage.Shell(environment("site"), _base(title)).page("../", None, "sessions", "T", "<p>body</p>")
    assert "&lt;!--peaktrade:title--&gt;&lt;!--peaktrade:body--&gt;" in page
    assert "<title>T · &lt;!--peaktrade:title" in page and "<main>\n<p>body</p></main>" in page


def test_the_header_is_rendered_again_when_the_builds_health_changes_in_place() -> None:
    build = render.Build.__new__(render.Build)  # only what `_shell` uses
    build.env, build.base, build._shells = environment("site"), _base("peaktrade"), None
    before = build._shell().page("../", None, "sessions", "T", "")
    assert build._shell().page("../", None, "sessions", "T", "") == before  # rendered once
    build.base["health"].update(status="degraded")  # as `Build._run` updates it once the leaves are in
    after = build._shell().page("../", None, "sessions", "T", "")
    assert "health: OK" in before and "health: DEGRADED" in after
