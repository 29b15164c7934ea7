"""Price series in: one or many assets' daily closes (and open, high, low, volume), checked.

Sources are CSV/TSV/Parquet files or DataFrames read by the forecasting data layer
(:mod:`lstmkit.data.sources`, so messages point at file lines), or ``arch:NAME``: a
data set shipped inside the ``arch`` package (``arch:sp500``, ``arch:nasdaq``: daily
index OHLC and volume, 1999-2018; ``arch:wti``: daily WTI crude oil closes, 1986-2019),
read from the installed package at run time.

Layouts:
    long  a close column (``close``, ``adj close``, ``price``, or ``--close``), optional
          open/high/low/volume columns, and an asset column (``symbol``, ``ticker``,
          ``asset`` or ``--asset-column``) when the table holds several assets;
    wide  one close column per asset beside the date column.

Rows are trading days as they come: a gap (a weekend, a holiday) is one step, not
calendar days filled in. Several assets are aligned on the days every one of them
traded. Refused: a close that is empty, zero or negative; dates repeated or out of
order within an asset; the same asset twice.
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from lstmkit.data.series_table import numeric_values
from lstmkit.data.sources import ROW, Source, read_source, require_columns
from lstmkit.data.time_axis import format_time, is_steps, parse_time
from lstmkit.errors import LstmkitError

logger = logging.getLogger("lstmkit.data")

ARCH_DATASETS = ("sp500", "nasdaq", "wti")
FIELDS = ("open", "high", "low", "volume")  # beside the close, each optional
# accepted spellings, compared without case, spaces, underscores and dashes
_TIME_NAMES = ("date", "time", "datetime", "timestamp", "day")
_CLOSE_NAMES = ("adjclose", "adjustedclose", "close", "price")  # adjusted first: dividends
_ASSET_NAMES = ("symbol", "ticker", "asset", "permno", "name")
SHOW = 5

PriceSource = str | os.PathLike | pd.DataFrame


@dataclass
class PricePanel:
    """Aligned prices: ``dates`` (T trading days, increasing), ``assets`` (A names),
    ``close`` (T, A) and the optional ``open``, ``high``, ``low``, ``volume`` (T, A)."""

    dates: pd.DatetimeIndex
    assets: list[str]
    close: np.ndarray
    open: np.ndarray | None = None
    high: np.ndarray | None = None
    low: np.ndarray | None = None
    volume: np.ndarray | None = None

    @property
    def fields(self) -> list[str]:
        """The optional fields this panel has."""
        return [name for name in FIELDS if getattr(self, name) is not None]

    def log_returns(self) -> np.ndarray:
        """r_t = log(C_t / C_{t-1}): (T, A), the first row NaN."""
        log_close = np.log(self.close)
        return np.vstack([np.full((1, len(self.assets)), np.nan), np.diff(log_close, axis=0)])


def read_prices(sources: PriceSource | Sequence[PriceSource], *, close: str | None = None,
                time: str | None = None, asset_column: str | None = None,
                time_format: str | None = None) -> PricePanel:
    """The assets of every source, checked and aligned on their common trading days."""
    if isinstance(sources, (str, os.PathLike, pd.DataFrame)):
        sources = [sources]
    if not sources:
        raise LstmkitError("no price data given; pass --data a price file or arch:sp500")
    assets: dict[str, pd.DataFrame] = {}
    for source in sources:
        for name, frame in _read_assets(source, close, time, asset_column, time_format):
            if name in assets:
                raise LstmkitError(f"asset '{name}' appears twice in the data; give each "
                                   "asset once (rename the file or the column)")
            assets[name] = frame
    return _align(assets)


def _read_assets(source: PriceSource, close: str | None, time: str | None,
                 asset_column: str | None, time_format: str | None
                 ) -> list[tuple[str, pd.DataFrame]]:
    """(asset name, frame indexed by date with close and optional fields) per asset."""
    name = None
    if isinstance(source, str) and source.startswith("arch:"):
        name = source.removeprefix("arch:")
        source = arch_dataset(name)
    elif not isinstance(source, pd.DataFrame):
        name = os.path.splitext(os.path.basename(os.fspath(source)))[0]
    frame, src = read_source(source)
    time = time or _find(frame, _TIME_NAMES)
    if time is None:
        raise LstmkitError(f"which column holds the dates? {src.label} has "
                           f"{_columns(frame)}; pass --time")
    dates = parse_time(frame, time, time_format, src)
    if is_steps(dates):
        raise LstmkitError(f"column '{time}' of {src.label} holds step numbers, not dates; "
                           "prices need trading dates (e.g. 2024-01-31)")
    frame = frame.assign(__date__=dates.to_numpy())
    close = close or _find(frame, _CLOSE_NAMES)
    if close is None:  # wide: every other column is an asset's close
        columns = [c for c in frame.columns if c not in (time, ROW, "__date__")]
        if asset_column is not None:
            raise LstmkitError(f"--asset-column needs a close column, and {src.label} has "
                               f"none of {_columns(frame)}; pass --close")
        return [(str(c), _checked(frame, src, str(c), {"close": c})) for c in columns]
    require_columns(frame, [close], src.label, "Pass --close the closing price column.")
    roles = {"close": close} | {f: c for f in FIELDS if (c := _find(frame, (f,))) is not None}
    asset_column = asset_column or _find(frame, _ASSET_NAMES)
    if asset_column is None:
        return [(name or "asset", _checked(frame, src, name or "asset", roles))]
    require_columns(frame, [asset_column], src.label, "Pass --asset-column the asset names.")
    groups = frame.groupby(frame[asset_column].astype("string").fillna("<empty>"), sort=False)
    return [(str(asset), _checked(group, src, str(asset), roles)) for asset, group in groups]


def arch_dataset(name: str) -> pd.DataFrame:
    """One of the data sets the ``arch`` package ships (``ARCH_DATASETS``)."""
    if name not in ARCH_DATASETS:
        raise LstmkitError(f"unknown data set 'arch:{name}'; the arch package ships "
                           f"{', '.join('arch:' + n for n in ARCH_DATASETS)}")
    try:
        module = importlib.import_module(f"arch.data.{name}")
    except ModuleNotFoundError:
        raise LstmkitError("arch:NAME data sets need the arch package: run make setup "
                           "(or pip install -c constraints.txt arch)") from None
    frame = module.load()
    if frame.shape[1] == 1:  # a single series (FRED's WTI): its closes, holidays left out
        frame = frame.dropna().set_axis(["close"], axis=1)
    return frame


def _find(frame: pd.DataFrame, names: Sequence[str]) -> str | None:
    """The first column whose name, compared loosely, is one of ``names`` (in their order)."""
    loose = {_loose(str(c)): str(c) for c in frame.columns if c != ROW}
    return next((loose[n] for n in names if n in loose), None)


def _loose(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch not in " _-.")


def _columns(frame: pd.DataFrame) -> str:
    return ", ".join(str(c) for c in frame.columns if c not in (ROW, "__date__"))


def _checked(frame: pd.DataFrame, src: Source, asset: str, roles: dict[str, str]
             ) -> pd.DataFrame:
    """One asset's rows as a frame indexed by date: values present and in range, dates
    unique and increasing."""
    out = pd.DataFrame(index=pd.DatetimeIndex(frame["__date__"], name="date"))
    for field, column in roles.items():
        values = numeric_values(frame, column, src, field).to_numpy()
        lowest, rule = (0.0, "zero or more") if field == "volume" else (None, "positive")
        bad = np.isnan(values) | (values < lowest if lowest is not None else values <= 0)
        if bad.any():
            rows = frame[ROW].to_numpy()[np.flatnonzero(bad)]
            shown = ", ".join(f"{v:g}" for v in values[bad][:SHOW])
            raise LstmkitError(
                f"asset '{asset}': {int(bad.sum())} {field} value(s) in column '{column}' "
                f"are empty or not {rule} ({shown} at {src.where_all(rows[:SHOW])}); prices "
                "must be positive numbers: fix or delete those rows")
        out[field] = values
    dates = out.index
    repeated = dates.duplicated(keep=False)
    if repeated.any():
        rows = frame[ROW].to_numpy()[np.flatnonzero(repeated)]
        raise LstmkitError(
            f"asset '{asset}': repeated date(s) {format_time(dates[repeated][0])} at "
            f"{src.where_all(rows[:SHOW])}; keep one row per asset and trading day")
    backwards = np.flatnonzero(np.diff(dates.values) < np.timedelta64(0))
    if len(backwards):
        k = int(backwards[0])
        rows = frame[ROW].to_numpy()
        raise LstmkitError(
            f"asset '{asset}': dates go backwards: {format_time(dates[k + 1])} at "
            f"{src.where(rows[k + 1])} comes after {format_time(dates[k])}; sort the rows "
            "by date (oldest first)")
    return out


def _align(assets: dict[str, pd.DataFrame]) -> PricePanel:
    """The assets on the trading days they all have, with the fields they all have."""
    names = list(assets)
    common = assets[names[0]].index
    for frame in assets.values():
        common = common.intersection(frame.index)
    dropped = max(len(frame) - len(common) for frame in assets.values())
    if len(common) < 2:
        raise LstmkitError(f"the assets {names[:SHOW]} share {len(common)} trading day(s); "
                           "price series of different periods cannot be modelled together")
    if dropped:
        logger.warning("aligned %d assets on the %d trading days they all have (up to %d "
                       "day(s) of an asset left out)", len(names), len(common), dropped)
    fields = [f for f in FIELDS if all(f in frame for frame in assets.values())]
    stacked = {field: np.column_stack([assets[a].loc[common, field].to_numpy() for a in names])
               for field in ("close", *fields)}
    return PricePanel(dates=pd.DatetimeIndex(common), assets=names, **stacked)
