"""Vectorised validation: raw columns in, typed columns plus a rejection reason out.

Each table (the event log, or one node type's side table) is described by a list of
:class:`Column` specs. :func:`normalize` turns a raw lazy frame into one with

* the typed columns, named as in the spec;
* ``__code``: null for a valid row, otherwise the first problem found (checks run in the
  order of :data:`REASONS`);
* the raw input columns under ``__raw__<name>``, so a rejected row can be kept
  verbatim in the quarantine.

For the rejected rows, :attr:`Normalized.describe` turns the code into ``__reason``,
``__field`` (the column concerned) and ``__detail`` (a message naming the offending
value); messages are built only for rejected rows. Everything is a polars expression;
no Python code runs per row.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from graphrec.store.schema import LogSchema

REASON, FIELD, DETAIL, CODE = "__reason", "__field", "__detail", "__code"
RAW_PREFIX = "__raw__"
TYPED_PREFIX = "__typed__"

#: Quarantine reasons, in the order they are checked (the first that applies is kept).
REASONS: dict[str, str] = {
    "unreadable_file": "the file could not be opened or parsed at all (one record per file, row is null)",
    "malformed_line": "a CSV line with the wrong number of fields or an unbalanced quote; an NDJSON line that is not a JSON object",
    "missing_column": "the file lacks a required column",
    "unexpected_column": "the file has a column the schema does not declare (schema.extra_columns = quarantine)",
    "missing_value": "a required field is null or empty",
    "bad_type": "the column's type cannot hold the field (e.g. a list where an id is expected)",
    "bad_timestamp": "the timestamp cannot be parsed, lies outside [min_timestamp, max_timestamp), or is an epoch "
    "number in the wrong unit (its magnitude is that of another unit for the years 1973-2286)",
    "bad_id": "an id cannot be read as the schema's id_type (e.g. 'abc' or 1.5 for integer ids)",
    "unknown_target_type": "target_type is not declared in the schema",
    "unknown_event_type": "event_type is not declared in the schema",
    "bad_value": "an optional field (value, weight, a context or attribute column) cannot be cast to its type, "
    "or a number is not finite (inf, NaN, an overflowing literal such as 1e400)",
}

_AWARE_FORMAT = "%Y-%m-%dT%H:%M:%S%.f%#z"
_NAIVE_FORMAT = "%Y-%m-%dT%H:%M:%S%.f"
_DATE_FORMAT = "%Y-%m-%d"
_US_PER_UNIT = {"s": 1_000_000, "ms": 1_000, "us": 1, "ns": 0.001}
#: Magnitudes of epoch numbers of the years 1973-2286 in each unit: seconds have 9-10 digits,
#: milliseconds 12-13, microseconds 15-16, nanoseconds 18-19. A number in another unit's band
#: is in the wrong unit (a seconds value read as ms would land in January 1970).
_EPOCH_BANDS = {"s": (1e8, 1e10), "ms": (1e11, 1e13), "us": (1e14, 1e16), "ns": (1e17, 1e19)}
_DIGITS = {"s": "9-10", "ms": "12-13", "us": "15-16", "ns": "18-19"}
TIME_DTYPE = pl.Datetime("us", "UTC")

#: Columns of the quarantine table: one row per rejected input row, with its reason.
QUARANTINE_SCHEMA: dict[str, pl.DataType] = {
    "version": pl.Int64(),
    "source": pl.String(),
    "table": pl.String(),
    "row": pl.Int64(),
    "reason": pl.String(),
    "field": pl.String(),
    "detail": pl.String(),
    "raw": pl.String(),
}


@dataclass(frozen=True)
class Column:
    """One column of a table spec.

    ``kind``: ``timestamp``, ``id``, ``enum`` (a string from ``choices``), ``float``,
    ``int``, ``bool`` or ``string``.
    """

    name: str
    kind: str
    required: bool = False
    choices: tuple[str, ...] = ()
    reason: str = "bad_value"  # reason used when a value fails to parse


def event_columns(schema: LogSchema) -> list[Column]:
    cols = [
        Column("timestamp", "timestamp", True, reason="bad_timestamp"),
        Column("user_id", "id", True, reason="bad_id"),
        Column("target_type", "enum", True, tuple(schema.target_types), reason="unknown_target_type"),
        Column("target_id", "id", True, reason="bad_id"),
        Column("event_type", "enum", True, tuple(schema.event_types), reason="unknown_event_type"),
        Column("value", "float"),
        Column("weight", "float"),
    ]
    cols += [Column(name, kind if kind != "string" else "string") for name, kind in schema.context.items()]
    return cols


def attribute_columns(schema: LogSchema, node_type: str) -> list[Column]:
    spec = schema.attributes[node_type]
    cols = [Column(spec.id_column, "id", True, reason="bad_id")]
    kind_of = {"numeric": "float", "categorical": "string", "text": "string"}
    cols += [Column(name, kind_of[kind]) for name, kind in spec.columns.items()]
    return cols


def output_dtype(col: Column, schema: LogSchema) -> pl.DataType:
    if col.kind == "timestamp":
        return TIME_DTYPE
    if col.kind == "id":
        return pl.Int64() if schema.id_type == "int" else pl.String()
    return {
        "enum": pl.String(),
        "float": pl.Float64(),
        "int": pl.Int64(),
        "bool": pl.Boolean(),
        "string": pl.String(),
    }[col.kind]


def _show(expr: pl.Expr) -> pl.Expr:
    """A short printable form of a raw value, for messages."""
    return pl.concat_str(pl.lit("'"), expr.cast(pl.String, strict=False).str.slice(0, 80), pl.lit("'"))


def _is_nested(dtype: pl.DataType) -> bool:
    return isinstance(dtype, pl.List | pl.Array | pl.Struct | pl.Object) or dtype == pl.Binary


def _int_from_float(x: pl.Expr) -> pl.Expr:
    return pl.when(x.is_finite() & (x == x.floor()) & (x.abs() < 2.0**63)).then(x.cast(pl.Int64, strict=False))


def _coerce(col: Column, dtype: pl.DataType, schema: LogSchema) -> tuple[pl.Expr, str | None]:
    """Return (typed expression, wrong-type message or None) for a present column."""
    raw = pl.col(col.name)
    if dtype == pl.String:
        # Numbers, ids, times and enum values (target and event types) ignore surrounding blanks
        # ("2024-06-01, u1, item" from a ", "-separated file); free text is kept verbatim.
        if col.kind != "string":
            raw = raw.str.strip_chars()
        raw = pl.when(raw.str.len_bytes() > 0).then(raw)
    kind = col.kind
    if kind == "id":
        kind = "int" if schema.id_type == "int" else "id_string"

    if kind == "timestamp":
        return _timestamp(raw, dtype, schema)
    if kind in ("int",):
        if dtype == pl.String:
            return raw.cast(pl.Int64, strict=False), None
        if dtype.is_integer():
            return raw.cast(pl.Int64, strict=False), None
        if dtype.is_float():
            return _int_from_float(raw), None
        return pl.lit(None, pl.Int64), f"column '{col.name}' has type {dtype}; expected integers"
    if kind == "id_string":
        if dtype == pl.String:
            return raw, None
        if dtype.is_integer():
            return raw.cast(pl.String), None
        if dtype.is_float():
            return _int_from_float(raw).cast(pl.String), None
        if isinstance(dtype, pl.Categorical | pl.Enum):
            return raw.cast(pl.String), None
        return pl.lit(None, pl.String), f"column '{col.name}' has type {dtype}; expected string or integer ids"
    if kind == "float":
        if dtype == pl.String or dtype.is_numeric():
            x = raw.cast(pl.Float64, strict=False)
            # inf, NaN and overflowing literals (1e400) are no values: an infinite edge weight
            # or rating poisons every model trained on the graph
            return pl.when(x.is_finite()).then(x), None
        return pl.lit(None, pl.Float64), f"column '{col.name}' has type {dtype}; expected numbers"
    if kind == "bool":
        if dtype == pl.Boolean:
            return raw, None
        if dtype == pl.String:
            low = raw.str.to_lowercase()
            return (
                pl.when(low.is_in(["true", "t", "yes", "y", "1"])).then(True)
                .when(low.is_in(["false", "f", "no", "n", "0"])).then(False)
            ), None
        if dtype.is_integer():
            return pl.when(raw == 1).then(True).when(raw == 0).then(False), None
        return pl.lit(None, pl.Boolean), f"column '{col.name}' has type {dtype}; expected booleans"
    # enum and string
    if _is_nested(dtype):
        return pl.lit(None, pl.String), f"column '{col.name}' has type {dtype}; expected text"
    return raw.cast(pl.String), None


def _timestamp(raw: pl.Expr, dtype: pl.DataType, schema: LogSchema) -> tuple[pl.Expr, str | None]:
    tz = schema.timezone
    lo_us = int(schema.min_timestamp.timestamp() * 1_000_000)
    hi_us = int(schema.max_timestamp.timestamp() * 1_000_000)
    factor = _US_PER_UNIT[schema.timestamp_unit]

    lo_unit, hi_unit = lo_us / factor, hi_us / factor

    def other_unit(x: pl.Expr) -> pl.Expr:
        """The epoch number has the magnitude of another unit (see _EPOCH_BANDS)."""
        a = x.cast(pl.Float64).abs()
        bands = [b for u, b in _EPOCH_BANDS.items() if u != schema.timestamp_unit]
        out = pl.lit(False)
        for lo, hi in bands:
            out = out | ((a >= lo) & (a < hi))
        return out

    def from_int(x: pl.Expr) -> pl.Expr:
        x = x.cast(pl.Int64, strict=False)
        us = x * int(factor) if factor >= 1 else x // 1000
        ok = (x.cast(pl.Float64) >= lo_unit) & (x.cast(pl.Float64) < hi_unit) & ~other_unit(x)
        return pl.when(ok).then(us).cast(pl.Datetime("us")).dt.replace_time_zone("UTC")

    def from_float(x: pl.Expr) -> pl.Expr:
        us = x.cast(pl.Float64) * factor
        ok = us.is_finite() & (us >= lo_us) & (us < hi_us) & ~other_unit(x)
        return pl.when(ok).then(us.round(0).cast(pl.Int64)).cast(pl.Datetime("us")).dt.replace_time_zone("UTC")

    def localize(x: pl.Expr) -> pl.Expr:
        if tz == "UTC":
            return x.dt.replace_time_zone("UTC")
        return x.dt.replace_time_zone(tz, ambiguous="earliest", non_existent="null").dt.convert_time_zone("UTC")

    if dtype == pl.String:
        text = raw.str.replace(" ", "T", literal=True, n=1)
        parsed = pl.coalesce(
            from_int(raw.cast(pl.Int64, strict=False)),
            from_float(raw.cast(pl.Float64, strict=False)),
            text.str.to_datetime(_AWARE_FORMAT, strict=False, time_unit="us", time_zone="UTC"),
            localize(text.str.to_datetime(_NAIVE_FORMAT, strict=False, time_unit="us")),
            localize(text.str.to_datetime(_DATE_FORMAT, strict=False, time_unit="us")),
        )
    elif dtype.is_integer():
        parsed = from_int(raw)
    elif dtype.is_float():
        parsed = from_float(raw)
    elif isinstance(dtype, pl.Datetime):
        x = raw.cast(pl.Datetime("us", dtype.time_zone))
        parsed = x.dt.convert_time_zone("UTC") if dtype.time_zone else localize(x)
    elif dtype == pl.Date:
        parsed = localize(raw.cast(pl.Datetime("us")))
    else:
        return pl.lit(None, TIME_DTYPE), f"column 'timestamp' has type {dtype}; expected a time"
    # The range [min_timestamp, max_timestamp) is checked by normalize() on the typed column.
    return parsed.cast(TIME_DTYPE), None


def normalize(
    lf: pl.LazyFrame,
    columns: list[Column],
    schema: LogSchema,
    *,
    present: list[str],
    extra_policy: str,
    passthrough: tuple[str, ...] = (),
) -> Normalized:
    """Validate and type ``lf`` (see the module docstring).

    ``present``: the file's columns; ``passthrough``: extra columns of ``lf`` to keep as they are.
    """
    in_schema = lf.collect_schema()
    declared = {c.name for c in columns}
    extra = [n for n in present if n not in declared]
    missing_required = [c.name for c in columns if c.required and c.name not in present]

    typed: list[pl.Expr] = []
    checks: list[tuple[pl.Expr, str, str, pl.Expr]] = []  # (condition, reason, field, detail)
    if missing_required:
        checks.append((
            pl.lit(True), "missing_column", missing_required[0],
            pl.lit(f"file lacks required column(s): {', '.join(missing_required)}"),
        ))
    if extra and extra_policy == "quarantine":
        checks.append((
            pl.lit(True), "unexpected_column", extra[0],
            pl.lit(
                f"file has column(s) not in the schema: {', '.join(extra)} "
                "(declare them, or set extra_columns: ignore)"
            ),
        ))

    missing_checks, type_checks, parse_checks = [], [], {}
    for col in columns:
        out = output_dtype(col, schema)
        if col.name not in present:
            typed.append(pl.lit(None, out).alias(TYPED_PREFIX + col.name))
            continue
        dtype = in_schema[col.name]
        parsed_expr, wrong_type = _coerce(col, dtype, schema)
        typed.append(parsed_expr.cast(out).alias(TYPED_PREFIX + col.name))
        parsed = pl.col(TYPED_PREFIX + col.name)
        src = pl.col(RAW_PREFIX + col.name)  # for messages, evaluated on rejected rows only
        if dtype == pl.String:
            stripped = pl.col(col.name) if col.kind == "string" else pl.col(col.name).str.strip_chars()
            present_value = stripped.str.len_bytes() > 0
        else:
            present_value = pl.col(col.name).is_not_null()
        if col.required:
            missing_checks.append((
                ~present_value.fill_null(False), "missing_value", col.name,
                pl.lit(f"field '{col.name}' is null or empty"),
            ))
        if wrong_type is not None:
            type_checks.append((present_value.fill_null(False), "bad_type", col.name, pl.lit(wrong_type)))
            continue
        failed = present_value.fill_null(False) & parsed.is_null()
        if col.kind == "timestamp":
            lo = pl.lit(schema.min_timestamp).cast(TIME_DTYPE)
            hi = pl.lit(schema.max_timestamp).cast(TIME_DTYPE)
            failed = present_value.fill_null(False) & ~((parsed >= lo) & (parsed < hi)).fill_null(False)
        if col.kind == "enum":
            failed = present_value.fill_null(False) & ~parsed.is_in(list(col.choices)).fill_null(False)
            detail = pl.concat_str(
                pl.lit(f"field '{col.name}': "), _show(src),
                pl.lit(f" is not one of: {', '.join(col.choices)}"),
            )
        elif col.kind == "timestamp":
            detail = pl.concat_str(
                pl.lit("field 'timestamp': cannot parse "), _show(src),
                pl.lit(
                    f" as a time in [{schema.min_timestamp:%Y-%m-%d}, {schema.max_timestamp:%Y-%m-%d})"
                    f" (epoch numbers are in '{schema.timestamp_unit}': {_DIGITS[schema.timestamp_unit]} digits"
                    " for the years 1973-2286)"
                ),
            )
        else:
            expected = {
                "id": f"{schema.id_type} id", "float": "a finite number", "int": "an integer",
                "bool": "a boolean", "string": "text",
            }[col.kind]
            detail = pl.concat_str(
                pl.lit(f"field '{col.name}': cannot parse "), _show(src), pl.lit(f" as {expected}")
            )
        parse_checks.setdefault(col.reason, []).append((failed, col.reason, col.name, detail))

    checks += missing_checks + type_checks
    for reason in REASONS:
        checks += parse_checks.get(reason, [])

    if checks:
        # One code per check: cheap to compute for every row. The message is built later,
        # from the code, for the rejected rows only.
        code_e = pl.when(checks[0][0]).then(pl.lit(0, pl.Int16))
        for k, (cond, _, _, _) in enumerate(checks[1:], start=1):
            code_e = code_e.when(cond).then(pl.lit(k, pl.Int16))
        code_e = code_e.otherwise(None)
        detail_e = pl.when(pl.col(CODE) == 0).then(checks[0][3])
        for k, (_, _, _, detail) in enumerate(checks[1:], start=1):
            detail_e = detail_e.when(pl.col(CODE) == k).then(detail)
        reasons = pl.Series([c[1] for c in checks], dtype=pl.String)
        fields = pl.Series([c[2] for c in checks], dtype=pl.String)
        describe = [
            pl.col(CODE).replace_strict(list(range(len(checks))), reasons, return_dtype=pl.String).alias(REASON),
            pl.col(CODE).replace_strict(list(range(len(checks))), fields, return_dtype=pl.String).alias(FIELD),
            detail_e.otherwise(None).cast(pl.String).alias(DETAIL),
        ]
    else:
        code_e = pl.lit(None, pl.Int16)
        describe = [pl.lit(None, pl.String).alias(n) for n in (REASON, FIELD, DETAIL)]

    from graphrec.store.sources import ROW

    typed += [pl.col(n).alias(RAW_PREFIX + n) for n in present]
    out_cols = [pl.col(TYPED_PREFIX + c.name).alias(c.name) for c in columns]
    raw_cols = [pl.col(RAW_PREFIX + n) for n in present]
    frame = lf.with_columns(typed).select(pl.col(ROW), *passthrough, *out_cols, code_e.alias(CODE), *raw_cols)
    return Normalized(frame, describe)


@dataclass
class Normalized:
    """A validated lazy frame and the expressions that explain its rejected rows.

    ``frame``: ``__row``, the typed columns, ``__code`` (null for a valid row) and the raw
    columns. ``describe``: expressions giving ``__reason``, ``__field`` and ``__detail``
    when evaluated on (rejected) rows of ``frame``.
    """

    frame: pl.LazyFrame
    describe: list[pl.Expr]


def raw_json(frame: pl.DataFrame, present: list[str]) -> pl.Series:
    """The raw input columns of ``frame`` as one JSON object per row (for the quarantine)."""
    if not present:
        return pl.Series("raw", [None] * frame.height, dtype=pl.String)
    exprs = []
    for n in present:
        c = pl.col(RAW_PREFIX + n)
        dtype = frame.schema[RAW_PREFIX + n]
        if isinstance(dtype, pl.Datetime | pl.Date | pl.Time | pl.Duration | pl.Decimal | pl.Categorical | pl.Enum):
            c = c.cast(pl.String)
        elif dtype == pl.Binary:
            c = c.bin.encode("hex")
        exprs.append(c.alias(n))
    return frame.select(pl.struct(exprs).struct.json_encode().alias("raw")).to_series()
