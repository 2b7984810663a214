"""Input sources: resolve files, folders and globs, and read each file into a lazy frame.

Every frame carries ``__row``, the position of the record in its file, so that a rejected
row can always be traced back:

* CSV/TSV: the physical line number (the header is line 1);
* NDJSON: the line number;
* Parquet and in-memory frames: the 1-based record number.

Reading never raises for bad content: lines that cannot be parsed are returned as
``malformed`` records and a file that cannot be opened at all is returned with an
``error``; the ingest turns both into quarantine rows.
"""

from __future__ import annotations

import csv
import glob
import io
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from graphrec.store.errors import SourceError

ROW = "__row"

FORMATS: dict[str, str] = {
    ".parquet": "parquet",
    ".pq": "parquet",
    ".csv": "csv",
    ".tsv": "tsv",
    ".ndjson": "ndjson",
    ".jsonl": "ndjson",
    ".json": "ndjson",
}

#: Extensions picked up when a folder or glob is expanded (``.json`` only when named explicitly,
#: so a schema or manifest lying beside the logs is not read as events).
SCAN_EXTENSIONS = {ext for ext in FORMATS if ext != ".json"}

#: An in-memory source: a display name and a frame already in the log schema.
FrameSource = tuple[str, "pl.DataFrame | pl.LazyFrame"]
SourceLike = "str | os.PathLike | FrameSource"


@dataclass
class RawFile:
    """One input file, read but not yet validated."""

    source: str
    format: str
    frame: pl.LazyFrame | None = None
    #: Lines that could not be split into fields: columns ``__row``, ``detail``, ``raw``.
    malformed: pl.DataFrame | None = None
    #: Set when the file could not be read at all.
    error: str | None = None
    empty: bool = False
    columns: list[str] = field(default_factory=list)


def detect_format(path: Path) -> str:
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise SourceError(
            f"{path}: unsupported file type {path.suffix!r}; expected one of "
            + ", ".join(sorted(FORMATS))
        )
    return fmt


def resolve(sources: Iterable[SourceLike]) -> list[Path | FrameSource]:
    """Expand folders (recursively) and glob patterns into a sorted list of files.

    Frames given as ``(name, frame)`` pairs pass through unchanged.
    """
    out: list[Path | FrameSource] = []
    seen: set[Path] = set()

    def add(path: Path) -> None:
        path = path.resolve()
        if path not in seen:
            seen.add(path)
            out.append(path)

    for item in sources:
        if isinstance(item, tuple):
            name, frame = item
            if not isinstance(frame, pl.DataFrame | pl.LazyFrame):
                raise SourceError(f"source {name!r}: expected a polars frame, got {type(frame).__name__}")
            out.append((str(name), frame))
            continue
        text = os.fspath(item)
        path = Path(text)
        if any(ch in text for ch in "*?["):
            matches = sorted(Path(p) for p in glob.glob(text, recursive=True))
            files = [p for p in matches if p.is_file() and p.suffix.lower() in SCAN_EXTENSIONS]
            if not files:
                raise SourceError(f"no input files match {text!r}")
            for p in files:
                add(p)
        elif path.is_dir():
            files = sorted(
                p for p in path.rglob("*")
                if p.is_file() and p.suffix.lower() in SCAN_EXTENSIONS and not p.name.startswith(".")
            )
            if not files:
                raise SourceError(f"folder {path} holds no .parquet, .csv, .tsv, .ndjson or .jsonl files")
            for p in files:
                add(p)
        elif path.is_file():
            detect_format(path)
            add(path)
        else:
            raise SourceError(f"no such file or folder: {path}")
    return out


