"""The bodies the server accepts, as pydantic models: FastAPI validates every request
against them (a wrong type or shape is a 422 naming the field) and documents them on
the OpenAPI page (/docs)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

Number = float
Row = dict[str, Any]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt field is an error, not ignored


class TableBody(_Body):
    """A table as the training file had it: ``rows`` (one object per line, keyed by
    column) or ``csv`` (the file's text, header first). Exactly one of the two."""

    rows: list[Row] | None = Field(None, description="one object per row, keyed by column")
    csv: str | None = Field(None, description="CSV text with a header line")

    @model_validator(mode="after")
    def _one_table(self) -> TableBody:
        if (self.rows is None) == (self.csv is None):
            raise ValueError("give the table as exactly one of 'rows' or 'csv'")
        return self


class ForecastBody(TableBody):
    """The history to forecast from (every series the model knows, with the columns it
    was trained on); ``horizon`` cuts the forecast to fewer steps than the model's."""

    horizon: int | None = Field(None, ge=1)


class ClassifyBody(_Body):
    """``texts`` for a text model, ``sequences`` (each steps x features, or a list of
    numbers for one feature) for a sequence model."""

    texts: list[str] | None = None
    sequences: list[list[Number] | list[list[Number]]] | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> ClassifyBody:
        if (self.texts is None) == (self.sequences is None):
            raise ValueError("give exactly one of 'texts' or 'sequences'")
        return self


class GenerateBody(_Body):
    prompt: str = Field(..., min_length=1)
    max_tokens: int = Field(200, ge=1)
    temperature: float = Field(1.0, gt=0)
    top_k: int | None = Field(None, ge=1)
    top_p: float | None = Field(None, gt=0, le=1)
    seed: int | None = None
    stop: str | None = None
    stream: bool = Field(True, description="server-sent events as the text comes; false: "
                                           "one JSON answer at the end")


class TranslateBody(_Body):
    sentences: list[str] = Field(..., min_length=1)
    beam_size: int | None = Field(None, ge=1)


class ExplainBody(_Body):
    """One input for the gate explorer: ``text`` (text models), ``csv``/``rows`` (a
    forecaster's history), or ``sequence`` (a sequence classifier's steps)."""

    text: str | None = None
    csv: str | None = None
    rows: list[Row] | None = None
    sequence: list[Number] | list[list[Number]] | None = None

    @model_validator(mode="after")
    def _one_input(self) -> ExplainBody:
        given = [k for k in ("text", "csv", "rows", "sequence") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of 'text', 'csv', 'rows' or 'sequence'")
        return self


class OpenSessionBody(_Body):
    """Optionally, the first input of the stream (as in a push)."""

    text: str | None = None
    values: list[list[Number]] | None = None


class PushBody(_Body):
    """The next piece of the stream: ``text`` (its tokens) for text models, ``values``
    (steps x features) for sequence models; ``gates`` adds each step's gates."""

    text: str | None = None
    values: list[list[Number]] | None = None
    gates: bool = False

    @model_validator(mode="after")
    def _one_input(self) -> PushBody:
        if (self.text is None) == (self.values is None):
            raise ValueError("give exactly one of 'text' or 'values'")
        return self
