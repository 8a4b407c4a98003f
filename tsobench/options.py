"""Options declared once, on the frozen dataclass that holds them.

A field's ``metadata=option(...)`` says everything about it: its flag and help,
its bounds and choices, whether a sweep can vary it. From that one declaration
come the click options (``click_options``), the checks every instance runs in
``__post_init__`` (``validate``: so the command line, a TOML plan and Python
code get the same ``ConfigError``), building an instance from flat keys such
as click parameters or TOML keys (``build``), and the argv that gives an
instance back to a child process (``to_argv``).

A field holding another such dataclass is declared with ``nested(prefix)``:
its options appear with the prefix (``server.delay_ms`` is ``--server-delay-ms``
and the key ``server_delay_ms``).
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import math
import re
import types
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import click
import click.shell_completion

T = TypeVar("T")
METADATA_KEY = "tsobench.option"


class ConfigError(ValueError):
    """Bad options: the message is for the person who typed them."""


_UNITS = {"us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*(us|µs|ms|s|m|h)?")
DURATION_WORDS = "like 500ms, 2s, 2m, 1h or 1m30s; a plain number is seconds"


def parse_duration(text: str) -> float:
    """``250ms``, ``2s``, ``2m``, ``1h``, ``1m30s`` or a plain number (seconds) -> seconds.

    One parser for every time a person types: the time flags, TOML plans and the fault words,
    so ``--duration 2m`` and ``--fault kill@3s:1s`` read their units alike."""
    written = text.strip()
    parts = list(_DURATION_PART.finditer(written))
    if not written or "".join(m.group(0) for m in parts) != written.replace(" ", ""):
        raise ConfigError(f"{text!r} is not a duration ({DURATION_WORDS})")
    if len(parts) > 1 and any(m.group(2) is None for m in parts):
        raise ConfigError(f"{text!r} is not a duration: give every part its unit ({DURATION_WORDS})")
    seconds = sum(float(m.group(1)) * _UNITS[m.group(2) or "s"] for m in parts)
    if not math.isfinite(seconds):
        raise ConfigError(f"{text!r} is not a duration ({DURATION_WORDS})")
    return seconds


@dataclass(frozen=True)
class Option:
    """How one field appears on command lines, in plans and in errors."""

    help: str
    flag: str | None = None  # the long flag without dashes; default: the field name, dashed
    short: str | None = None  # e.g. "-c"
    choices: Sequence[str] | Callable[[], Sequence[str]] | None = None  # a callable is asked when needed
    min: float | None = None
    max: float | None = None
    positive: bool = False  # must be above 0
    none: tuple[str, ...] = ()  # words standing for None (on a command line, in a plan); the first is written
    default_text: str | None = None  # shown as the default when the field's default is None or computed
    axis: str | None = None  # a sweep can vary it: the name of the axis (plural), e.g. "rates"
    sweep_default: Any = None  # a sweep's default, where it differs from a run's (a tuple or callable for an axis)
    key_tag: str | None = None  # an axis's tag in a sweep point's key ("c" makes c16); None: named only if not default
    key_default: bool = True  # the key names the axis at its default too (False: an axis added later, as a sweep
    # that does not vary it keeps the keys it had before the axis existed)
    point: bool = True  # part of what a measured point is (False: how long or how it was recorded, e.g. duration)
    locates: bool = False  # says where a run went (an address, a file path), not what it did: compare ignores it
    unit: str | None = None  # a time: the unit the field holds ("s" or "ms"); a word may carry its own (2m, 500ms)
    complete: Callable[[], Sequence[str]] | None = None  # shell completion's words where there are no choices


@dataclass(frozen=True)
class Nested:
    """A field holding another dataclass with options, shown under a prefix."""

    prefix: str
    help_prefix: str = ""


def option(help: str, **settings: Any) -> dict[str, Option]:
    """``field(metadata=option("Callers per process.", min=1))``."""
    return {METADATA_KEY: Option(help, **settings)}


def nested(prefix: str, help_prefix: str = "") -> dict[str, Nested]:
    return {METADATA_KEY: Nested(prefix, help_prefix)}


REQUIRED = object()  # the default of a field that has none


@dataclass(frozen=True)
class Spec:
    """One option as it appears flat: ``server.delay_ms`` is key ``server_delay_ms``, flag ``--server-delay-ms``."""

    path: tuple[str, ...]
    key: str
    name: str  # the flag without dashes: how errors name the option
    kind: type  # int, float, str, bool or a class with parse(word) (the element type of a repeatable option)
    optional: bool  # None is allowed
    multiple: bool  # a tuple, given by repeating the flag
    default: Any
    option: Option
    help: str

    @property
    def flag(self) -> str:
        return f"--{self.name}"

    @property
    def sweep_flag(self) -> str:
        """The flag a sweep takes it by: its axis's (a list) where it has one."""
        return self.flag if self.axis_key is None else "--" + self.axis_key.replace("_", "-")

    @property
    def axis_key(self) -> str | None:
        """The sweep plan's key (and flag, dashed) when a sweep can vary this option."""
        if self.option.axis is None:
            return None
        prefix = self.key[: len(self.key) - len(self.path[-1])]
        return prefix + self.option.axis

    def get(self, instance: object) -> Any:
        for name in self.path:
            instance = getattr(instance, name)
        return instance

    def choices(self) -> Sequence[str] | None:
        c = self.option.choices
        return c() if callable(c) else c

    def parse(self, value: Any) -> Any:
        """A command-line word (or a plan's value) as this option's type; a none word is None."""
        if self.option.none and word(value) in self.option.none:
            return None
        if self.multiple and isinstance(value, list | tuple):
            return tuple(self.parse(v) for v in value)
        if self.kind is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if not isinstance(value, str) or self.kind is str:
            return value  # already typed (TOML, Python); validate() checks it
        parse = getattr(self.kind, "parse", None)
        if parse is not None:
            return parse(value)  # a value type that reads its own words (and says what is wrong)
        if self.option.unit is not None:
            return self._time(value)
        try:
            if self.kind is bool:
                return {"true": True, "false": False}[value.lower()]
            return self.kind(value)
        except (KeyError, ValueError):
            raise ConfigError(f"{self.name} must be {_kind_word(self.kind)} (got {value!r})") from None

    def _time(self, value: str) -> float:
        """A time in the field's unit: a plain number is already in it (seconds or ms, as the flag
        says), a word with a unit is converted (``--server-rtt-ms 1s`` is 1000)."""
        try:
            if not _plain(value):
                return parse_duration(value) / _UNITS[self.option.unit or "s"]
            if not math.isfinite(number := float(value)):
                raise ConfigError(f"{value!r} is not a duration ({DURATION_WORDS})")
            return number
        except ConfigError as exc:
            raise ConfigError(f"{self.name}: {exc}") from None

    def parse_value(self, value: Any) -> Any:
        """A whole value, as a sweep axis takes it: a repeatable option's elements in one
        word are joined by ``+`` (``none``: no element), or given as a list."""
        if self.multiple and isinstance(value, str):
            value = [] if value.strip() == NO_ELEMENTS else value.split("+")
        return self.parse(value)

    def check(self, value: Any, name: str | None = None) -> None:
        """Raise ConfigError when ``value`` is not valid for this option."""
        name = name or self.name
        if value is None:
            if not self.optional:
                raise ConfigError(f"{name} must be given")
            return
        for v in value if self.multiple else (value,):
            if not _is_kind(v, self.kind):
                hint = (
                    f"; {self.kind.__name__}.parse reads it"
                    if isinstance(v, str) and hasattr(self.kind, "parse")
                    else ""
                )
                raise ConfigError(f"{name} must be {_kind_word(self.kind)} (got {v!r}{hint})")
            choices = self.choices()
            if choices is not None and v not in choices:
                raise ConfigError(
                    f"unknown {name} {v!r}{did_you_mean(str(v), choices)}; choose from {', '.join(choices)}"
                )
            _check_bounds(self.option, name, v)


