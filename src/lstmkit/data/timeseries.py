"""Loading and validating time series for forecasting.

One entry point, :func:`load_series`, turns a CSV file, a Parquet file or a pandas
DataFrame into a :class:`ForecastData`: one :class:`TimeSeries` per series on a
regular time grid with no missing values, ready for windowing.

Layouts
    long  one row per (series, time): an optional series-id column, a time column,
          the target column and covariate columns.
    wide  one row per time and one column per series (covariates are not supported
          in this layout, because a covariate column could not say which series it
          belongs to; reshape to long for that).

Time
    ``time`` names the time column, parsed with :func:`pandas.to_datetime` (format
    inferred, or ``time_format``). ``time`` may instead list calendar-part columns,
    e.g. ``["year", "quarter"]`` or ``["year", "month"]`` (parts: year, quarter,
    month, day); quarters map to the first day of the quarter. Left as None, the
    time comes from a DatetimeIndex of the DataFrame, or else the first column.
    Anything else (fiscal calendars, epoch seconds) is best done by the caller:
    pass a DataFrame with a datetime column or index.

Policy for gaps (documented because it decides what the model sees)
    1. ``resample`` (optional) aggregates to another frequency first, with
       ``aggregation`` (mean by default) over the values present in each period;
       a period with no value at all is a missing value.
    2. The frequency is inferred (:func:`pandas.infer_freq`, or from the most common
       spacing when timestamps are missing) unless ``freq`` is given, and every
       series is reindexed to that grid: absent timestamps become missing values.
    3. Missing target values before the first or after the last observed one are
       not gaps: they are trimmed (and counted), except that rows after the last
       observed target keep their future-known covariates as the known future.
    4. Interior missing values (target and covariates) follow ``missing``:
       ``"interpolate"`` fills them linearly in time and counts them per series and
       column; ``"refuse"`` raises an error naming the first few timestamps and rows.
       Covariate values missing at the edges of the target's span are filled with
       the nearest value under ``"interpolate"``.
"""

from __future__ import annotations

import os
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from pandas.tseries.frequencies import to_offset

from lstmkit.data.calendar import calendar_feature_names, resolve_calendar_features
from lstmkit.errors import LstmkitError

MissingPolicy = Literal["interpolate", "refuse"]
MISSING_POLICIES = ("interpolate", "refuse")
SUPPORTED_SUFFIXES = (".csv", ".tsv", ".parquet", ".pq")
TIME_PARTS = ("year", "quarter", "month", "day")
_SHOW = 5  # how many offending values an error message lists
_ROW = "__row__"  # column carrying each row's position in the source, for messages
_SERIES = "__series__"
_TIME = "__time__"
_TARGET = "__target__"
AGGREGATIONS = ("mean", "sum", "median", "first", "last", "min", "max")


@dataclass(frozen=True)
class TimeSeries:
    """One validated series on a regular grid, free of missing values.

    ``future_time``/``future_ahead`` hold the future-known covariates given for
    timestamps after the last observed target (the forecast horizon), if any.
    """

    name: str
    series_id: int
    time: pd.DatetimeIndex  # (T,)
    target: np.ndarray  # (T,) float64
    past_covariates: np.ndarray  # (T, Fp) float64
    future_covariates: np.ndarray  # (T, Ff) float64
    future_time: pd.DatetimeIndex  # (K,) timestamps after time[-1]
    future_ahead: np.ndarray  # (K, Ff) float64, may hold NaN where not given
    filled: dict[str, int] = field(default_factory=dict)  # column -> values interpolated
    inserted: int = 0  # timestamps absent from the data, added by reindexing
    trimmed: int = 0  # leading/trailing rows without a target, dropped

    def __len__(self) -> int:
        return len(self.target)


