"""The question catalog: one parameterised ``queries/<name>.cypher`` file per "why" question.

Each file starts with a header of ``//`` comment lines, then the Cypher::

    // Which prototypes drive class c, at one step or over all steps?
    // question: 2
    // param: cls:int — the class index
    // param: step:int? — a step t (checkpoint t → t+1); omit for all steps
    // param: top:int=5 — how many prototypes
    // returns: prototype:int, name:str, beta:float, firstStep:int?
    // empty: what an empty answer means (the hint shown with it)

The first line is the docstring. A parameter is ``NAME:TYPE`` with TYPE ``int``, ``float``, ``str``,
``bool`` or choices ``a|b``; ``?`` makes it optional (null) and ``=VALUE`` gives a default. Every
query also receives ``$runId`` (the run asked about). ``returns`` declares the columns and their
types (``list[int]``, ``list[list[int]]``, ...; ``?`` = may be null), from which each question gets
a pydantic row model.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Any, Optional

from pydantic import BaseModel, ConfigDict, create_model
from pydantic.alias_generators import to_snake

_SCALAR_TYPES: dict[str, type] = {"int": int, "float": float, "str": str, "bool": bool}
_TRUE, _FALSE = {"true", "1", "yes", "y", "on"}, {"false", "0", "no", "n", "off"}


class QuestionError(ValueError):
    """A question was asked wrongly (unknown name, bad parameters)."""


class UnknownQuestionError(QuestionError, KeyError):
    """No question of that name."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])


class QuestionParameterError(QuestionError):
    """A parameter is missing, unknown, or of the wrong type."""


@dataclass(frozen=True)
class Param:
    """One declared parameter of a question."""

    name: str
    type: str  # int | float | str | bool | choices "a|b"
    required: bool
    default: Any
    description: str

    @property
    def choices(self) -> tuple[str, ...] | None:
        return tuple(self.type.split("|")) if "|" in self.type else None

    def signature(self) -> str:
        base = f"{self.name}:{self.type}"
        if not self.required:
            base += "?" if self.default is None else f"={self.default}"
        return base

    def coerce(self, value: Any, question: str, from_text: bool = False) -> Any:
        """Check (Python) or parse (CLI text) one value; raise naming the parameter and its type."""
        if value is None:
            if self.required:
                raise self._error(question, "must not be null")
            return None
        kind = "str" if self.choices else self.type
        if from_text and isinstance(value, str):
            value = self._parse(value, kind, question)
        ok = {"int": isinstance(value, int) and not isinstance(value, bool),
              "float": isinstance(value, (int, float)) and not isinstance(value, bool),
              "str": isinstance(value, str), "bool": isinstance(value, bool)}[kind]
        if not ok:
            raise self._error(question, f"got {type(value).__name__} {value!r}")
        if self.choices and value not in self.choices:
            raise self._error(question, f"got {value!r}")
        return float(value) if kind == "float" else value

    def _parse(self, text: str, kind: str, question: str) -> Any:
        try:
            if kind == "int":
                return int(text)
            if kind == "float":
                return float(text)
            if kind == "bool":
                low = text.strip().lower()
                if low in _TRUE | _FALSE:
                    return low in _TRUE
                raise ValueError(text)
        except ValueError:
            raise self._error(question, f"got {text!r}") from None
        return text

    def _error(self, question: str, problem: str) -> QuestionParameterError:
        expected = f"one of {', '.join(self.choices)}" if self.choices else f"a value of type {self.type}"
        return QuestionParameterError(
            f"Question {question!r}: parameter {self.name} ({self.description}) expects {expected}; {problem}. "
            f"Example: --param {self.name}={self._example()}")

    def _example(self) -> str:
        if self.choices:
            return self.choices[0]
        return {"int": "3", "float": "0.5", "str": "text", "bool": "true"}.get(self.type, "...")


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    nullable: bool


@dataclass(frozen=True)
class Question:
    """One catalog question: its name, docstring, method.md number, parameters, columns and Cypher."""

    name: str
    doc: str
    number: int
    params: tuple[Param, ...]
    returns: tuple[Column, ...]
    empty: str
    cypher: str

    @property
    def row_model(self) -> type[BaseModel]:
        return _row_model(self)

    def usage(self) -> str:
        return f"{self.name}(" + ", ".join(p.signature() for p in self.params) + ")"

    def bind(self, params: dict[str, Any], from_text: bool = False) -> dict[str, Any]:
        """Validate ``params`` against the declaration; fill defaults. Raises :class:`QuestionParameterError`."""
        known = {p.name: p for p in self.params}
        unknown = sorted(set(params) - set(known))
        if unknown:
            raise QuestionParameterError(
                f"Question {self.name!r} has no parameter {', '.join(unknown)}; it takes "
                f"{', '.join(p.signature() for p in self.params) or 'no parameters'}.")
        bound = {}
        for p in self.params:
            if p.name in params:
                bound[p.name] = p.coerce(params[p.name], self.name, from_text)
            elif p.required:
                raise QuestionParameterError(
                    f"Question {self.name!r} needs parameter {p.name} ({p.type}: {p.description}). "
                    f"Usage: {self.usage()}; on the command line: --param {p.name}={p._example()}")
            else:
                bound[p.name] = p.default
        return bound


