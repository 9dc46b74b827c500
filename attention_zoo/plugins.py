"""Plugins: mechanisms (and LRA tasks) from installed packages or from files, with their source.

An installed distribution adds to the zoo through an entry point in the group
`attention_zoo.mechanisms` (LRA tasks: `lra.tasks`) that names a module, or an object in
one, whose import registers through the usual `register` decorator:

    [project.entry-points."attention_zoo.mechanisms"]
    nystromformer = "nystromformer"

Discovery runs once, the first time a registry is asked what it holds, so every runner
sees installed plugins with no flag. `import_plugin` loads a module or a `.py` file that is
not installed (the runners' `--import`). Each registration records where it came from:
`built-in`, the distribution's name and version, or the file.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib
import importlib.util
import sys
import warnings
from collections.abc import Callable, Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

BUILT_IN = "built-in"
_LOADING: list[str] = []  # the source of the plugin being imported (innermost last)


@contextlib.contextmanager
def _loading(source: str) -> Iterator[None]:
    _LOADING.append(source)
    try:
        yield
    finally:
        _LOADING.pop()


def _distribution_of(module: str) -> str | None:
    """'name version' of the installed distribution that provides top-level `module`."""
    top = module.partition(".")[0]
    for dist_name in metadata.packages_distributions().get(top, []):
        with contextlib.suppress(metadata.PackageNotFoundError):
            return f"{dist_name} {metadata.version(dist_name)}"
    return None


def source_of(module: str, package: str) -> str:
    """Where a class defined in `module` comes from: the plugin being loaded, `built-in` for
    `package` itself, else its distribution, else its file."""
    if _LOADING:
        return _LOADING[-1]
    if module == package or module.startswith(package + "."):
        return BUILT_IN
    if dist := _distribution_of(module):
        return dist
    file = getattr(sys.modules.get(module), "__file__", None)
    return f"file {Path(file).resolve()}" if file else f"module {module}"


class Catalogue:
    """Named entries of one kind (attention mechanisms, LRA tasks), each with its source,
    filled by the built-in modules, by the entry points of `group` (once, lazily) and by
    `import_plugin`."""

    def __init__(self, kind: str, group: str, package: str) -> None:
        self.kind, self.group, self.package = kind, group, package
        self.entries: dict[str, tuple[tuple[type, Any], str]] = {}  # name -> ((cls, info), source)
        self.broken: dict[str, str] = {}  # entry point name -> why it is not available
        self._discovered = False

    def add(self, name: str, cls: type, make: Callable[[str], Any]) -> Any:
        """Register `make(source)` for class `cls` under `name`, and return it. ValueError,
        naming both sources, when another class already holds the name (the same class
        again, as a module reload does, replaces its entry)."""
        source = source_of(cls.__module__, self.package)
        if name in self.entries:
            held, held_source = self.entries[name]
            if _qualified(held[0]) != _qualified(cls):
                raise ValueError(
                    f"{self.kind} {name!r} from {source} ({_qualified(cls)}) is already "
                    f"registered from {held_source} ({_qualified(held[0])}); "
                    "register it under another name"
                )
        value = (cls, make(source))
        self.entries[name] = (value, source)
        return value

    def discover(self, again: bool = False) -> None:
        """Import every entry point of the group, once (`again`: look afresh, for packages
        installed since). One that fails is a warning naming it, its distribution and the
        exception; the others stay usable."""
        if self._discovered and not again:
            return
        self._discovered = True
        for point in metadata.entry_points(group=self.group):
            dist = point.dist
            where = f"{dist.name} {dist.version}" if dist else "an unnamed distribution"
            with _loading(where):
                try:
                    point.load()
                except Exception as exc:  # a plugin's own bug must not take the zoo down
                    cause = (
                        f"entry point {point.name!r} ({point.value}) of {where}, group "
                        f"{self.group!r}, failed to import: {type(exc).__name__}: {exc}"
                    )
                    self.broken[point.name] = cause
                    warnings.warn(f"{cause}; the other {self.kind}s stay usable", stacklevel=3)

    def names(self) -> list[str]:
        self.discover()
        return sorted(self.entries)

    def get(self, name: str) -> tuple[type, Any]:
        """(class, info) of `name`; ValueError listing the known names, or repeating why
        a broken plugin of that name is not available."""
        self.discover()
        if name in self.entries:
            return self.entries[name][0]
        if name in self.broken:
            raise ValueError(f"{self.kind} {name!r} is not available: {self.broken[name]}")
        raise ValueError(f"unknown {self.kind} {name!r}; expected one of {self.names()}")

    @contextlib.contextmanager
    def scratch(self) -> Iterator[None]:
        """Registrations and discoveries inside the block are undone after it (for tests of
        made-up mechanisms and plugins)."""
        saved, broken, discovered = dict(self.entries), dict(self.broken), self._discovered
        try:
            yield
        finally:
            self.entries.clear()
            self.entries.update(saved)
            self.broken.clear()
            self.broken.update(broken)
            self._discovered = discovered


def _qualified(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def import_plugin(spec: str) -> str:
    """Import a module by name, or a `.py` file by path, so that its registrations run; the
    source they get. ValueError naming `spec` when there is no such module or file; the
    module's own exceptions pass through."""
    path = Path(spec)
    if spec.endswith(".py") or path.is_file():
        if not path.is_file():
            raise ValueError(f"--import {spec}: no such file")
        path = path.resolve()
        digest = hashlib.sha1(str(path).encode()).hexdigest()[:10]
        name = f"_attention_bench_import_{path.stem}_{digest}"
        if name in sys.modules:
            return f"file {path}"
        loader = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(loader)
        sys.modules[name] = module
        with _loading(f"file {path}"):
            try:
                loader.loader.exec_module(module)
            except BaseException:
                del sys.modules[name]
                raise
        return f"file {path}"
    if importlib.util.find_spec(spec.partition(".")[0]) is None:
        raise ValueError(
            f"--import {spec}: no module of that name (and no file of that path); give an "
            "installed module's name or the path of a .py file"
        )
    source = _distribution_of(spec) or f"module {spec}"
    with _loading(source):
        importlib.import_module(spec)
    return source


def add_import_option(parser: argparse.ArgumentParser) -> None:
    """`--import MODULE_OR_FILE`, repeatable, into `imports` (every runner's and the check's)."""
    parser.add_argument(
        "--import",
        dest="imports",
        action="append",
        default=[],
        metavar="MODULE_OR_FILE",
        help="load a module (by name) or a .py file (by path) that registers attention "
        "mechanisms or LRA tasks, before anything else; repeatable. Installed plugins (entry "
        "points attention_zoo.mechanisms, lra.tasks) need no flag",
    )