@dataclass(frozen=True)
class ForecastData:
    """Validated series that share one frequency and one set of columns."""

    series: tuple[TimeSeries, ...]
    freq: str  # pandas alias, e.g. "MS", "W-SAT", "QS-OCT"
    target: str
    past_covariates: tuple[str, ...] = ()
    future_covariates: tuple[str, ...] = ()
    calendar: tuple[str, ...] = ()  # calendar features, each giving a sin and cos column
    missing: str = "interpolate"

    @property
    def series_names(self) -> list[str]:
        """Series names in integer-id order (id i is ``series_names[i]``)."""
        return [s.name for s in self.series]

    @property
    def feature_names(self) -> list[str]:
        """Names of the per-step input features, in the order windows lay them out."""
        return (
            [self.target, *self.past_covariates, *self.future_covariates]
            + calendar_feature_names(self.calendar)
        )

    @property
    def future_feature_names(self) -> list[str]:
        """Names of the features known for the horizon steps."""
        return [*self.future_covariates, *calendar_feature_names(self.calendar)]

    def summary(self) -> str:
        """Human-readable lines: lengths, frequency and what was filled or trimmed."""
        lines = [f"{len(self.series)} series, frequency {self.freq}, missing={self.missing}"]
        for s in self.series:
            notes = [f"{len(s)} points {format_time(s.time[0])}..{format_time(s.time[-1])}"]
            if s.filled:
                notes.append(
                    "filled " + ", ".join(f"{n} in {c}" for c, n in s.filled.items())
                )
            if s.inserted:
                notes.append(f"{s.inserted} absent timestamps inserted")
            if s.trimmed:
                notes.append(f"{s.trimmed} rows without target trimmed at the ends")
            if len(s.future_time):
                notes.append(f"{len(s.future_time)} future rows with known covariates")
            lines.append(f"  {s.name}: " + "; ".join(notes))
        return "\n".join(lines)


def format_time(stamp: pd.Timestamp) -> str:
    """A timestamp as people write it: the date alone when the time is midnight."""
    stamp = pd.Timestamp(stamp)
    return str(stamp.date()) if stamp == stamp.normalize() else str(stamp)


class _Source:
    """Where the data came from, so messages can point at file lines or frame rows."""

    def __init__(self, label: str, is_text_file: bool) -> None:
        self.label = label
        self.is_text_file = is_text_file

    def where(self, position: int) -> str:
        return self.where_all([position])

    def where_all(self, positions: Sequence[int]) -> str:
        """"lines 3, 4 of data.csv" for a text file, "rows 1, 2 of the DataFrame" otherwise."""
        # A text file's line = data position + 1 for the header + 1 for counting from 1.
        unit, offset = ("line", 2) if self.is_text_file else ("row", 0)
        plural = "s" if len(positions) > 1 else ""
        numbers = ", ".join(str(int(p) + offset) for p in positions)
        return f"{unit}{plural} {numbers} of {self.label}"


def read_table(source: str | os.PathLike | pd.DataFrame) -> pd.DataFrame:
    """Read a CSV/TSV/Parquet file (or copy a DataFrame), refusing missing or empty input."""
    frame, _ = _read(source)
    return frame


def _read(source: str | os.PathLike | pd.DataFrame) -> tuple[pd.DataFrame, _Source]:
    if isinstance(source, pd.DataFrame):
        if source.empty:
            raise LstmkitError("the DataFrame has no rows; pass a frame with data.")
        frame = source.copy()
        if isinstance(frame.index, pd.DatetimeIndex):
            # Keep a datetime index as a column so the same code path parses it.
            frame = frame.rename_axis(frame.index.name or _TIME).reset_index()
        return frame, _Source("the DataFrame", is_text_file=False)
    if not isinstance(source, (str, os.PathLike)):
        raise LstmkitError(
            f"cannot load data from a {type(source).__name__}; pass a file path or a "
            "pandas DataFrame."
        )
    path = Path(source)
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise LstmkitError(
            f"unsupported file type '{suffix or path.name}' for {path}; "
            f"use one of {', '.join(SUPPORTED_SUFFIXES)}, or pass a pandas DataFrame."
        )
    if not path.is_file():
        raise LstmkitError(f"file not found: {path}; check the path (cwd is {Path.cwd()}).")
    if path.stat().st_size == 0:
        raise LstmkitError(f"{path} is empty (0 bytes); pass a file with a header and data.")
    try:
        if suffix in (".parquet", ".pq"):
            frame = pd.read_parquet(path)
        else:
            frame = pd.read_csv(path, sep="\t" if suffix == ".tsv" else ",")
    except pd.errors.EmptyDataError as exc:
        raise LstmkitError(
            f"{path} has no data ({exc}); pass a file with a header and rows."
        ) from None
    except (OSError, ValueError) as exc:
        raise LstmkitError(f"could not read {path}: {exc}. Check that it is a valid "
                           f"{suffix[1:].upper()} file.") from exc
    if frame.empty:
        raise LstmkitError(f"{path} has a header but no data rows; add data rows.")
    if isinstance(frame.index, pd.DatetimeIndex):  # Parquet written from an indexed frame
        frame = frame.rename_axis(frame.index.name or _TIME).reset_index()
    return frame, _Source(path.name, is_text_file=suffix != ".parquet" and suffix != ".pq")


