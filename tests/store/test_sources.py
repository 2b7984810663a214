"""Header and encoding variants of the text formats: BOM, padded names, CRLF, blank and white-space lines."""

import json

import pytest

from graphrec.store import GraphStore, LogSchema, ingest
from graphrec.store.sources import blank_lines, read_source

COLS = ["timestamp", "user_id", "target_type", "target_id", "event_type"]
ROWS = [["2024-06-01T10:00:00Z", "u1", "item", "i1", "click"], ["2024-06-01T11:00:00Z", "u2", "item", "i2", "click"]]
BOM = "\ufeff"


def _text(fmt: str, *, bom=False, pad=False, crlf=False, blanks=False, spaces=False, bad=False) -> str:
    sep = "\t" if fmt == "tsv" else ","
    names = [(" " + c + " ") if pad and i else c for i, c in enumerate(COLS)]
    if fmt == "ndjson":
        lines = [json.dumps(dict(zip(names, r, strict=True))) for r in ROWS]
    else:
        lines = [sep.join(names)] + [sep.join(r) for r in ROWS]
    if bad:
        lines.insert(len(lines) - 1, "not,a record" if fmt != "ndjson" else "{not json")
    if blanks:
        lines.insert(len(lines) - 1, "")
        lines.append("")
    if spaces:
        lines.insert(len(lines) - 1, "   \t ")
    end = "\r\n" if crlf else "\n"
    return (BOM if bom else "") + end.join(lines) + end


VARIANTS = {
    "bom": {"bom": True},
    "padded header": {"pad": True},
    "crlf": {"crlf": True},
    "blank lines": {"blanks": True},
    "white-space lines": {"spaces": True},
    "everything": {"bom": True, "pad": True, "crlf": True, "blanks": True, "spaces": True},
}


@pytest.mark.parametrize("fmt", ["csv", "tsv", "ndjson"])
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_variants_are_read_as_the_plain_file(tmp_path, fmt, variant):
    path = tmp_path / f"log.{fmt}"
    path.write_text(_text(fmt, **VARIANTS[variant]), encoding="utf-8")
    rep = ingest(tmp_path / "store", [path], schema=LogSchema(), echo=False)
    assert (rep.read, rep.accepted, rep.quarantined) == (2, 2, 0), str(rep)
    ev = GraphStore(tmp_path / "store").events(external_ids=True).collect()
    assert sorted(ev["user_id"].to_list()) == ["u1", "u2"]


@pytest.mark.parametrize("fmt", ["csv", "tsv", "ndjson"])
def test_a_bad_line_after_blank_lines_keeps_its_physical_line_number(tmp_path, fmt):
    path = tmp_path / f"log.{fmt}"
    path.write_text(_text(fmt, crlf=True, blanks=True, bad=True), encoding="utf-8")
    rep = ingest(tmp_path / "store", [path], schema=LogSchema(), echo=False)
    assert (rep.read, rep.accepted, rep.quarantined) == (3, 2, 1), str(rep)
    q = GraphStore(tmp_path / "store").quarantine()
    lines = path.read_bytes().decode("utf-8").split("\r\n")
    row = int(q["row"][0])
    assert lines[row - 1] in ("not,a record", "{not json"), (row, lines)


@pytest.mark.parametrize("fmt", ["csv", "tsv"])
def test_a_header_and_blank_lines_is_an_empty_file(tmp_path, fmt):
    path = tmp_path / f"log.{fmt}"
    sep = "\t" if fmt == "tsv" else ","
    path.write_text(sep.join(COLS) + "\n\n  \n", encoding="utf-8")
    assert read_source(path).empty
    rep = ingest(tmp_path / "store", [path], schema=LogSchema(), echo=False)
    assert (rep.read, rep.quarantined) == (0, 0) and rep.files[0].status == "empty"


def test_names_that_collide_once_trimmed_are_refused(tmp_path):
    path = tmp_path / "log.ndjson"
    path.write_text(json.dumps({"user_id": "a", " user_id": "b"}) + "\n")
    assert "differ only by white space" in read_source(path).error


def test_blank_line_numbers(tmp_path):
    path = tmp_path / "x.csv"
    path.write_bytes(b"a,b\n\n1,2\r\n \t\r\n3,4\n\n")
    assert blank_lines(path).tolist() == [2, 4, 6]
    path.write_bytes(b"a,b\n1,2")
    assert blank_lines(path).tolist() == []


def test_a_file_written_with_comma_space_separators_is_read(tmp_path):
    path = tmp_path / "spaced.csv"
    path.write_text(", ".join(COLS) + "\n" + "\n".join(", ".join(r) for r in ROWS) + "\n")
    rep = ingest(tmp_path / "store", [path], schema=LogSchema(), echo=False)
    assert (rep.read, rep.accepted) == (2, 2), str(rep)
    ev = GraphStore(tmp_path / "store").events(external_ids=True).collect()
    assert set(ev["target_type"]) == {"item"} and set(ev["event_type"]) == {"click"}


def test_the_command_fails_when_no_row_is_accepted(tmp_path):
    from typer.testing import CliRunner

    from graphrec.store.cli import store_app

    path = tmp_path / "no-target-type.csv"
    path.write_text("timestamp,user_id,target_id,event_type\n2024-06-01T10:00:00Z,u1,i1,click\n")
    res = CliRunner().invoke(store_app, ["ingest", "--store", str(tmp_path / "st"), str(path), "--no-progress"])
    assert res.exit_code == 1 and "no row of 1 was accepted" in res.output and "graphrec store quarantine" in res.output