def read_source(item: Path | FrameSource) -> RawFile:
    """Open one source lazily. Never raises for bad content (see the module docstring)."""
    if isinstance(item, tuple):
        name, frame = item
        lf = frame.lazy() if isinstance(frame, pl.DataFrame) else frame
        lf = lf.with_row_index(ROW, offset=1).with_columns(pl.col(ROW).cast(pl.Int64))
        return RawFile(source=name, format="frame", frame=lf, columns=lf.collect_schema().names()[1:])
    path = item
    fmt = detect_format(path)
    source = str(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        return RawFile(source=source, format=fmt, error=f"cannot open file: {exc}")
    if size == 0:
        return RawFile(source=source, format=fmt, empty=True)
    if fmt == "parquet":
        return _read_parquet(path)
    if fmt in ("csv", "tsv"):
        return _read_csv(path, delimiter="\t" if fmt == "tsv" else ",")
    return _read_ndjson(path)


# ---------------------------------------------------------------------------- parquet
def _read_parquet(path: Path) -> RawFile:
    try:
        lf = pl.scan_parquet(path)
        names = lf.collect_schema().names()
    except Exception as exc:  # truncated file, bad footer, not parquet at all
        return RawFile(source=str(path), format="parquet", error=f"unreadable parquet file: {_short(exc)}")
    lf = lf.with_row_index(ROW, offset=1).with_columns(pl.col(ROW).cast(pl.Int64))
    return RawFile(source=str(path), format="parquet", frame=lf, columns=names)


# ---------------------------------------------------------------------------- CSV
def _read_csv(path: Path, delimiter: str) -> RawFile:
    """Read a CSV file with every column as a string.

    pyarrow's reader (single-threaded, so that it reports line numbers) hands every line
    with the wrong number of fields, or an unterminated quote, to a handler instead of
    failing the file; those lines become ``malformed_line`` quarantine rows.  Values that
    span several lines inside quotes are not supported (use NDJSON or Parquet for them).
    """
    import pyarrow as pa
    import pyarrow.csv as pacsv

    fmt = "tsv" if delimiter == "\t" else "csv"
    try:
        # utf-8-sig: a byte-order mark (spreadsheet programs' "CSV UTF-8") is not part of the first name
        with open(path, encoding="utf-8-sig", newline="") as fh:
            header_line = fh.readline()
    except (OSError, UnicodeDecodeError) as exc:
        return RawFile(source=str(path), format=fmt, error=f"unreadable CSV file: {_short(exc)}")
    if not header_line.strip():
        return RawFile(source=str(path), format=fmt, empty=True)
    names = next(csv.reader([header_line.rstrip("\r\n")], delimiter=delimiter))
    names = [n.strip() for n in names]  # "timestamp, user_id" names user_id, not " user_id"
    if len(set(names)) != len(names) or any(not n for n in names):
        return RawFile(source=str(path), format=fmt, error=f"bad CSV header (empty or repeated column names): {names}")

    bad: list[tuple[int, str, int]] = []  # (line, text, actual fields)
    blank: list[int] = []

    def on_invalid(row) -> str:
        text = row.text or ""
        if not text.strip():
            blank.append(row.number)
        else:
            bad.append((row.number, text, row.actual_columns))
        return "skip"

    try:
        table = pacsv.read_csv(
            path,
            # our cleaned header names; the file's own header line is skipped (line numbers stay physical)
            read_options=pacsv.ReadOptions(use_threads=False, block_size=1 << 24, column_names=names, skip_rows=1),
            parse_options=pacsv.ParseOptions(
                delimiter=delimiter, invalid_row_handler=on_invalid, ignore_empty_lines=False
            ),
            convert_options=pacsv.ConvertOptions(
                column_types={n: pa.string() for n in names},
                strings_can_be_null=True,
                null_values=[""],
                quoted_strings_can_be_null=True,
            ),
        )
    except Exception as exc:  # invalid UTF-8 and other unrecoverable errors
        return RawFile(source=str(path), format=fmt, error=f"unreadable CSV file: {_short(exc)}")

    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    # Line numbers of the good rows: every line after the header that no skipped row used.
    used: list[int] = list(blank)
    for line, text, _ in bad:
        used.extend(range(line, line + text.count("\n") + 1))
    n = frame.height
    candidates = np.arange(2, 2 + n + len(used), dtype=np.int64)
    lines = candidates[~np.isin(candidates, np.asarray(used, dtype=np.int64))][:n]
    frame = frame.with_columns(pl.Series(ROW, lines, dtype=pl.Int64)).select(ROW, *names)
    empty_lines = blank_lines(path)
    if empty_lines.size:  # pyarrow reads an empty line as a record of nulls: it is no record
        frame = frame.filter(~pl.col(ROW).is_in(empty_lines.tolist()))
    malformed = None
    if bad:
        malformed = pl.DataFrame(
            {
                ROW: [b[0] for b in bad],
                "detail": [
                    f"malformed line: expected {len(names)} fields, found {b[2]}"
                    if '"' not in b[1] or b[1].count('"') % 2 == 0
                    else f"malformed line: unbalanced quote (expected {len(names)} fields, found {b[2]})"
                    for b in bad
                ],
                "raw": [b[1][:1000] for b in bad],
            },
            schema={ROW: pl.Int64, "detail": pl.String, "raw": pl.String},
        )
    if frame.height == 0 and malformed is None:
        return RawFile(source=str(path), format=fmt, empty=True)
    return RawFile(source=str(path), format=fmt, frame=frame.lazy(), malformed=malformed, columns=names)


_WHITESPACE = np.frombuffer(b" \t\r\x0b\x0c", dtype=np.uint8)


def blank_lines(path: Path) -> np.ndarray:
    """1-based numbers of the lines of ``path`` that are empty or hold only white space
    (``\\r`` of CRLF line ends included). Vectorised over the file's bytes; only lines that
    start with white space are looked at one by one."""
    data = np.memmap(path, dtype=np.uint8, mode="r") if path.stat().st_size else np.zeros(0, np.uint8)
    if data.size == 0:
        return np.zeros(0, np.int64)
    newlines = np.flatnonzero(data == 10)
    starts = np.concatenate([[0], newlines + 1])
    ends = np.concatenate([newlines, [data.size]])
    if starts[-1] == data.size:  # the file ends with a newline: no line after it
        starts, ends = starts[:-1], ends[:-1]
    lengths = ends - starts
    first = data[np.minimum(starts, data.size - 1)]
    candidates = np.flatnonzero((lengths == 0) | np.isin(first, _WHITESPACE))
    out = [i for i in candidates.tolist() if not bytes(data[starts[i] : ends[i]]).strip()]
    return np.asarray(out, dtype=np.int64) + 1


# ---------------------------------------------------------------------------- NDJSON
def _read_ndjson(path: Path) -> RawFile:
    """Read NDJSON with every field as a string (nested values as JSON text).

    The fast path is polars' reader; a file it rejects (a broken line, mixed nested
    types) is read again line by line so that only the bad lines are quarantined.
    """
    try:
        names = pl.scan_ndjson(path, infer_schema_length=None).collect_schema().names()
        frame = pl.read_ndjson(path, schema={n: pl.String for n in names})
        frame = frame.with_row_index(ROW, offset=1).with_columns(pl.col(ROW).cast(pl.Int64))
        clean = _clean_names(names)
        if clean is None:
            return RawFile(source=str(path), format="ndjson", error=f"keys that differ only by white space: {names}")
        return RawFile(source=str(path), format="ndjson", frame=frame.rename(clean).lazy(), columns=list(clean.values()))
    except Exception:
        pass
    try:
        data = path.read_bytes()
    except OSError as exc:
        return RawFile(source=str(path), format="ndjson", error=f"cannot open file: {exc}")
    rows: list[dict[str, str | None]] = []
    row_numbers: list[int] = []
    bad: list[tuple[int, str, str]] = []
    names_seen: dict[str, None] = {}
    for number, raw in enumerate(data.split(b"\n"), start=1):
        line = raw.strip()
        if number == 1 and line.startswith(b"\xef\xbb\xbf"):
            line = line[3:]  # a byte-order mark
        if not line:
            continue
        try:
            obj = json.loads(line)
        except (ValueError, UnicodeDecodeError) as exc:
            bad.append((number, f"malformed line: invalid JSON ({exc})", raw.decode("utf-8", "replace")[:1000]))
            continue
        if not isinstance(obj, dict):
            bad.append((number, f"malformed line: expected a JSON object, found {type(obj).__name__}", raw.decode("utf-8", "replace")[:1000]))
            continue
        rows.append({k: _json_scalar(v) for k, v in obj.items()})
        row_numbers.append(number)
        for k in obj:
            names_seen.setdefault(k, None)
    names = list(names_seen)
    frame = pl.DataFrame(rows, schema={n: pl.String for n in names}) if rows else pl.DataFrame(schema={n: pl.String for n in names})
    frame = frame.with_columns(pl.Series(ROW, row_numbers, dtype=pl.Int64)).select(ROW, *names)
    clean = _clean_names(names)
    if clean is None:
        return RawFile(source=str(path), format="ndjson", error=f"keys that differ only by white space: {names}")
    frame, names = frame.rename(clean), list(clean.values())
    malformed = None
    if bad:
        malformed = pl.DataFrame(
            {ROW: [b[0] for b in bad], "detail": [b[1] for b in bad], "raw": [b[2] for b in bad]},
            schema={ROW: pl.Int64, "detail": pl.String, "raw": pl.String},
        )
    if not rows and not bad:
        return RawFile(source=str(path), format="ndjson", empty=True)
    return RawFile(source=str(path), format="ndjson", frame=frame.lazy(), malformed=malformed, columns=names)


def _clean_names(names: list[str]) -> dict[str, str] | None:
    """``{name: name without surrounding white space or a byte-order mark}``, or None when two
    names become one."""
    clean = {n: n.lstrip("\ufeff").strip() for n in names}
    return clean if len(set(clean.values())) == len(clean) else None


def _json_scalar(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return repr(value) if isinstance(value, float) else str(value)
    return json.dumps(value, separators=(",", ":"))


def _short(exc: BaseException, limit: int = 300) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def read_text_table(path: Path, *, separator: str, encoding: str, names: Sequence[str]) -> pl.DataFrame:
    """Read a small headerless delimited text file with a given encoding, all columns as strings."""
    text = path.read_bytes().decode(encoding)
    return pl.read_csv(
        io.StringIO(text),
        separator=separator,
        has_header=False,
        schema={n: pl.String for n in names},
        quote_char=None,
    )
