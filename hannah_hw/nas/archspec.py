"""Loading spaces by reference and ``ArchSpec``: a space plus the values that pick one network.

A space reference is ``path/to/file.py:function`` or ``package.module:function``. An ArchSpec
is JSON; it carries the space's fingerprint so a changed space is refused, not misread.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import importlib.util
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hannah_hw.nas.functional_operators.op import BaseNode, GraphError
from hannah_hw.nas.space import current_values, fingerprint, set_params

FORMAT_VERSION = 1


class SpaceError(ValueError):
    """A space reference that cannot be loaded, or an ArchSpec that does not fit its space."""


def load_space(ref: str) -> Callable[..., BaseNode]:
    """Resolve ``file.py:function`` or ``module:function`` to a ``@search_space`` function."""
    path, sep, name = ref.rpartition(":")
    if not sep or not path or not name:
        raise SpaceError(f"space {ref!r}: expected FILE.py:FUNCTION or MODULE:FUNCTION")
    if path.endswith(".py") or "/" in path or "\\" in path:
        file = Path(path).expanduser().resolve()
        if not file.is_file():
            raise SpaceError(f"space file {path} does not exist")
        mod_name = "hannah_hw_space_" + hashlib.sha1(str(file).encode()).hexdigest()[:12]
        module = sys.modules.get(mod_name)
        if module is None:
            spec = importlib.util.spec_from_file_location(mod_name, file)
            module = importlib.util.module_from_spec(spec)
            sys.modules[mod_name] = module
            try:
                spec.loader.exec_module(module)
            except Exception as e:
                del sys.modules[mod_name]
                raise SpaceError(f"space file {path} failed to import: "
                                 f"{type(e).__name__}: {e}") from None
    else:
        try:
            module = importlib.import_module(path)
        except ImportError as e:
            raise SpaceError(f"space module {path} cannot be imported: {e}") from None
    fn = getattr(module, name, None)
    if fn is None:
        raise SpaceError(f"space {ref!r}: {path} has no function {name!r}")
    if not getattr(fn, "_search_space", False):
        raise SpaceError(f"space {ref!r}: {name} is not decorated with @search_space")
    return fn


def canonical_ref(ref: str) -> str:
    """File references made absolute, so a spec works from any working directory."""
    path, _, name = ref.rpartition(":")
    if path.endswith(".py") or "/" in path:
        return f"{Path(path).expanduser().resolve()}:{name}"
    return ref


def build_space(ref: str, kwargs: dict | None = None) -> BaseNode:
    """Call the space function; whatever the user's code raises becomes one SpaceError naming
    the space, so the CLI reports it in a line instead of a traceback."""
    fn = load_space(ref)
    try:
        return fn(**(kwargs or {}))
    except (SpaceError, GraphError):
        raise  # already names the problem
    except TypeError as e:
        raise SpaceError(f"space {ref!r} cannot be built with {kwargs or {}}: {e}") from None
    except Exception as e:  # noqa: BLE001 - user code may raise anything
        raise SpaceError(f"space {ref!r} raised {type(e).__name__}: {e}") from None


@dataclasses.dataclass(frozen=True)
class ArchSpec:
    space: str
    params: dict[str, Any]
    space_kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)
    fingerprint: str = ""
    format_version: int = FORMAT_VERSION

    @classmethod
    def from_graph(cls, ref: str, graph: BaseNode, kwargs: dict | None = None) -> ArchSpec:
        return cls(canonical_ref(ref), current_values(graph), dict(kwargs or {}),
                   fingerprint(graph))

    def build(self) -> BaseNode:
        """The space with this spec's values set."""
        graph = build_space(self.space, self.space_kwargs)
        if self.fingerprint and fingerprint(graph) != self.fingerprint:
            raise SpaceError(f"space {self.space} has changed since this architecture was "
                             "saved (its parameters or their domains differ)")
        set_params(graph, self.params)
        return graph

    def key(self) -> str:
        """Identity of the architecture, for de-duplication."""
        return hashlib.sha1(json.dumps(self.params, sort_keys=True).encode()).hexdigest()

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ArchSpec:
        try:
            data = json.loads(text)
            if data.get("format_version") != FORMAT_VERSION:
                raise SpaceError(f"unsupported ArchSpec format_version "
                                 f"{data.get('format_version')!r} (expected {FORMAT_VERSION})")
            return cls(**data)
        except (json.JSONDecodeError, TypeError, AttributeError) as e:
            raise SpaceError(f"not an ArchSpec: {e}") from None

    def save(self, path: str | Path) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(self.to_json() + "\n")

    @classmethod
    def load(cls, path: str | Path) -> ArchSpec:
        p = Path(path)
        if not p.is_file():
            raise SpaceError(f"ArchSpec file {path} does not exist")
        try:
            spec = cls.from_json(p.read_text())
        except SpaceError as e:
            raise SpaceError(f"{path}: {e}") from None
        file, _, name = spec.space.rpartition(":")
        if file.endswith(".py") and not Path(file).is_absolute():  # relative to the spec
            beside = (p.parent / file).resolve()
            if beside.is_file():
                spec = dataclasses.replace(spec, space=f"{beside}:{name}")
        return spec
