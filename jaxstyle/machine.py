"""Where numbers were measured: one record of the machine, for docs, benches, model metadata and reports."""

from __future__ import annotations

import datetime
import importlib.metadata
import os
import platform
from collections.abc import Iterable, Mapping
from typing import Any


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else what :mod:`platform` knows, else ``"unknown"``."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def _usable_cpus() -> int | None:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        return os.cpu_count()


def _memory_gb() -> float | None:
    try:
        return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (AttributeError, OSError, ValueError):
        return None


def _load_average() -> list[float] | None:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def machine_info(packages: Iterable[str] = (), devices: bool = True) -> dict[str, Any]:
    """The machine and software a measurement ran on, as a JSON-able dict.

    Keys: ``date`` (UTC, ISO seconds), ``host``, ``os``, ``python``, ``cpu_model``, ``cpu_count``,
    ``cpus_usable`` (this process's affinity), ``memory_gb``, ``load_average`` (1, 5, 15 min),
    ``jax``, ``jaxlib``, ``xla_flags``; with ``devices`` (imports jax): ``backend``,
    ``device_kind``, ``device_count``; ``versions``: the installed version of each of
    ``packages`` (``None`` if absent), e.g. ``("flax", "optax")``.
    """
    info: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "host": platform.node() or "unknown",
        "os": platform.platform(),
        "python": platform.python_version(),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": _usable_cpus(),
        "memory_gb": _memory_gb(),
        "load_average": _load_average(),
        "jax": _version("jax"),
        "jaxlib": _version("jaxlib"),
        "xla_flags": os.environ.get("XLA_FLAGS"),
    }
    if devices:
        import jax

        found = jax.devices()
        info.update(backend=jax.default_backend(), device_kind=found[0].device_kind, device_count=len(found))
    info["versions"] = {name: _version(name) for name in packages}
    return info


def machine_line(info: Mapping[str, Any]) -> str:
    """One human line from :func:`machine_info`, e.g.
    ``cpu x1 (AMD EPYC 7B13, 2 CPUs, load average 1.2 at start), jax 0.10.2``.

    Also reads records written before this module (``cpu`` for ``cpu_model``).
    """
    kind, count = info.get("device_kind", "?"), info.get("device_count") or 1
    device = f"{kind} x{count}" if count > 1 else str(kind)
    load = info.get("load_average")
    load_text = f", load average {load[0]:g} at start" if load else ""
    cpu = info.get("cpu_model") or info.get("cpu") or "unknown CPU"
    return f"{device} ({cpu}, {info.get('cpu_count')} CPUs{load_text}), jax {info.get('jax')}"
