"""state/run-scan.json: a run's parsed meta.json is reused only while its files keep their stats."""

from __future__ import annotations

import json
import os
from pathlib import Path

from peaktrade.artifacts import scan_runs
from peaktrade.artifacts.scancache import FILE, ScanCache, stamp
from tests.sitefixture import make_workspace

RUN = "20250101_000000_paper_ma_crossover_BTC-EUR_1m_aaaa0001"


def scan(workspace: Path):
    cache = ScanCache(workspace / "state")
    result = scan_runs(workspace / "live_runs", cache)
    cache.save()
    return result


def notes(result, run_id: str = RUN):
    return next(e.meta.get("notes") for e in result.runs if e.run_id == run_id)


def test_a_kept_meta_is_used_until_a_file_of_the_run_changes(workspace: Path) -> None:
    make_workspace(workspace)
    first = scan(workspace)
    kept = json.loads((workspace / "state" / FILE).read_text())["runs"]
    assert set(kept) == {e.run_id for e in first.runs} and notes(first) == "note"
    run_dir = workspace / "live_runs" / RUN
    assert kept[RUN][0] == stamp(str(run_dir))
    meta = run_dir / "meta.json"
    text = meta.read_text()
    with meta.open("r+") as fh:  # in place, same size: no new inode, the directory unchanged
        fh.write(text.replace('"notes": "note"', '"notes": "edit"'))
    assert notes(scan(workspace)) == "edit"
    with (run_dir / "orders.jsonl").open("a") as fh:  # another file of the run: read again too
        fh.write("\n")
    assert scan(workspace).runs and json.loads((workspace / "state" / FILE).read_text())["runs"][RUN][0] == stamp(
        str(run_dir)
    )


def test_a_run_with_a_symlinked_file_is_never_kept(workspace: Path) -> None:
    make_workspace(workspace)
    run_dir = workspace / "live_runs" / RUN
    (run_dir / "orders.jsonl").rename(run_dir / "orders.real")
    os.symlink("orders.real", run_dir / "orders.jsonl")  # inside the run: allowed, but its target may change
    assert stamp(str(run_dir)) is None
    scan(workspace)
    assert RUN not in json.loads((workspace / "state" / FILE).read_text())["runs"]


def test_a_gone_run_is_dropped_and_a_tampered_entry_is_named_once_and_read_from_disk(workspace: Path) -> None:
    make_workspace(workspace)
    scan(workspace)
    path = workspace / "state" / FILE
    doc = json.loads(path.read_text())
    doc["runs"][RUN][1] = {**doc["runs"][RUN][1], "run_id": [1], "started_at": True}
    doc["runs"]["20990101_gone"] = doc["runs"][RUN]
    path.write_text(json.dumps(doc))
    result = scan(workspace)
    assert notes(result) == "note"  # from meta.json itself
    assert [p for p in result.problems if FILE in p] == [
        f"{path}: damaged entry of run {RUN!r}; rebuilt (it only saves reading meta.json files again)"
    ]
    kept = json.loads(path.read_text())["runs"]
    assert "20990101_gone" not in kept and kept[RUN][1]["run_id"] == RUN
    assert not [p for p in scan(workspace).problems if FILE in p]  # said once


def test_metas_too_big_to_keep_together_are_read_from_disk_without_a_word(workspace: Path) -> None:
    make_workspace(workspace)
    for run_dir in (workspace / "live_runs").iterdir():  # each meta.json is under the reader's 16 MiB cap
        meta = json.loads((run_dir / "meta.json").read_text())
        (run_dir / "meta.json").write_text(json.dumps({**meta, "notes": "n" * 9_000_000}))
    for _ in range(2):
        result = scan(workspace)
        assert len(result.runs) == 2 and not [p for p in result.problems if FILE in p]


def test_a_file_turned_into_a_symlink_out_of_the_run_after_the_stamps_is_not_followed(
    workspace: Path, tmp_path: Path
) -> None:
    from peaktrade import config
    from peaktrade.site import job, quiet
    from peaktrade.site.render import Build

    make_workspace(workspace)
    settings = config.load()
    job.build(settings)  # keeps each run's meta.json in state/run-scan.json
    inputs = quiet.signature(settings, workspace / "site")  # the stamps a build takes before it reads anything
    secret = tmp_path / "outside.jsonl"
    secret.write_text(json.dumps({"ts": "2025-01-01T00:05:00+00:00", "side": "SECRET-OUTSIDE", "qty": 1}) + "\n")
    orders = workspace / "live_runs" / RUN / "orders.jsonl"
    orders.unlink()
    orders.symlink_to(secret)  # by another process, while the build runs
    result = Build(settings, workspace / "site", True, job.build_now(), [], inputs.stamps).run()
    page = workspace / "site/runs" / f"{RUN}.html"
    assert not page.exists() or "SECRET-OUTSIDE" not in page.read_text()
    assert any("orders.jsonl: symlink leading out of" in p for p in result.problems), result.problems