def _require_columns(frame: pd.DataFrame, names: Sequence[str], label: str, hint: str) -> None:
    available = [str(c) for c in frame.columns if c != _ROW]
    for name in names:
        if name not in frame.columns:
            raise LstmkitError(
                f"column '{name}' not found in {label}; available columns: "
                f"{', '.join(available)}. {hint}"
            )


def _parse_time(
    frame: pd.DataFrame, time: str | Sequence[str], time_format: str | None, src: _Source
) -> pd.Series:
    """Return the time of each row as datetime64, or raise naming a bad value."""
    if isinstance(time, str):
        _require_columns(frame, [time], src.label, "Pass time= with the time column.")
        raw = frame[time]
        if isinstance(raw.dtype, pd.PeriodDtype):
            return raw.dt.to_timestamp()
        if pd.api.types.is_datetime64_any_dtype(raw):
            parsed = raw
        else:
            text = raw
            if pd.api.types.is_numeric_dtype(raw):
                # Integer dates such as 19580329 must be parsed as text, not epochs.
                whole = raw.dropna()
                if len(whole) and (whole == whole.round()).all():
                    text = raw.astype("Int64").astype("string")
                else:
                    text = raw.astype("string")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # format-inference chatter
                parsed = pd.to_datetime(text, format=time_format, errors="coerce")
        bad = parsed.isna()
        if bad.any():
            position = int(np.flatnonzero(bad.to_numpy())[0])
            value = raw.iloc[position]
            what = "an empty time value" if pd.isna(value) else f"time value {value!r}"
            raise LstmkitError(
                f"could not parse {what} in column '{time}' at {src.where(position)}; "
                "fix the value, or pass time_format (e.g. '%Y-%m-%d') if the format "
                "is unusual."
            )
        return parsed
    return _time_from_parts(frame, list(time), src)


def _time_from_parts(frame: pd.DataFrame, columns: list[str], src: _Source) -> pd.Series:
    """Build timestamps from calendar-part columns such as ``year`` and ``quarter``."""
    hint = "Pass time= as one column, or as parts named year, quarter, month, day."
    _require_columns(frame, columns, src.label, hint)
    parts: dict[str, pd.Series] = {}
    for column in columns:
        part = column.lower()
        if part not in TIME_PARTS:
            raise LstmkitError(
                f"time part column '{column}' is not one of {', '.join(TIME_PARTS)}. "
                f"{hint} Or build a datetime column yourself and pass a DataFrame."
            )
        values = pd.to_numeric(frame[column], errors="coerce")
        bad = values.isna() | (values != values.round())
        if bad.any():
            position = int(np.flatnonzero(bad.to_numpy())[0])
            raise LstmkitError(
                f"time part '{column}' has a non-integer value "
                f"{frame[column].iloc[position]!r} at {src.where(position)}; fix it."
            )
        parts[part] = values.astype("int64")
    if "year" not in parts:
        raise LstmkitError(f"time parts {columns} need a 'year' column. {hint}")
    if "quarter" in parts:
        if "month" in parts:
            raise LstmkitError("time parts: give either quarter or month, not both.")
        quarter = parts.pop("quarter")
        bad = ~quarter.between(1, 4)
        if bad.any():
            position = int(np.flatnonzero(bad.to_numpy())[0])
            raise LstmkitError(
                f"quarter must be 1..4; got {quarter.iloc[position]} at {src.where(position)}."
            )
        parts["month"] = (quarter - 1) * 3 + 1  # a quarter is labelled by its first month
    ymd = pd.DataFrame({
        "year": parts["year"], "month": parts.get("month", 1), "day": parts.get("day", 1)
    })
    parsed = pd.to_datetime(ymd, errors="coerce")
    bad = parsed.isna()
    if bad.any():
        position = int(np.flatnonzero(bad.to_numpy())[0])
        raise LstmkitError(
            f"time parts {dict(ymd.iloc[position])} at {src.where(position)} are not a "
            "valid date; fix them."
        )
    return parsed


