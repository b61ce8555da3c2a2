"""bench/results.json: each run merges the sections it measured into the file and keeps the others."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from bench import cold, results


def _read(path: Path) -> dict[str, Any]:
    document = json.loads(path.read_text())
    assert isinstance(document, dict)
    return document


def test_sections_written_by_separate_runs_are_all_kept(tmp_path: Path) -> None:
    path = tmp_path / "results.json"

    results.write({"flood": {"messages": 2000, "victim_job_ms": {"alone_p50": 356.1}}}, ["--only", "flood"], path)
    results.write({"cold": {"functions": {"ws_connect": {"import_ms": {"median": 41.2}}}}}, ["--only", "cold"], path)

    document = _read(path)
    assert set(document) >= {"machine", "generated_at", "runs", "sections"}
    assert isinstance(document["machine"], dict)
    assert {"nproc", "python", "platform"} <= set(document["machine"])
    assert document["sections"] == {
        "cold": {"functions": {"ws_connect": {"import_ms": {"median": 41.2}}}},  # in the order they run
        "flood": {"messages": 2000, "victim_job_ms": {"alone_p50": 356.1}},
    }
    assert list(document["sections"]) == ["cold", "flood"]
    assert document["runs"]["flood"]["argv"] == ["--only", "flood"]
    assert document["runs"]["cold"]["argv"] == ["--only", "cold"]
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]  # no temp file left behind


def test_an_only_run_replaces_its_section_alone(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    results.write({"cold": {"runs": 3}, "loop": {"wall_s": 2.5}, "memory": {"host_rss_mb": 180.0}}, [], path)
    before = _read(path)

    results.write({"memory": {"host_rss_mb": 190.0, "workers_total_rss_mb": math.nan}}, ["--only", "memory"], path)

    after = _read(path)
    assert after["sections"] == {
        "cold": {"runs": 3},
        "loop": {"wall_s": 2.5},
        "memory": {"host_rss_mb": 190.0, "workers_total_rss_mb": None},  # NaN is not JSON: null
    }
    assert after["runs"]["cold"] == before["runs"]["cold"]
    assert after["runs"]["memory"]["argv"] == ["--only", "memory"]


def test_an_unreadable_file_is_replaced(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    path.write_text("{not json")

    results.write({"flood": {"messages": 10}}, [], path)

    assert _read(path)["sections"] == {"flood": {"messages": 10}}


def test_the_engine_section_is_written_after_the_others(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    results.write({"engine": {"figures": {"step_p50_ms": 20.0}}}, ["--only", "engine"], path)
    results.write({"flood": {"messages": 10}, "cold": {"runs": 3}}, [], path)

    document = _read(path)
    assert list(document["sections"]) == ["cold", "flood", "engine"]
    assert document["runs"]["engine"]["argv"] == ["--only", "engine"]


def test_the_cold_report_shows_the_previous_runs_figures_beside_its_own(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    results.write(
        {"cold": {"functions": {"create_job": {"import_ms": {"median": 617.2}, "process_ms": 1099.7}}}}, [], path
    )
    previous = cold.before(results.read(path))
    assert previous is not None
    measured = cold.ColdStart("create_job", import_ms=[250.0], first_use_ms=[90.0], process_ms=[400.0])
    measured.source_import_ms.append(900.0)
    measured.source_first_use_ms.append(120.0)

    row = next(line for line in cold.report([measured], 1, previous).splitlines() if "create_job" in line)

    assert row.split()[1:] == ["250", "250", "250", "90", "400", "900", "120", "617", "1,100", "0", "0", "0"]
    assert cold.before({}) is None  # no earlier run: no column
    assert "before" not in cold.report([measured], 1)
