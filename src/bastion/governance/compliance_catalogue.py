"""The compliance control catalogue: frameworks -> controls -> automated checks, as data.

The catalogue Bastion ships (``compliance_catalogue.yaml`` beside this module)
maps GDPR, the HIPAA Security Rule, SOC 2 and the EU AI Act to checks over
Bastion's own state.  A compliance officer extends it with a file of the same
shape; :func:`load_catalogue` merges the two under one strict schema:

- unknown fields anywhere, an unknown check name, a framework or control id
  that is malformed, a control id used twice in one framework, a new framework
  without a title: refused (:class:`CatalogueInvalid`) with the file and the path;
- an extension may add frameworks, add controls to a shipped framework and
  change ``settings`` (each within its range); it cannot remove or rewrite a
  shipped control, so an extended report still answers every shipped control.

Example::

    catalogue = load_catalogue(Path("extra-controls.yaml").read_text(), known_checks=CHECKS)
    soc2 = catalogue.framework("soc2")
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Collection
from dataclasses import dataclass
from importlib import resources

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bastion.core.canonical import JSON, canonical_json
from bastion.governance.errors import CatalogueInvalid

_ID = re.compile(r"[A-Za-z0-9§][A-Za-z0-9§ .()\-]{0,39}")
_FRAMEWORK = re.compile(r"[a-z0-9][a-z0-9-]{0,39}")
_MAX_BYTES = 1024 * 1024


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class ControlSpec(_Strict):
    id: str = Field(min_length=1, max_length=40)
    title: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=2000)
    checks: list[str] = Field(min_length=1, max_length=20)


class FrameworkSpec(_Strict):
    title: str | None = Field(default=None, min_length=1, max_length=200)
    controls: list[ControlSpec] = Field(default_factory=list, max_length=200)


class Settings(_Strict):
    key_rotation_days: int = Field(default=365, ge=1, le=3650)
    max_global_admins: int = Field(default=2, ge=1, le=100)
    drift_window_days: int = Field(default=30, ge=1, le=365)


class SettingsPatch(_Strict):
    key_rotation_days: int | None = Field(default=None, ge=1, le=3650)
    max_global_admins: int | None = Field(default=None, ge=1, le=100)
    drift_window_days: int | None = Field(default=None, ge=1, le=365)


class CatalogueFile(_Strict):
    version: int = Field(ge=1, le=1)
    settings: SettingsPatch = SettingsPatch()
    frameworks: dict[str, FrameworkSpec] = Field(default_factory=dict, max_length=50)


@dataclass(frozen=True)
class Framework:
    name: str
    title: str
    controls: tuple[ControlSpec, ...]


@dataclass(frozen=True)
class Catalogue:
    frameworks: dict[str, Framework]
    settings: Settings
    #: sha256 of the merged catalogue's canonical JSON (cited by every report)
    sha256: str
    sources: tuple[str, ...]

    def framework(self, name: str) -> Framework:
        found = self.frameworks.get(name)
        if found is None:
            raise CatalogueInvalid(
                f"unknown compliance framework {name!r}",
                hint="use one of: " + ", ".join(sorted(self.frameworks)),
            )
        return found


def shipped_text() -> str:
    return (resources.files("bastion.governance") / "compliance_catalogue.yaml").read_text(
        encoding="utf-8"
    )


def _parse(text: str, source: str) -> CatalogueFile:
    if len(text.encode("utf-8", "replace")) > _MAX_BYTES:
        raise CatalogueInvalid(f"{source} is larger than 1 MiB")
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise CatalogueInvalid(f"{source} is not valid YAML: {e}") from e
    if not isinstance(raw, dict):
        raise CatalogueInvalid(
            f"{source} must be a mapping with 'version' and 'frameworks'",
            hint="start from the shipped catalogue: bastion compliance catalogue --yaml",
        )
    try:
        return CatalogueFile.model_validate(raw)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        why = "unknown field" if first["type"] == "extra_forbidden" else first["msg"]
        raise CatalogueInvalid(
            f"{source}: {where}: {why}",
            hint="fields: version, settings{key_rotation_days, max_global_admins, "
            "drift_window_days}, frameworks{NAME: {title, controls[{id, title, description, "
            "checks}]}}",
        ) from e


def _check_framework(source: str, name: str, spec: FrameworkSpec, known: Collection[str]) -> None:
    if not _FRAMEWORK.fullmatch(name):
        raise CatalogueInvalid(
            f"{source}: framework name {name!r} is not valid",
            hint="use 1-40 lowercase letters, digits or '-', e.g. 'iso-42001'",
        )
    for c in spec.controls:
        if not _ID.fullmatch(c.id):
            raise CatalogueInvalid(
                f"{source}: {name}: control id {c.id!r} is not valid",
                hint="use letters, digits, '§', spaces, '.', '-' and parentheses (max 40)",
            )
        unknown = [x for x in c.checks if x not in known]
        if unknown:
            raise CatalogueInvalid(
                f"{source}: {name} {c.id}: unknown check {unknown[0]!r}",
                hint="checks are Bastion's automated checks: " + ", ".join(sorted(known)),
            )


def load_catalogue(
    extension: str | None = None,
    *,
    known_checks: Collection[str],
    extension_source: str = "catalogue file",
) -> Catalogue:
    """The shipped catalogue, merged with ``extension`` (YAML text) when given."""
    files = [("shipped catalogue", _parse(shipped_text(), "shipped catalogue"))]
    if extension is not None:
        files.append((extension_source, _parse(extension, extension_source)))
    frameworks: dict[str, Framework] = {}
    settings = Settings()
    for source, f in files:
        settings = settings.model_copy(update=f.settings.model_dump(exclude_none=True))
        for name, spec in f.frameworks.items():
            _check_framework(source, name, spec, known_checks)
            frameworks[name] = _merge(source, name, frameworks.get(name), spec)
    doc: JSON = {
        "settings": settings.model_dump(),
        "frameworks": {
            n: {"title": fw.title, "controls": [c.model_dump(mode="json") for c in fw.controls]}
            for n, fw in sorted(frameworks.items())
        },
    }
    digest = hashlib.sha256(canonical_json(doc)).hexdigest()
    return Catalogue(frameworks, settings, digest, tuple(s for s, _ in files))


def _merge(source: str, name: str, old: Framework | None, spec: FrameworkSpec) -> Framework:
    if old is None and spec.title is None:
        raise CatalogueInvalid(
            f"{source}: new framework {name!r} has no title",
            hint="give a new framework a title (only shipped frameworks may omit it)",
        )
    if old is not None and spec.title is not None and spec.title != old.title:
        raise CatalogueInvalid(
            f"{source}: framework {name!r} is shipped as {old.title!r}; its title cannot change",
            hint="omit 'title' to add controls to a shipped framework",
        )
    controls = list(old.controls) if old else []
    seen = {c.id for c in controls}
    for c in spec.controls:
        if c.id in seen:
            raise CatalogueInvalid(
                f"{source}: framework {name!r} already has a control {c.id!r}",
                hint="a control id is used once per framework; choose a new id",
            )
        seen.add(c.id)
        controls.append(c)
    if not controls:
        raise CatalogueInvalid(f"{source}: framework {name!r} has no controls")
    return Framework(name, old.title if old else str(spec.title), tuple(controls))


__all__ = [
    "Catalogue",
    "CatalogueFile",
    "ControlSpec",
    "Framework",
    "Settings",
    "load_catalogue",
    "shipped_text",
]