def _to_numeric(frame: pd.DataFrame, column: str, src: _Source, role: str) -> pd.Series:
    """Numeric values of a column; empty cells become NaN, anything else non-numeric raises."""
    raw = frame[column]
    if pd.api.types.is_bool_dtype(raw):
        return raw.astype("float64")
    values = pd.to_numeric(raw, errors="coerce")
    bad = values.isna() & raw.notna()
    if not pd.api.types.is_numeric_dtype(raw):
        # Whitespace-only cells are empty, not bad values.
        bad &= raw.astype("string").str.strip().fillna("") != ""
    if bad.any():
        position = int(np.flatnonzero(bad.to_numpy())[0])
        count = int(bad.sum())
        raise LstmkitError(
            f"{role} column '{column}' must be numeric, but has {count} non-numeric "
            f"value(s), first {raw.iloc[position]!r} at {src.where(position)}; fix or "
            "empty those cells (empty cells are treated as missing values)."
        )
    return values.astype("float64")


def _infer_alias(times: pd.DatetimeIndex) -> str | None:
    if len(times) < 3:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pandas 3 warns about the return type changing
        try:
            inferred = pd.infer_freq(times)
        except (TypeError, ValueError):
            return None
    return None if inferred is None else to_offset(inferred).freqstr


def _on_grid(times: pd.DatetimeIndex, freq: str) -> bool:
    grid = pd.date_range(times[0], times[-1], freq=freq)
    return len(grid) > 0 and grid[0] == times[0] and bool(times.isin(grid).all())


def infer_frequency(times: pd.DatetimeIndex) -> str | None:
    """The pandas frequency alias of sorted, unique timestamps, or None if there is none.

    Tries :func:`pandas.infer_freq` on the whole index; when timestamps are missing
    (irregular spacing) it takes the most common frequency of consecutive triples that
    puts every timestamp on its grid, so a monthly series with a missing month is
    still monthly.
    """
    alias = _infer_alias(times)
    if alias is not None or len(times) < 3:
        return alias
    for candidate in _spacing_votes(times):
        if _on_grid(times, candidate):
            return candidate
    return None


def _spacing_votes(times: pd.DatetimeIndex) -> list[str]:
    """Frequencies of consecutive timestamp triples, most common first."""
    if len(times) < 3:
        return []
    # A sample of triples is enough to find the dominant spacing and stays fast.
    starts = np.unique(np.linspace(0, len(times) - 3, num=min(len(times) - 2, 200)).astype(int))
    votes = Counter(_infer_alias(times[i : i + 3]) for i in starts)
    votes.pop(None, None)
    return [candidate for candidate, _ in votes.most_common()]


def _check_freq(freq: str, what: str) -> str:
    try:
        return to_offset(freq).freqstr
    except (ValueError, TypeError):
        raise LstmkitError(
            f"{what}={freq!r} is not a pandas frequency; use an alias such as 'D', "
            "'W-SUN', 'MS', 'ME', 'QS', 'h'."
        ) from None


def _fill_gaps(
    values: pd.Series, column: str, name: str, policy: str, rows: pd.Series, src: _Source,
    fill_edges: bool,
) -> tuple[pd.Series, int]:
    """Apply the missing-value policy to one column of one series."""
    missing = values.isna()
    if not missing.any():
        return values, 0
    if policy == "refuse":
        where = []
        for time, row in zip(values.index[missing][:_SHOW], rows[missing][:_SHOW], strict=True):
            place = "timestamp absent from the data" if pd.isna(row) else src.where(int(row))
            where.append(f"{format_time(time)} ({place})")
        count = int(missing.sum())
        raise LstmkitError(
            f"series '{name}' has {count} missing value(s) in column '{column}' and "
            f"missing='refuse': {'; '.join(where)}"
            + (f" (first {_SHOW} of {count})" if count > _SHOW else "")
            + ". Fill them in the data, or use missing='interpolate' to fill them "
            "linearly in time."
        )
    # Linear in time, so unequal month lengths weigh the neighbours correctly.
    filled = values.interpolate(method="time", limit_area="inside")
    if fill_edges:
        filled = filled.ffill().bfill()
    return filled, int(missing.sum() - filled.isna().sum())