_PARAM = re.compile(r"^(?P<name>[A-Za-z_]\w*):(?P<type>[\w|]+)(?P<opt>\?|=(?P<default>\S+))?$")
_COLUMN = re.compile(r"^(?P<name>[A-Za-z_]\w*):(?P<type>[\w\[\]]+)(?P<opt>\?)?$")


def _column_type(spec: str) -> Any:
    if spec in _SCALAR_TYPES:
        return _SCALAR_TYPES[spec]
    if spec.startswith("list[") and spec.endswith("]"):
        inner = spec[5:-1]
        return list[Optional[_column_type(inner)]]  # list items may be null (no match, never adopted)
    raise ValueError(f"unknown column type {spec!r}")


def parse_question(name: str, text: str) -> Question:
    """Parse one ``.cypher`` file of the catalog (see the module docstring for the header)."""
    lines = text.splitlines()
    header = []
    for line in lines:
        if not line.startswith("//"):
            break
        header.append(line[2:].strip())
    if not header:
        raise ValueError(f"queries/{name}.cypher has no '//' docstring header.")
    doc, params, returns, number, empty = header[0], [], [], 0, ""
    for line in header[1:]:
        key, _, value = line.partition(":")
        value = value.strip()
        if key == "question":
            number = int(value)
        elif key == "param":
            spec, _, description = value.partition(" — ")
            match = _PARAM.match(spec.strip())
            if not match:
                raise ValueError(f"queries/{name}.cypher: bad param declaration {value!r}")
            kind, default = match["type"], match["default"]
            if kind not in _SCALAR_TYPES and "|" not in kind:
                raise ValueError(f"queries/{name}.cypher: unknown parameter type {kind!r}")
            p = Param(match["name"], kind, match["opt"] is None, None, description.strip())
            if default is not None:
                p = Param(p.name, kind, False, p.coerce(default, name, from_text=True), p.description)
            params.append(p)
        elif key == "returns":
            for spec in value.split(","):
                match = _COLUMN.match(spec.strip())
                if not match:
                    raise ValueError(f"queries/{name}.cypher: bad column declaration {spec!r}")
                _column_type(match["type"])
                returns.append(Column(match["name"], match["type"], match["opt"] is not None))
        elif key == "empty":
            empty = value
    cypher = "\n".join(lines[len(header):]).strip()
    if not cypher or not returns or not number:
        raise ValueError(f"queries/{name}.cypher needs 'question:', 'returns:' and a Cypher body.")
    return Question(name, doc, number, tuple(params), tuple(returns), empty, cypher)


@cache
def _row_model(question: Question) -> type[BaseModel]:
    fields: dict[str, Any] = {}
    for c in question.returns:
        tp = _column_type(c.type)
        fields[to_snake(c.name)] = ((Optional[tp], None) if c.nullable else (tp, ...))
    camel = "".join(part.title() for part in question.name.split("_")) + "Row"
    config = ConfigDict(frozen=True, populate_by_name=True, extra="forbid",
                        alias_generator=lambda f: next(c.name for c in question.returns if to_snake(c.name) == f))
    return create_model(camel, __config__=config, __doc__=question.doc, **fields)


@cache
def load_catalog() -> dict[str, Question]:
    """Every question of ``queries/``, in method.md order."""
    folder = files(__package__) / "queries"
    found = [parse_question(f.name[:-7], f.read_text(encoding="utf-8"))
             for f in folder.iterdir() if f.name.endswith(".cypher")]
    return {q.name: q for q in sorted(found, key=lambda q: (q.number, q.name))}


def get_question(name: str) -> Question:
    """The question called ``name``; :class:`UnknownQuestionError` lists the names otherwise."""
    catalog = load_catalog()
    if name not in catalog:
        raise UnknownQuestionError(f"Unknown question {name!r}. Known questions: {', '.join(catalog)} "
                                   "(i2x ask --list shows what each answers).")
    return catalog[name]


def list_questions() -> list[dict[str, Any]]:
    """Name, method.md number, docstring, parameters and columns of every question."""
    return [{"name": q.name, "number": q.number, "doc": q.doc,
             "params": [{"name": p.name, "type": p.type, "required": p.required, "default": p.default,
                         "description": p.description} for p in q.params],
             "returns": [c.name for c in q.returns]} for q in load_catalog().values()]
