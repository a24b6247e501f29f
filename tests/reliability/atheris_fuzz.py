"""Coverage-guided fuzzing of one didlink parser with atheris (libFuzzer for Python).

    .venv/bin/python -m tests.reliability.atheris_fuzz TARGET [libFuzzer options] [SEED_DIR]

TARGET is a name of tests.support.hostile.TARGETS (the tests/corpus/ folder names). Each input
is given to the parser (decoded as UTF-8 with surrogateescape for the text parsers); the parser
must accept it or raise its typed error. Any other exception is a crash: atheris prints it with
the input that caused it and exits non-zero. tests/reliability/test_long_fuzz.py runs every
target this way (atheris is not a project dependency: `.venv/bin/pip install atheris`).
"""

from __future__ import annotations

import sys

import atheris  # type: ignore[import-untyped,import-not-found,unused-ignore]

with atheris.instrument_imports():
    from tests.support.hostile import TARGETS

TEXT_TARGETS = frozenset({"did", "token", "safety_qr"})


def main() -> None:
    name = sys.argv[1]
    target = TARGETS[name]

    def one_input(data: bytes) -> None:
        value: bytes | str = data
        if name in TEXT_TARGETS:
            value = data.decode("utf-8", "surrogateescape")
        error = target.attempt(value)
        if error is not None and not isinstance(error, target.package_error):
            raise AssertionError(f"{type(error).__name__} is not a {target.package_error}")

    atheris.Setup([sys.argv[0], *sys.argv[2:]], one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