def _long_table(
    frame: pd.DataFrame,
    src: _Source,
    layout: str,
    target: str | Sequence[str] | None,
    time: str | Sequence[str],
    time_format: str | None,
    series_id: str | None,
    past_covariates: list[str],
    future_covariates: list[str],
) -> tuple[pd.DataFrame, str]:
    """One row per (series, time) with parsed time and numeric values; and the target name.

    Columns: _SERIES, _TIME, _TARGET, _ROW and one per covariate.
    """
    time_columns = [time] if isinstance(time, str) else list(time)
    if layout == "wide":
        if series_id is not None or past_covariates or future_covariates:
            raise LstmkitError(
                "the wide layout (one column per series) takes no series_id or covariates; "
                "reshape to long (series-id, time, target, covariate columns) to use them."
            )
        if target is None:
            series_columns = [c for c in frame.columns if c not in (*time_columns, _ROW)]
        else:
            series_columns = [target] if isinstance(target, str) else list(target)
        _require_columns(frame, series_columns, src.label, "Pass target= with series columns.")
        if not series_columns:
            raise LstmkitError(f"{src.label} has no series columns besides the time column.")
        times = _parse_time(frame, time, time_format, src)
        pieces = [
            pd.DataFrame({
                _SERIES: str(c),
                _TIME: times,
                _TARGET: _to_numeric(frame, c, src, "series"),
                _ROW: frame[_ROW],
            })
            for c in series_columns
        ]
        return pd.concat(pieces, ignore_index=True), "value"

    if target is None:
        others = [c for c in frame.columns if c not in (*time_columns, series_id, _ROW)]
        if len(others) != 1:
            raise LstmkitError(
                f"which column is the target? {src.label} has columns "
                f"{', '.join(map(str, others))}; pass target= with one of them."
            )
        target = str(others[0])
    if not isinstance(target, str):
        raise LstmkitError(
            "the long layout takes one target column; for one column per series "
            "pass layout='wide'."
        )
    _require_columns(frame, [target], src.label, "Pass target= with one of them.")
    _require_columns(frame, past_covariates + future_covariates, src.label,
                     "Pass the right covariate column names.")
    if series_id is not None:
        _require_columns(frame, [series_id], src.label, "Pass series_id= with one of them.")
    roles = [target, *past_covariates, *future_covariates]
    repeated = sorted({c for c in roles if roles.count(c) > 1})
    if repeated:
        raise LstmkitError(
            f"column(s) {repeated} are given more than one role (target, past or future "
            "covariate); give each column one role."
        )
    long = pd.DataFrame({
        _SERIES: frame[series_id].astype("string").fillna("<empty>") if series_id else target,
        _TIME: _parse_time(frame, time, time_format, src),
        _TARGET: _to_numeric(frame, target, src, "target"),
        _ROW: frame[_ROW],
    })
    for c in past_covariates:
        long[c] = _to_numeric(frame, c, src, "past covariate")
    for c in future_covariates:
        long[c] = _to_numeric(frame, c, src, "future covariate")
    return long, target


def _check_duplicates(long: pd.DataFrame, src: _Source, time_hint: str) -> None:
    """Raise naming repeated timestamps per series (first few) and their rows."""
    duplicated = long.duplicated([_SERIES, _TIME], keep=False)
    if not duplicated.any():
        return
    messages = []
    for name, group in long[duplicated].groupby(_SERIES, sort=True):
        stamps = group.groupby(_TIME)[_ROW].apply(lambda rows: src.where_all(list(rows)))
        shown = "; ".join(f"{format_time(t)} at {w}" for t, w in list(stamps.items())[:_SHOW])
        messages.append(f"series '{name}': {len(stamps)} repeated timestamp(s): {shown}")
    raise LstmkitError(
        "duplicate timestamps: " + " | ".join(messages) + time_hint + ". Keep one row "
        "per series and time, or pass resample= to aggregate rows that share a period."
    )


def _resample(long: pd.DataFrame, rule: str, aggregation: str) -> pd.DataFrame:
    """Aggregate each series to the frequency ``rule`` over the values present."""
    value_columns = [c for c in long.columns if c not in (_SERIES, _TIME, _ROW)]
    pieces = []
    for name, group in long.groupby(_SERIES, sort=True):
        periods = group.set_index(_TIME).sort_index()[value_columns].resample(rule)
        aggregated = periods.agg(aggregation)
        # A period with no value is missing (pandas would sum it to zero).
        aggregated = aggregated.where(periods.count() > 0)
        aggregated[_SERIES] = name
        aggregated[_ROW] = np.nan  # a period no longer maps to one row of the source
        pieces.append(aggregated.reset_index())
    return pd.concat(pieces, ignore_index=True)


