"""The pure alert gate and message composition: explicit clocks, no files."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from peaktrade.alerts.gate import apply, compose
from peaktrade.alerts.model import Alert
from peaktrade.alerts.triggers import exchange_down_since

T = datetime(2026, 1, 1, 3, 0, tzinfo=UTC)


def dead(severity: str = "critical") -> Alert:
    return Alert("run:r1:writer", severity, "run r1: writer dead", "pid 7 is gone", run_id="r1")


def test_cooldown_repeat_escalation_and_resolve() -> None:
    keys: dict = {}
    steps = [
        (0, [dead("warning")]),  # new: sent
        (5, [dead("warning")]),  # within the cool-down: held back
        (10, [dead("critical")]),  # severity rose: sent at once, mentions the held repeat
        (20, [dead("critical")]),  # held
        (45, [dead("critical")]),  # cool-down over and still dead: sent again
        (50, []),  # cleared: one resolved item
        (55, []),  # nothing more
    ]
    seen = []
    for minutes, alerts in steps:
        result = apply(keys, alerts, T + timedelta(minutes=minutes), cooldown=1800)
        keys = result.keys
        seen.append([(i["status"], i["severity"], i["suppressed"]) for i in result.items])
    assert seen == [
        [("new", "warning", 0)],
        [],
        [("escalated", "critical", 1)],
        [],
        [("repeat", "critical", 1)],
        [("resolved", "critical", 0)],
        [],
    ]


def test_held_events_are_summed_and_sent_after_the_cooldown() -> None:
    def blocked(n: int) -> Alert:
        return Alert("run:r1:blocked", "warning", "blocked", "b", kind="event", counts={"max_order": n})

    keys = apply({}, [blocked(2)], T, 600).keys
    r = apply(keys, [blocked(3)], T + timedelta(minutes=2), 600)
    assert r.items == [] and r.suppressed == 1
    r = apply(r.keys, [blocked(4)], T + timedelta(minutes=4), 600)
    assert r.keys["run:r1:blocked"]["held_counts"] == {"max_order": 7}
    r = apply(r.keys, [], T + timedelta(minutes=12), 600)
    (item,) = r.items
    assert item["status"] == "digest" and item["suppressed"] == 2 and item["held_counts"] == {"max_order": 7}
    assert r.keys == {}
    text = compose(r.items, "[p]", T + timedelta(minutes=12)).body
    assert "+2 repeat(s) suppressed since 2026-01-01 03:02 UTC: max_order 7" in text


def test_once_alerts_are_announced_once_and_unknown_inputs_do_not_resolve() -> None:
    failed = Alert("session:s1:failed", "critical", "session s1 failed", "x", kind="once")
    keys = apply({}, [failed, dead()], T, 60).keys
    later = apply(keys, [failed], T + timedelta(hours=5), 60, unknown={"run:r1:"})
    assert later.items == [] and set(later.keys) == {"session:s1:failed", "run:r1:writer"}


def test_compose_batches_with_counts_and_worst_type() -> None:
    items = apply({}, [dead(), Alert("health:overall", "warning", "health DEGRADED", "disk")], T, 60).items
    msg = compose(items, "[peaktrade]", T)
    assert msg.title == "[peaktrade] 1 critical, 1 warning" and msg.notify_type == "failure"
    assert msg.body.index("CRITICAL") < msg.body.index("WARNING")
    late = compose(items, "[peaktrade]", T + timedelta(hours=2)).body
    assert "2026-01-01 03:00 UTC (delayed: a target was down)" in late


def test_exchange_down_since_the_first_failure_after_the_last_pass() -> None:
    def doc(minute: int, status: str | None) -> dict:
        checks = [{"name": "exchange", "status": status}] if status else []
        return {"checked_at": (T + timedelta(minutes=minute)).isoformat(), "checks": checks}

    history = [doc(0, "fail"), doc(5, "ok"), doc(10, "fail"), doc(15, None), doc(20, "fail")]
    assert exchange_down_since(history) == T + timedelta(minutes=10)
    assert exchange_down_since([*history, doc(25, "ok")]) is None


def test_a_long_batch_stays_readable() -> None:
    alerts = [Alert(f"session:s{n:03d}:failed", "critical", f"session s{n:03d} failed", "x" * 200) for n in range(80)]
    msg = compose(apply({}, alerts, T, 60).items, "[p]", T)
    assert msg.title == "[p] 80 critical"
    assert msg.body.count("x" * 200) == 15 and "**65 more:**" in msg.body
    assert "- CRITICAL session s064 failed" in msg.body and "15 more on the site's alerts page" in msg.body
