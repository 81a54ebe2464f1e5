"""The methods, each declared once: its name, its options dataclass, where it works, how it runs.

A method is one :class:`Method`, passed to :func:`register` once (the built-in ones at the bottom of
``jaxstyle/methods/__init__.py``). The command line (``--method`` choices, the options' help
sections), the web page (its method list, the form's checks and the dispatch), video (which methods
may stylise frames) and :mod:`jaxstyle.run` (:func:`jaxstyle.run.build_stylizer`) read this registry
and nothing else, so a new method is one module plus one registration line.

Two kinds of method:

* one pass (``build`` given): ``build(StyleJob) -> stylizer``, a function
  ``float32[N,H,W,3] in [0,1] -> float32[N,H,W,3] in [0,1]`` with the style prepared once; every
  front end runs it through :func:`jaxstyle.run.stylize_images` (video frame by frame).
* back-propagation (``build`` None): ``gatys`` and ``texture``, run by :func:`jaxstyle.run.run_gatys`.

This module imports nothing heavy: a method's ``build`` imports its models when called, and its
options dataclass is named as ``"module:Class"`` and imported on first use (:meth:`Method.options_class`).
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable, Iterator, Mapping, MutableMapping, Sequence
from typing import Any, Generic, Protocol, TypeVar

import numpy as np

from jaxstyle.errors import OptionError

#: A one-pass stylizer: ``float32[N,H,W,3] in [0,1] -> float32[N,H,W,3] in [0,1]``.
Stylizer = Callable[[np.ndarray], np.ndarray]


def _load_style(name: str) -> np.ndarray:
    """A style image path or built-in painting's name -> float32[H,W,3] in [0,1]."""
    from jaxstyle.io import images, styles

    return images.load_image(styles.resolve_style(name))


@dataclasses.dataclass(frozen=True)
class StyleJob:
    """What a one-pass method's ``build`` is given, the same from every front end.

    styles: the styles, each a name (a shipped model, a built-in painting, a file path: the method says
    which it takes) or a painting float32[H,W,3] in [0,1]; several are blended by ``style_weights``.
    strength: 0 the photo, 1 the full style. preserve_color: the output keeps the photo's colours.
    settings: the method's own options by field name (the command line's dests, e.g. ``fast``,
    ``arbitrary_model``, ``decoders``, ``levels``, ``style_size``); a missing one takes its default.
    load_style: a style name -> its painting float32[H,W,3] in [0,1] (None:
    :func:`jaxstyle.io.styles.resolve_style` then :func:`jaxstyle.io.images.load_image`).
    cache: weights kept between jobs by the front end (the web page), by key; a build reads what is
    there and stores what it loads (None: nothing is kept).
    """

    styles: Sequence[str | np.ndarray]
    style_weights: Sequence[float] | None = None
    strength: float = 1.0
    preserve_color: bool = False
    settings: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    load_style: Callable[[str], np.ndarray] | None = None
    cache: MutableMapping[str, Any] | None = None

    def setting(self, name: str, default: Any = None) -> Any:
        """``settings[name]``, or ``default`` when it is missing or None (unset)."""
        value = self.settings.get(name)
        return default if value is None else value

    def paintings(self) -> list[np.ndarray]:
        """Each style as a painting float32[H,W,3] in [0,1]: arrays as they are, names through ``load_style``."""
        load = self.load_style or _load_style
        return [style if isinstance(style, np.ndarray) else load(style) for style in self.styles]

    def cached(self, key: str, load: Callable[[], Any]) -> Any:
        """``cache[key]``, loaded with ``load()`` (and kept in the cache, if any) the first time."""
        if self.cache is None:
            return load()
        if key not in self.cache:
            self.cache[key] = load()
        return self.cache[key]


