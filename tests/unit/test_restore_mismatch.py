"""A host-side restore that does not match its manifest stops restore.py there, naming the run and what to do."""

from __future__ import annotations

import time

from phoenix.remote import restore

REPORT = {
    "run": "20261130T021500-db-links", "job": "db-links", "ok": False, "checksum_matches": False,
    "mismatched_tables": {"links": [15, 5]},
}  # fmt: skip


def test_a_restore_in_place_that_does_not_match_fails_naming_the_run_and_what_to_do(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(restore, "REPORT_DIRECTORY", tmp_path)

    status = restore.finish(dict(REPORT), time.monotonic(), "db-links")

    error = capsys.readouterr().err
    assert status == 1 and (tmp_path / "db-links.json").exists()
    assert error.startswith(
        "phoenix-backup: run 20261130T021500-db-links of db-links was restored but DOES NOT match its manifest:"
        " the dump's checksum differs; row counts differ in links; the restored data may be damaged,"
        " so the app is not started."
    )
    assert "--data snapshot=RUN force_restore=yes" in error and error.count("\n") == 1


def test_a_scratch_verify_that_does_not_match_only_says_so(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(restore, "REPORT_DIRECTORY", tmp_path)

    assert restore.finish(dict(REPORT), time.monotonic(), "verify-db-links", in_place=False) == 1

    assert "app is not started" not in capsys.readouterr().err


def test_tables_made_after_the_run_are_dropped_before_its_data_come_back():
    # pg_restore --clean replaces what the dump holds; a table a newer release's migration made is not in it
    live = {"public.links": 5, "public.link_tags": 2, '"Odd"."Name"': 0, "public.alembic_version": 1}
    manifest = {"tables": {"public.links": 3, "public.alembic_version": 1}}

    extra, statement = restore.drop_table_statement(live, manifest)

    assert extra == ['"Odd"."Name"', "public.link_tags"]
    assert statement == 'DROP TABLE IF EXISTS "Odd"."Name", public.link_tags CASCADE'
    assert restore.drop_table_statement({"public.links": 5}, manifest) == ([], "")