def _common_frequency(groups: dict[str, pd.DataFrame]) -> str:
    """The one frequency of all series, inferred from their timestamps."""
    inferred = {}
    for name, group in groups.items():
        observed = pd.DatetimeIndex(group.index)
        alias = infer_frequency(observed)
        if alias is None:
            # Take the dominant spacing anyway: the grid check then names the
            # timestamps that do not fit it, which says more than "no frequency".
            alias = next(iter(_spacing_votes(observed)), None)
        if alias is None:
            raise LstmkitError(
                f"could not infer the frequency of series '{name}' ({len(observed)} "
                f"timestamps from {format_time(observed[0])} to "
                f"{format_time(observed[-1])}); pass freq= (e.g. 'D', 'W-SUN', 'MS', "
                "'QS') or resample= to aggregate to a regular grid."
            )
        inferred[name] = alias
    distinct = sorted(set(inferred.values()))
    if len(distinct) > 1:
        raise LstmkitError(
            "series have different frequencies ("
            + ", ".join(f"{n}: {a}" for n, a in list(inferred.items())[:_SHOW])
            + "); one model needs one frequency: pass resample= to aggregate them."
        )
    return distinct[0]


def _regularise(
    name: str,
    series_index: int,
    group: pd.DataFrame,
    freq: str,
    target_name: str,
    past_covariates: list[str],
    future_covariates: list[str],
    missing: str,
    src: _Source,
) -> TimeSeries:
    """Put one series (indexed by time) on its grid and apply the gap policy."""
    index = pd.DatetimeIndex(group.index)
    grid = pd.date_range(index[0], index[-1], freq=freq)
    off_grid = index[~index.isin(grid)]
    if len(off_grid):
        rows = group.loc[off_grid[:_SHOW], _ROW]
        shown = ", ".join(
            format_time(t) + ("" if pd.isna(r) else f" ({src.where(int(r))})")
            for t, r in rows.items()
        )
        raise LstmkitError(
            f"series '{name}': {len(off_grid)} timestamp(s) are not on the {freq} grid "
            f"starting {format_time(index[0])}: {shown}. Pass resample='{freq}' to "
            "aggregate to that frequency, or freq= with the right one."
        )
    inserted = len(grid) - len(index)
    if inserted > len(index):
        # Filling more than half of a series invents it; the grid is surely wrong.
        raise LstmkitError(
            f"series '{name}' has {len(index)} timestamps but its {freq} grid from "
            f"{format_time(index[0])} to {format_time(index[-1])} has {len(grid)}: more "
            "than half would be invented. Pass freq= with the series' real frequency, "
            "or resample= to aggregate it to a coarser one."
        )
    regular = group.reindex(grid)

    observed = np.flatnonzero(regular[_TARGET].notna().to_numpy())
    if len(observed) == 0:
        raise LstmkitError(f"series '{name}' has no target values; remove it or fill in its data.")
    first, last = int(observed[0]), int(observed[-1])
    span = regular.iloc[first : last + 1]
    # Rows after the last target are the known future only when there are future covariates.
    ahead = regular.iloc[last + 1 :] if future_covariates else regular.iloc[:0]
    trimmed = first + (len(regular) - last - 1 - len(ahead))

    filled: dict[str, int] = {}
    columns: dict[str, np.ndarray] = {}
    for column in [_TARGET, *past_covariates, *future_covariates]:
        label = target_name if column == _TARGET else column
        values, count = _fill_gaps(
            span[column], label, name, missing, span[_ROW], src, fill_edges=column != _TARGET
        )
        if count:
            filled[label] = count
        columns[column] = values.to_numpy(dtype="float64")

    def stacked(names: list[str], rows: int) -> np.ndarray:
        return np.stack([columns[c] for c in names], axis=-1) if names else np.zeros((rows, 0))

    return TimeSeries(
        name=name,
        series_id=series_index,
        time=pd.DatetimeIndex(span.index, freq=freq),
        target=columns[_TARGET],
        past_covariates=stacked(past_covariates, len(span)),  # (T, Fp)
        future_covariates=stacked(future_covariates, len(span)),  # (T, Ff)
        future_time=pd.DatetimeIndex(ahead.index, freq=freq),
        future_ahead=ahead[future_covariates].to_numpy(dtype="float64")
        .reshape(len(ahead), len(future_covariates)),  # (K, Ff)
        filled=filled,
        inserted=inserted,
        trimmed=trimmed,
    )