def test_a_save_writes_unchanged_runs_back_as_they_were_read(workspace: Path) -> None:
    """One run a line: a build with one run changed encodes that run's line only (1,000 metas took 40 ms to encode
    on every build). A line that is no longer in the layout `save` writes is encoded again."""
    make_workspace(workspace)
    scan(workspace)
    path = workspace / "state" / FILE
    lines = path.read_bytes().split(b"\n")
    other = "20250101_120000_shadow_breakout_ETH-EUR_1m_bbbb0002"
    assert (
        len(lines) == 2 + 3
        and lines[1].startswith(f'"{RUN}":'.encode())
        and lines[2].startswith(f'"{other}":'.encode())
    )
    lines[2] = lines[2].replace(b'"notes":', b'"notes":  ')  # as read back: equal JSON, other bytes
    path.write_bytes(b"\n".join(lines))
    meta = workspace / "live_runs" / RUN / "meta.json"
    meta.write_text(meta.read_text().replace('"notes": "note"', '"notes": "edit"'))
    assert notes(scan(workspace)) == "edit"
    after = path.read_bytes().split(b"\n")
    assert after[2] == lines[2]  # kept byte for byte
    assert b'"notes": "edit"' in after[1]
    assert json.loads(path.read_text())["runs"][other][1]["notes"] == "note"

    path.write_text(json.dumps(json.loads(path.read_text())))  # one line, as an older release wrote it
    meta.write_text(meta.read_text().replace('"notes": "edit"', '"notes": "again"'))
    result = scan(workspace)
    assert notes(result) == "again" and not [p for p in result.problems if FILE in p]
    assert len(path.read_bytes().split(b"\n")) == 2 + 3 and notes(scan(workspace), other) == "note"


def test_lines_not_exactly_as_written_are_encoded_again(workspace: Path) -> None:
    """A line is written back as read only if it holds its run alone, as `save` wrote it. A line that also holds a
    stale copy of another run (overridden later in the file) would bring that copy back once the lines are
    sorted; a blank after a line's comma would make the file no JSON. Both are encoded again."""
    make_workspace(workspace)
    other = "20250101_120000_shadow_breakout_ETH-EUR_1m_bbbb0002"
    path = workspace / "state" / FILE
    meta = workspace / "live_runs" / RUN / "meta.json"
    for edit in ("stale copy", "blank after comma"):
        scan(workspace)
        head, mine, theirs, *tail = path.read_bytes().split(b"\n")  # sorted: RUN's line, then the other's
        if edit == "stale copy":  # `"other":[...], "RUN":[STALE],` then `"RUN":[...]`
            stale = mine.replace(b'"notes": "', b'"notes": "STALE').removesuffix(b",")
            lines = [head, theirs + b", " + stale + b",", mine.removesuffix(b","), *tail]
        else:
            lines = [head, mine + b" ", theirs, *tail]
        path.write_bytes(b"\n".join(lines))
        assert json.loads(path.read_text())["runs"][RUN][1]["notes"] == notes(scan(workspace))  # as written: JSON
        text = meta.read_text()
        meta.write_text(text.replace('"notes": "', '"notes": "x'))  # this run changes, the other's line stays
        result = scan(workspace)
        assert not [p for p in result.problems if FILE in p], result.problems
        kept = json.loads(path.read_text())["runs"]  # JSON, the other run as it is, this one as edited
        assert kept[RUN][1]["notes"] == notes(result) and notes(result).startswith("x")
        assert kept[other][1]["notes"] == "note" and b"STALE" not in path.read_bytes()


def test_the_event_file_a_stamp_shows_is_the_one_a_stat_finds_now(tmp_path: Path) -> None:
    # A build reads a run's event file and its fingerprint back from the stamp it took (no second stat):
    # the same file, with the same fingerprint, as `event_file` and `fingerprint` find.
    from peaktrade.artifacts.summarycache import event_file, fingerprint, stamped_event_file

    layouts = {
        "parquet": ["events.parquet"],
        "csv": ["events.csv"],
        "both": ["events.parquet", "events.csv"],
        "none": [],
        "ours": ["events.d/"],
        "parquet_is_a_directory": ["events.parquet/", "events.csv"],
    }
    for name, files in layouts.items():
        run = tmp_path / name
        run.mkdir()
        (run / "meta.json").write_text("{}")
        for f in files:
            if f.endswith("/"):
                (run / f).mkdir()
            else:
                (run / f).write_text("a,b\n1,2\n" * len(name))
        found = event_file(run)
        expected = None if found is None else (found, fingerprint(found))
        assert stamped_event_file(run, stamp(str(run))) == expected, name
