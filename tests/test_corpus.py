"""Every input of the hostile corpus (tests/corpus/) is refused with the parser's typed error.

The corpus is made by scripts/gen_corpus.py (its docstring says how); one test checks that the
files on disk are exactly what the script makes today, so the corpus cannot silently go stale
when a format changes. Then, per parser: every case raises the parser's documented error class
(an IdentityError / MessagingError / TransportError subclass) - never another exception type,
never success - and cases that name an `expect`ed class raise that one.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import identity.errors
import messaging.errors
import transport.errors
from tests.support.hostile import TARGETS, Target

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "corpus"
MINIMUM_CASES = 200

_ERROR_MODULES = (identity.errors, messaging.errors, transport.errors)


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_corpus", ROOT / "scripts" / "gen_corpus.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("gen_corpus", module)  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def load_cases(target: str) -> list[dict[str, Any]]:
    document = json.loads((CORPUS / target / "cases.json").read_text(encoding="ascii"))
    assert document["target"] == target
    cases: list[dict[str, Any]] = document["cases"]
    return cases


def case_input(target: str, case: dict[str, Any]) -> Any:
    if "hex" in case:
        return bytes.fromhex(case["hex"])
    if "file" in case:
        return (CORPUS / target / case["file"]).read_bytes()
    if "text" in case:
        return case["text"]
    return case["json"]


def _expected_class(name: str) -> type[Exception]:
    for module in _ERROR_MODULES:
        found = getattr(module, name, None)
        if isinstance(found, type) and issubclass(found, Exception):
            return found
    from identity import invitation, keystore
    from messaging import frames, padding, safety_number

    for module in (invitation, keystore, frames, padding, safety_number):
        found = getattr(module, name, None)
        if isinstance(found, type) and issubclass(found, Exception):
            return found
    raise AssertionError(f"unknown error class {name}")


def _check(target: Target, case: dict[str, Any]) -> str | None:
    """None if the case was refused as it should be, else a description of what went wrong."""
    data = case_input(target.name, case)
    try:
        error = target.attempt(data)
    except Exception as exc:  # the point of the corpus: report it, with its type
        return f"{case['name']}: untyped {type(exc).__name__}: {exc!s:.200}"
    if error is None:
        return f"{case['name']}: ACCEPTED"
    if not isinstance(error, target.package_error):
        return f"{case['name']}: {type(error).__name__} is not a {target.package_error.__name__}"
    expect = case.get("expect")
    if expect is not None and not isinstance(error, _expected_class(expect)):
        return f"{case['name']}: {type(error).__name__}, expected {expect}"
    return None


def test_corpus_on_disk_is_what_the_generator_makes() -> None:
    generator = _generator()
    for name, corpus in generator.build().items():
        folder = CORPUS / name
        wanted = generator.rendered(corpus)
        assert sorted(p.name for p in folder.iterdir() if p.name != "README.md") == sorted(
            wanted
        ), name
        for file, data in wanted.items():
            assert (folder / file).read_bytes() == data, f"{name}/{file}: run scripts/gen_corpus.py"


def test_corpus_is_large_and_covers_every_parser() -> None:
    counts = {name: len(load_cases(name)) for name in TARGETS}
    assert all(count >= 10 for count in counts.values()), counts
    assert sum(counts.values()) >= MINIMUM_CASES
    kinds = " ".join(case["name"] for name in TARGETS for case in load_cases(name))
    for needed in (
        "truncated",
        "deep-array-10000",
        "huge-bytes-2^63",
        "invalid-utf8",
        "non-shortest",
        "unsorted-keys",
        "indefinite",
        "duplicate-key",
        "float",
        "tag",
        "nan",
        "bool",
        "empty",
    ):
        assert needed in kinds, needed


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_every_hostile_input_gets_the_typed_error(target: str) -> None:
    problems = [
        problem
        for case in load_cases(target)
        if (problem := _check(TARGETS[target], case)) is not None
    ]
    assert problems == [], "\n".join(problems)