@dataclasses.dataclass(frozen=True)
class Method:
    """One way of stylising, as every front end sees it.

    name: the ``--method`` value and the form's ``method``. summary: a few words for lists (the web
    page's note under its button). label: its name on the web page (None: the name, capitalised).
    options: its options dataclass as ``"module:Class"`` (fields declared with
    :func:`jaxstyle.options.option`: the command line's flags and help are generated from them), or None.
    build: one pass, ``build(StyleJob) -> Stylizer``; None for back-propagation (:func:`jaxstyle.run.run_gatys`).
    content: it takes a content photo (``texture``: no). per_frame: video may run it frame by frame
    (one pass only). web: the web page offers it. style_images: it takes paintings (images), not only
    names of trained models. strength: it takes ``strength`` (a mix of photo and style).
    style_names: the names a style may be chosen from (the web page's lists), None: the built-in paintings.
    models: the choices of its model setting (the web page's model menu), None: it has no models.
    model_option: the setting (a :class:`StyleJob` settings key) the chosen model goes in.
    style_side: the long side (px) its paintings are used at (the web page scales uploads to it), None: any.
    help_title: the title of its section in ``stylize --help`` (None: no section of its own).
    """

    name: str
    summary: str
    label: str | None = None
    options: str | None = None
    build: Callable[[StyleJob], Stylizer] | None = None
    content: bool = True
    per_frame: bool = False
    web: bool = False
    style_images: bool = True
    strength: bool = False
    style_names: Callable[[], list[str]] | None = None
    models: Callable[[], Sequence[str]] | None = None
    model_option: str | None = None
    style_side: int | None = None
    help_title: str | None = None

    def __post_init__(self) -> None:
        if not self.name.isidentifier():
            raise ValueError(f"a method's name is a word (letters, digits, _), got {self.name!r}")
        if self.per_frame and self.build is None:
            raise ValueError(f"method {self.name!r}: only a one-pass method (with build) can run per frame")

    @property
    def one_pass(self) -> bool:
        """Whether it stylises in one pass (a stylizer from ``build``), not by back-propagation."""
        return self.build is not None

    def options_class(self) -> type | None:
        """Its options dataclass (imported now), or None."""
        if self.options is None:
            return None
        module, _, name = self.options.partition(":")
        cls = getattr(importlib.import_module(module), name)
        assert isinstance(cls, type) and dataclasses.is_dataclass(cls), self.options
        return cls

    @property
    def title(self) -> str:
        """Its name on the web page: ``label``, else the name capitalised."""
        return self.label or self.name.capitalize()

    def names_of_styles(self) -> list[str]:
        """The style names it offers (``style_names()``, else the built-in paintings)."""
        if self.style_names is not None:
            return self.style_names()
        from jaxstyle.io import styles

        return list(styles.BUILTIN_STYLES)


class Named(Protocol):
    """What a registry holds: anything with a ``name``."""

    @property
    def name(self) -> str: ...


T = TypeVar("T", bound=Named)


class Registry(Generic[T]):
    """Items by their ``name``, in registration order (the order the front ends list them in): the one
    mechanism behind the methods here and the arbitrary models (:mod:`jaxstyle.methods.arbitrary.stylizer`).
    ``kind`` names the items in messages ("method", "arbitrary model")."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, item: T) -> T:
        """Add ``item`` (a name not yet taken); returns it. ValueError for a name already registered."""
        if item.name in self._items:
            raise ValueError(f"{self.kind} {item.name!r} is already registered")
        self._items[item.name] = item
        return item

    def unregister(self, name: str) -> T:
        """Remove the item ``name`` (tests that register their own); returns it. KeyError if unknown."""
        return self._items.pop(name)

    def get(self, name: str) -> T:
        """The item ``name``; KeyError if unknown (:meth:`check` first for a user-facing message)."""
        return self._items[name]

    def check(self, name: str, field: str) -> str:
        """``name`` if registered, else OptionError naming the known ones (and the option ``field``)."""
        if name not in self._items:
            raise OptionError(f"unknown {self.kind} {name!r}; use one of {', '.join(self._items)}", fields=(field,))
        return name

    def names(self) -> tuple[str, ...]:
        """The registered names, in registration order."""
        return tuple(self._items)

    def items(self) -> list[T]:
        """The registered items, in registration order (a copy: registering while iterating is safe)."""
        return list(self._items.values())


_METHODS: Registry[Method] = Registry("method")


def register(method: Method) -> Method:
    """Add ``method`` (a name not yet taken) to the registry; returns it. Registration order is the
    order the front ends list methods in."""
    return _METHODS.register(method)


def unregister(name: str) -> Method:
    """Remove the method ``name`` (tests that register their own); returns it. KeyError if unknown."""
    return _METHODS.unregister(name)


def get(name: str) -> Method:
    """The method ``name``; OptionError naming the known ones if there is none."""
    return _METHODS.get(_METHODS.check(name, "method"))


def methods() -> Iterator[Method]:
    """Every registered method, in registration order."""
    return iter(_METHODS.items())


def names(*, per_frame: bool | None = None, web: bool | None = None, one_pass: bool | None = None,
          strength: bool | None = None) -> tuple[str, ...]:
    """The registered methods' names, in registration order, those with the given capabilities only."""
    wanted = {"per_frame": per_frame, "web": web, "one_pass": one_pass, "strength": strength}
    return tuple(m.name for m in _METHODS.items()
                 if all(value is None or getattr(m, key) == value for key, value in wanted.items()))