def load_series(
    source: str | os.PathLike | pd.DataFrame,
    target: str | Sequence[str] | None = None,
    *,
    time: str | Sequence[str] | None = None,
    series_id: str | None = None,
    layout: Literal["long", "wide"] = "long",
    past_covariates: Sequence[str] = (),
    future_covariates: Sequence[str] = (),
    calendar: bool | Sequence[str] = False,
    missing: MissingPolicy = "interpolate",
    freq: str | None = None,
    resample: str | None = None,
    aggregation: str = "mean",
    time_format: str | None = None,
) -> ForecastData:
    """Load, validate and regularise series for forecasting (policy in the module doc).

    Args:
        source: path to a .csv/.tsv/.parquet file, or a DataFrame.
        target: long layout: the target column (may be omitted when the table has only
            one column besides time and id). Wide layout: the series columns (default:
            every column except the time column).
        time: time column, calendar-part columns (e.g. ``["year", "quarter"]``), or
            None for the DataFrame's DatetimeIndex or else the first column.
        series_id: long layout: column whose values name the series; each distinct
            value (sorted) gets an integer id 0..S-1 for the static embedding.
        layout: "long" or "wide" (one column per series).
        past_covariates: columns observed only up to the present.
        future_covariates: columns known ahead; give their values for the forecast
            horizon as rows after the last target value with the target left empty.
        calendar: True for the frequency's default calendar features, a list of names
            (see :mod:`lstmkit.data.calendar`), or False.
        missing: "interpolate" or "refuse" for interior gaps.
        freq: frequency alias to use instead of inferring it.
        resample: aggregate to this frequency first (e.g. "MS" for monthly means).
        aggregation: how ``resample`` combines values: "mean", "sum", "median",
            "first", "last", "min" or "max".
        time_format: strftime format of the time column when inference fails.

    Returns:
        ForecastData whose series are sorted by name, gap-free and on one grid.
    """
    if missing not in MISSING_POLICIES:
        raise LstmkitError(f"missing={missing!r} is not a policy; use 'interpolate' or 'refuse'.")
    if layout not in ("long", "wide"):
        raise LstmkitError(f"layout={layout!r} is not a layout; use 'long' or 'wide'.")
    if aggregation not in AGGREGATIONS:
        raise LstmkitError(f"aggregation={aggregation!r}; use one of {', '.join(AGGREGATIONS)}.")
    rule = None if resample is None else _check_freq(resample, "resample")
    if freq is not None:
        freq = _check_freq(freq, "freq")
    frame, src = _read(source)
    frame[_ROW] = np.arange(len(frame), dtype="float64")  # float: NaN marks inserted rows
    time_hint = ""
    if time is None:
        time = _TIME if _TIME in frame.columns else str(frame.columns[0])
        if time != _TIME:
            time_hint = (
                f" (the time was taken from the first column '{time}'; pass time= if that "
                "is wrong, e.g. time=['year', 'quarter'])"
            )
    past_covariates, future_covariates = list(past_covariates), list(future_covariates)
    long, target_name = _long_table(
        frame, src, layout, target, time, time_format, series_id,
        past_covariates, future_covariates,
    )
    if rule is None:
        # Checked on the raw rows only: resampling is asked to aggregate them.
        _check_duplicates(long, src, time_hint)
    else:
        long = _resample(long, rule, aggregation)
        freq = rule
    groups = {
        str(name): group.sort_values(_TIME).set_index(_TIME)
        for name, group in sorted(long.groupby(_SERIES), key=lambda item: str(item[0]))
    }
    freq = freq or _common_frequency(groups)
    series = tuple(
        _regularise(
            name, series_index, group, freq, target_name, past_covariates,
            future_covariates, missing, src,
        )
        for series_index, (name, group) in enumerate(groups.items())
    )
    return ForecastData(
        series=series,
        freq=freq,
        target=target_name,
        past_covariates=tuple(past_covariates),
        future_covariates=tuple(future_covariates),
        calendar=tuple(resolve_calendar_features(calendar, freq)),
        missing=missing,
    )


def future_times(series: TimeSeries, freq: str, steps: int) -> pd.DatetimeIndex:
    """The ``steps`` timestamps that follow the end of ``series`` on its grid."""
    return pd.date_range(series.time[-1], periods=steps + 1, freq=freq)[1:]
