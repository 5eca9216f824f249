"""Importing sciml (or a subpackage) imports neither matplotlib nor tqdm; the CLI not even JAX."""

import subprocess
import sys

import pytest

CHECK = """
import sys
{imports}
loaded = sorted(m for m in {forbidden!r} if m in sys.modules)
assert not loaded, loaded
"""


@pytest.mark.parametrize(
    "imports, forbidden",
    [
        ("import sciml", ("jax", "matplotlib", "tqdm")),
        ("import sciml.cli, sciml.cli._common", ("jax", "matplotlib", "tqdm")),
        ("import sciml.solvers, sciml.problems, sciml.linalg, sciml._core", ("matplotlib", "tqdm")),
        (
            "import sciml._core._progress, sciml._core._plotting, sciml._core._metrics",
            ("matplotlib", "tqdm"),
        ),
    ],
)
def test_import_is_light(imports, forbidden):
    code = CHECK.format(imports=imports, forbidden=forbidden)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