def did_you_mean(word: str, known: Iterable[str]) -> str:
    """`` (did you mean 'pool'?)`` when one of ``known`` is close to ``word`` (a typo), else nothing."""
    close = difflib.get_close_matches(word, list(known), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _plain(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


_KIND_WORDS = {int: "an integer", float: "a number", str: "text", bool: "true or false"}
_METAVARS = {int: "integer", float: "float", str: "text", bool: "boolean"}
NO_ELEMENTS = "none"  # a repeatable option's empty value, written as one word


def _kind_word(kind: type) -> str:
    return _KIND_WORDS.get(kind, f"a {kind.__name__}")


def _is_kind(value: Any, kind: type) -> bool:
    if isinstance(value, bool):
        return kind is bool
    if kind is float:
        return isinstance(value, int | float)
    return isinstance(value, kind)


def _check_bounds(o: Option, name: str, v: Any) -> None:
    low, high = o.min, o.max
    if low is not None and high is not None and not low <= v <= high:
        raise ConfigError(f"{name} must be within [{word(low)}, {word(high)}] (got {word(v)})")
    if low is not None and v < low:
        limit = "must not be negative" if low == 0 else f"must be at least {word(low)}"
        raise ConfigError(f"{name} {limit} (got {word(v)})")
    if high is not None and v > high:
        raise ConfigError(f"{name} must be at most {word(high)} (got {word(v)})")
    if o.positive and v <= 0:
        raise ConfigError(f"{name} must be positive (got {word(v)})")


def word(value: Any) -> str:
    """A value as written on a command line: 250.0 is "250", 1.5 stays "1.5", None is ""."""
    if value is None:
        return ""
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, tuple):  # a repeatable option's whole value
        return "+".join(word(v) for v in value) or NO_ELEMENTS
    return str(value)


def _field_type(hint: Any) -> tuple[type, bool, bool]:
    """(kind, optional, multiple) of a field annotation like ``int | None`` or ``tuple[str, ...]``."""
    optional = False
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        optional = len(args) < len(typing.get_args(hint))
        (hint,) = args
    if typing.get_origin(hint) is tuple:
        return typing.get_args(hint)[0], optional, True
    return hint, optional, False


def _default(f: dataclasses.Field[Any]) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return REQUIRED


_SPECS: dict[type, tuple[Spec, ...]] = {}


def specs(cls: type) -> tuple[Spec, ...]:
    """Every option of ``cls``, nested ones flattened, in declaration order (a subclass's own fields first)."""
    if cls not in _SPECS:
        _SPECS[cls] = tuple(_declared(cls))
    return _SPECS[cls]


def _declared(cls: Any) -> list[Spec]:
    hints = typing.get_type_hints(cls)
    own = inspect.get_annotations(cls)
    out: list[Spec] = []
    for f in sorted(dataclasses.fields(cls), key=lambda f: f.name not in own):
        declared = f.metadata.get(METADATA_KEY)
        if isinstance(declared, Nested):
            for s in specs(hints[f.name]):
                out.append(
                    dataclasses.replace(
                        s,
                        path=(f.name, *s.path),
                        key=f"{declared.prefix}_{s.key}",
                        name=f"{declared.prefix}-{s.name}",
                        help=declared.help_prefix
                        + (s.help[:1].lower() + s.help[1:] if declared.help_prefix else s.help),
                    )
                )
        elif isinstance(declared, Option):
            kind, optional, multiple = _field_type(hints[f.name])
            name = declared.flag or f.name.replace("_", "-")
            out.append(Spec((f.name,), f.name, name, kind, optional, multiple, _default(f), declared, declared.help))
    return out


def validate(instance: object) -> None:
    """Check every declared field of ``instance`` (call it from ``__post_init__``)."""
    own = {s.path[0]: s for s in specs(type(instance)) if len(s.path) == 1}
    for name, spec in own.items():
        spec.check(getattr(instance, name))


def build(cls: type[T], values: Mapping[str, Any]) -> T:
    """An instance of ``cls`` from flat keys (click parameters, a plan's keys);
    keys not given take the field's default. Errors name options as flags do."""
    by_key = {s.key: s for s in specs(cls)}
    unknown = sorted(set(values) - by_key.keys())
    if unknown:
        raise ConfigError(f"unknown option {unknown[0]!r}; valid: {', '.join(sorted(by_key))}")
    values = {key: by_key[key].parse(value) if _words(value) else value for key, value in values.items()}
    for key, value in values.items():
        by_key[key].check(value)  # before construction: a nested value is named with its prefix
    built: T = _build(cls, values, "")
    return built


def _words(value: Any) -> bool:
    """A value written as text (``"kill@3s:1s"``, a plan's ``["abort@1s"]``): its option reads it."""
    return isinstance(value, str) or (isinstance(value, list | tuple) and any(isinstance(v, str) for v in value))


def _build(cls: Any, values: Mapping[str, Any], prefix: str) -> Any:
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        declared = f.metadata.get(METADATA_KEY)
        if isinstance(declared, Nested):
            inner = f"{prefix}{declared.prefix}_"
            if any(k.startswith(inner) for k in values):
                kwargs[f.name] = _build(hints[f.name], values, inner)
        elif isinstance(declared, Option) and prefix + f.name in values:
            kwargs[f.name] = values[prefix + f.name]
    return cls(**kwargs)


def to_argv(instance: object, always: Callable[[Spec], bool] = lambda spec: False) -> list[str]:
    """The flags that give ``instance`` back: every option that is not at its
    default, and those ``always`` names even when they are."""
    argv: list[str] = []
    for spec in specs(type(instance)):
        value = spec.get(instance)
        if value == spec.default and not always(spec):
            continue
        if value is None:
            if spec.option.none:
                argv += [spec.flag, written(spec, value)]
        elif spec.kind is bool:
            argv += [spec.flag] if value else []
        else:
            for v in value if spec.multiple else (value,):
                argv += [spec.flag, word(v)]
    return argv


def written(spec: Spec, value: Any) -> str:
    """A value as its option is written; None as the option's none word."""
    return spec.option.none[0] if value is None and spec.option.none else word(value)


class _Value(click.ParamType):
    """A command-line word parsed as its option declares (a none word is None)."""

    def __init__(self, spec: Spec, many: bool = False) -> None:
        self.spec, self.many = spec, many
        metavar = "duration" if spec.option.unit else _METAVARS.get(spec.kind, spec.kind.__name__.lower())
        self.name = "list" if many else metavar

    def get_metavar(self, param: click.Parameter, ctx: click.Context) -> str | None:
        """The choices in the help (``--api [thread|asyncio]``), asked when the help is shown."""
        choices = self.spec.choices()
        if choices is None or self.many:
            return None
        return f"[{'|'.join(choices)}]"

    def shell_complete(
        self, ctx: click.Context, param: click.Parameter, incomplete: str
    ) -> list[click.shell_completion.CompletionItem]:
        """The values that fit: a choice (strategies with plugins, APIs, loops) or a declared word (fault
        kinds); a sweep axis completes the element after its last comma."""
        words = self.spec.choices() or (self.spec.option.complete() if self.spec.option.complete else ())
        head, _, tail = incomplete.rpartition(",") if self.many else ("", "", incomplete)
        prefix = f"{head}," if head else ""
        return [click.shell_completion.CompletionItem(prefix + w) for w in words if w.startswith(tail)]

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if not isinstance(value, str):
            return value
        try:
            if self.many:  # a sweep axis: "1,4,16"
                return tuple(self.spec.parse_value(v.strip()) for v in value.split(",") if v.strip())
            return self.spec.parse(value)
        except ConfigError as exc:
            self.fail(str(exc), param, ctx)


def _help(spec: Spec, default: str | None) -> str:
    """The help text with its default (click would put a written-out default in brackets and parentheses)."""
    return f"{spec.help}  [default: {default}]" if default else spec.help


def _default_text(spec: Spec) -> str | None:
    if spec.option.default_text is not None:
        return spec.option.default_text
    if spec.default is None or spec.default is REQUIRED or spec.default is False:
        return None
    return written(spec, spec.default) + (spec.option.unit or "")


def click_option(spec: Spec) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The click option of one declared option, its default the field's."""
    flags = [spec.flag, *([spec.option.short] if spec.option.short else [])]
    if spec.kind is bool:  # a switch: given means True
        return click.option(*flags, spec.key, is_flag=True, default=bool(spec.default), help=spec.help)
    return click.option(
        *flags,
        spec.key,
        type=_Value(spec),
        required=spec.default is REQUIRED,
        default=None if spec.default is REQUIRED else spec.default,
        multiple=spec.multiple,
        help=_help(spec, _default_text(spec)),
    )


def click_options(cls: type) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A decorator adding every option of ``cls`` to a click command."""
    return _apply(click_option(s) for s in specs(cls))


def _apply(decorators: Iterable[Callable[[Callable[..., Any]], Callable[..., Any]]]):
    def decorate(f: Callable[..., Any]) -> Callable[..., Any]:
        for d in reversed(list(decorators)):
            f = d(f)
        return f

    return decorate


def sweep_click_options(cls: type) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A sweep's options: each axis as a comma-separated list (``--concurrency 1,4,16``),
    every other option as in a run, for every point. Not given: the parameter is None."""
    decorators = []
    for spec in specs(cls):
        if spec.axis_key is not None:
            values = axis_default(spec)
            shown = ",".join(written(spec, v) for v in values)
            decorators.append(
                click.option(
                    spec.sweep_flag,
                    *([spec.option.short] if spec.option.short else []),  # -s, -c, -p as on tsobench run
                    spec.axis_key,
                    type=_Value(spec, many=True),
                    default=None,
                    help=_help(dataclasses.replace(spec, help=f"{spec.help} A comma-separated list."), shown),
                )
            )
        else:
            sweep_default = spec.option.sweep_default
            run_default = (
                word(sweep_default) + (spec.option.unit or "") if sweep_default is not None else _default_text(spec)
            )
            kind = {"is_flag": True} if spec.kind is bool else {"type": _Value(spec), "multiple": spec.multiple}
            decorators.append(click.option(spec.flag, spec.key, default=None, help=_help(spec, run_default), **kind))
    return _apply(decorators)


def axis_default(spec: Spec) -> tuple[Any, ...]:
    """The values a sweep takes on an axis it was not given: the declared sweep default, else the run's default."""
    d = spec.option.sweep_default
    if d is None:
        return (spec.default,)
    return tuple(d() if callable(d) else d)


def point_keys(cls: type) -> tuple[str, ...]:
    """The flat keys of the options that make two runs the same point: every option
    but those declared ``point=False`` (run length, seed, recording), options added later included."""
    return tuple(s.key for s in specs(cls) if s.option.point)


def comparable_keys(cls: type) -> tuple[str, ...]:
    """``point_keys`` without the options that only say where a run went (``locates``):
    what matches a run against a new server build at a new address with the old one."""
    return tuple(s.key for s in specs(cls) if s.option.point and not s.option.locates)


def flatten(cls: type, values: Mapping[str, Any]) -> dict[str, Any]:
    """A recorded instance (``asdict`` of ``cls``, as a results file holds it) by flat key;
    an option the record lacks (written before the option existed) is its default."""
    out: dict[str, Any] = {}
    for spec in specs(cls):
        value: Any = values
        for name in spec.path:
            value = value.get(name, _MISSING) if isinstance(value, Mapping) else _MISSING
        if value is _MISSING:
            value = None if spec.default is REQUIRED else spec.default
        out[spec.key] = value
    return out


_MISSING = object()
