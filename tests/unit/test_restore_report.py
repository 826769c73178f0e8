"""restore.py's closing report per host (phoenix/restore_report.py): what each job restored, then the steps."""

import json

from phoenix.restore_report import summary, write_document

DATABASE = {
    "run": "r-db",
    "snapshot": "0123456789abcdef",
    "age_seconds": 5400,
    "rows": 120,
    "tables": 4,
    "bytes": 20480,
    "ok": True,
    "seconds": 3.2,
}
FILES = {"run": "r-files", "snapshot": "fedcba9876543210", "age_seconds": 30, "files": 7, "bytes": 2048, "ok": False}
FILES |= {"seconds": 0.4, "previous_restore": "an interrupted restore of run r-old"}
STEPS = {"provision": 40.0, "restore data": 7.0, "start the app": 12.0}


def test_summary_names_each_job_its_verdict_an_interrupted_restore_finished_and_the_steps():
    assert summary("web1", {"db-links": DATABASE, "files": FILES}, STEPS).splitlines() == [
        "",
        "web1: restored",
        "  db-links: run r-db (snapshot 01234567, 90m old), 120 rows in 4 tables, 20,480 bytes, matches its"
        " manifest, 3.2s",
        "  files: run r-files (snapshot fedcba98, 30s old), 7 files, 2,048 bytes, DOES NOT match its manifest, 0.4s",
        "  files: an interrupted restore of run r-old; this run finished it",
        "  steps: provision 40s, restore data 7.0s, start the app 12s",
        "  total: 59s",
    ]


def test_the_json_report_goes_to_the_path_with_the_host_named_in_it(tmp_path):
    write_document(str(tmp_path / "restore-{host}.json"), "web1", STEPS, {"files": FILES}, {"files": {"run": "r"}})

    document = json.loads((tmp_path / "restore-web1.json").read_text())
    assert document == {
        "host": "web1",
        "steps": STEPS,
        "restored": {"files": FILES},
        "chosen": {"files": {"run": "r"}},
        "recovered": None,
        "missing": {},
    }


def test_a_job_left_empty_is_named_in_the_summary_and_the_json_report(tmp_path):
    missing = {"files": "web1/files: no complete backup in the repository yet"}

    lines = summary("web1", {"db-links": DATABASE}, STEPS, missing=missing).splitlines()
    write_document(str(tmp_path / "r.json"), "web1", STEPS, {"db-links": DATABASE}, {}, missing=missing)

    why = "no complete backup in the repository yet"
    said = f"  !! files: NOT restored ({why}); what it backs up is left as the host has it"
    assert lines.index(said) == 3  # after what was restored, before the steps
    assert json.loads((tmp_path / "r.json").read_text())["missing"] == missing
