"""`sciml report`: run each area's headline comparison and write `index.md` with tables and plots.

This is what `make demo` runs. The report is a registry of sections, one per area of sciml. A
section is a function `build(ctx: SectionContext) -> SectionResult` registered with
`@report_section(key, title, order=...)`; it writes its files through `ctx.path(name)` and
returns Markdown. Each area has its own module named
`sciml/cli/_report_<area>.py`, which is discovered and imported automatically, so a new area adds
its section by adding one module.

Rules for sections:
- a missing optional piece (a module of sciml not written yet, an optional dependency) raises
  `SectionSkipped("why")`: the report says so and carries on;
- a failed solve or check is shown as a failure in the section's tables and listed in
  `SectionResult.failures` (it appears in the report's summary); it is never dressed up as a
  success;
- any other exception is caught by the runner, shown in the report, and makes `sciml report`
  exit with status 1 after the report is written.
- a section module that cannot be imported becomes a section that says so: skipped when a
  third-party package is missing, failed otherwise.

Everything is written into a staging folder inside the output directory and moved into place
(one atomic rename per file, `index.md` last) only when all sections have run, so an interrupted
report leaves the previous one intact.
"""

import argparse
import dataclasses
import datetime
import importlib
import pkgutil
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ._common import (
    DTYPES,
    UsageError,
    add_run_options,
    configure_jax,
    int_at_least,
    limit_blas_threads,
    one_line,
)


class SectionSkipped(Exception):
    """Raised by a section when an optional piece it needs is missing."""


@dataclasses.dataclass
class SectionContext:
    """What a section gets to work with.

    Attributes:
        key: the section's key; file names are prefixed with it.
        workdir: the staging folder; write only through `path`.
        smoke: tiny sizes and a single timed run (for tests; seconds, not minutes).
        dtype: "float32" or "float64".
        seed: the base seed of every problem.
        progress: progress bar setting for `sciml._core._progress` (None: only on a terminal).
        env: `sciml._core._metrics.environment()`.
        log: print a line of progress on stderr.
    """

    key: str
    workdir: Path
    smoke: bool
    dtype: str
    seed: int
    progress: bool | None
    env: dict[str, Any]
    log: Callable[[str], None]
    files: list[str] = dataclasses.field(default_factory=list)

    def path(self, name: str) -> Path:
        """Where to write the output file `name` (it appears in the report as `<key>-<name>`)."""
        filename = f"{self.key}-{name}"
        if filename not in self.files:
            self.files.append(filename)
        return self.workdir / filename

    def image(self, name: str, alt: str) -> str:
        """Markdown that shows the PNG written to `self.path(name)`."""
        return f"![{alt}]({self.key}-{name})"


@dataclasses.dataclass
class SectionResult:
    """What a section produced.

    Attributes:
        markdown: the section body (without its `##` title).
        metrics: JSON-ready measurements, stored under the section's key in `metrics.json`.
        failures: one line per failed solve or check, listed in the report's summary.
    """

    markdown: str
    metrics: dict[str, Any] = dataclasses.field(default_factory=dict)
    failures: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass(frozen=True)
class Section:
    key: str
    title: str
    order: int
    build: Callable[[SectionContext], SectionResult]


_SECTIONS: dict[str, Section] = {}


def report_section(key: str, title: str, *, order: int = 100):
    """Register the decorated `build(ctx) -> SectionResult` as a report section.

    Args:
        key: a short slug (`"linear-solvers"`); used for `--only`, file names and metrics.
        title: the section heading.
        order: sections appear by increasing `order`, then key.
    """

    def register(build: Callable[[SectionContext], SectionResult]):
        existing = _SECTIONS.get(key)
        if existing is not None and existing.build is not build:
            raise ValueError(f"two report sections are registered under the key {key!r}.")
        _SECTIONS[key] = Section(key, title, order, build)
        return build

    return register


def section_modules() -> list[str]:
    """The names of the `sciml.cli._report_<area>` modules present in this installation."""
    package = importlib.import_module(__package__)
    return sorted(
        f"{__package__}.{module.name}"
        for module in pkgutil.iter_modules(package.__path__)
        if module.name.startswith("_report_")
    )


_import_module = importlib.import_module


def _import_section_module(name: str) -> None:
    """Import a section module; if that fails, register a section that reports why.

    A missing third-party package (an optional dependency of that area) makes the section
    skipped; any other import error (a bug) makes it fail, which the exit status reflects.
    """
    try:
        _import_module(name)
    except Exception as error:
        key = name.rsplit("._report_", 1)[-1].replace("_", "-")
        missing = getattr(error, "name", None) if isinstance(error, ModuleNotFoundError) else None
        optional = missing is not None and missing.split(".")[0] != "sciml"
        reason = f"{type(error).__name__}: {one_line(error)}"

        def build(ctx: SectionContext) -> SectionResult:
            if optional:
                raise SectionSkipped(f"optional dependency '{missing}' is not installed")
            raise RuntimeError(f"could not import {name}: {reason}")

        _SECTIONS.setdefault(key, Section(key, f"{key} (not importable)", 1000, build))


def available_sections() -> list[Section]:
    """All registered sections, after importing every `sciml.cli._report_<area>` module."""
    for name in section_modules():
        _import_section_module(name)
    return sorted(_SECTIONS.values(), key=lambda section: (section.order, section.key))


# --------------------------------------------------------------------------------------------
# The command


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "report",
        help="run every area's headline comparison; write index.md, plots and metrics.json",
        description="Run each area's headline comparison and write OUT/index.md (Markdown "
        "tables and PNG plots) and OUT/metrics.json. This is what `make demo` runs.",
    )
    parser.add_argument(
        "--out", type=Path, default=Path("report"), help="output directory (default: report)"
    )
    parser.add_argument(
        "--force", action="store_true", help="write into --out even if it is not empty"
    )
    parser.add_argument(
        "--smoke", action="store_true", help="tiny sizes and one timed run (seconds; for tests)"
    )
    parser.add_argument(
        "--only",
        action="append",
        default=None,
        metavar="SECTION",
        help="run only this section (repeatable); see --list",
    )
    parser.add_argument("--list", action="store_true", help="list the sections and exit")
    parser.add_argument("--dtype", choices=DTYPES, default="float64", help="default: float64")
    parser.add_argument(
        "--seed", type=int_at_least(0), default=0, help="seed of every problem (default: 0)"
    )
    add_run_options(parser)
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace) -> int:
    sections = available_sections()
    if args.list:
        for section in sections:
            print(f"{section.key:20s} {section.title}")
        return 0
    if args.only:
        known = {section.key for section in sections}
        unknown = [key for key in args.only if key not in known]
        if unknown:
            raise UsageError(
                f"unknown report section {', '.join(map(repr, unknown))}; choose from "
                f"{', '.join(sorted(known))}."
            )
        sections = [section for section in sections if section.key in args.only]

    limit_blas_threads()
    from sciml._core._metrics import prepare_output_dir

    out = prepare_output_dir(args.out, force=args.force, force_hint="--force")
    configure_jax(platform=args.platform, x64=args.dtype == "float64")

    from sciml._core._metrics import (
        atomic_write_text,
        describe_environment,
        environment,
        jsonable,
        write_json,
    )

    env = environment()
    progress = False if args.no_progress else None
    started = time.perf_counter()
    created = datetime.datetime.now(datetime.timezone.utc)

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    log(
        f"sciml report → {out}/index.md ({'smoke' if args.smoke else 'full'} sizes, "
        f"{args.dtype}) on {describe_environment(env)}"
    )
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=out))
    try:
        outcomes = []
        for section in sections:
            ctx = SectionContext(
                key=section.key,
                workdir=staging,
                smoke=args.smoke,
                dtype=args.dtype,
                seed=args.seed,
                progress=progress,
                env=env,
                log=log,
            )
            log(f"[{section.key}] {section.title}")
            outcomes.append(_run_section(section, ctx))
        elapsed = time.perf_counter() - started

        errors = [o for o in outcomes if o["status"] == "error"]
        failures = [line for o in outcomes for line in o["failures"]]
        metrics = {
            "schema": 1,
            "command": "sciml report" + (" --smoke" if args.smoke else ""),
            "created": created.isoformat(timespec="seconds"),
            "environment": env,
            "dtype": args.dtype,
            "smoke": args.smoke,
            "seed": args.seed,
            "timings": {"total_s": elapsed},
            "sections": {
                o["key"]: {k: v for k, v in o.items() if k not in ("markdown",)} for o in outcomes
            },
            "failures": failures,
        }
        markdown = _index_markdown(
            outcomes,
            env=env,
            args=args,
            created=created,
            elapsed=elapsed,
            describe=describe_environment(env),
        )
        moved = []
        for outcome in outcomes:
            for name in outcome["files"]:
                if (staging / name).exists():
                    (staging / name).replace(out / name)
                    moved.append(name)
        write_json(out / "metrics.json", jsonable(metrics))
        atomic_write_text(out / "index.md", markdown)
    finally:
        shutil.rmtree(staging, ignore_errors=True)

    log(
        f"wrote {out / 'index.md'}, {out / 'metrics.json'} and {len(moved)} other files "
        f"in {elapsed:.0f} s"
    )
    for line in failures:
        log(f"  not successful: {line}")
    if errors:
        for outcome in errors:
            log(f"  section '{outcome['key']}' raised: {outcome['error']}")
        print(
            f"sciml: error: {len(errors)} report section(s) failed with an exception "
            f"({', '.join(o['key'] for o in errors)}); see {out / 'index.md'}",
            file=sys.stderr,
        )
        return 1
    return 0


def _run_section(section: Section, ctx: SectionContext) -> dict[str, Any]:
    start = time.perf_counter()
    outcome: dict[str, Any] = {
        "key": section.key,
        "title": section.title,
        "status": "ok",
        "error": None,
        "markdown": "",
        "metrics": {},
        "failures": [],
        "files": ctx.files,
    }
    try:
        result = section.build(ctx)
    except SectionSkipped as reason:
        outcome.update(status="skipped", error=one_line(reason))
        outcome["markdown"] = f"*Skipped: {one_line(reason)}*"
    except KeyboardInterrupt:
        raise
    except Exception as error:  # shown in the report and reflected in the exit status
        outcome.update(
            status="error",
            error=f"{type(error).__name__}: {one_line(error)}",
            traceback=traceback.format_exc(),
        )
        outcome["markdown"] = (
            f"**This section failed with an exception**: `{type(error).__name__}: "
            f"{one_line(error)}`. The traceback is in `metrics.json` "
            f"(`sections.{section.key}.traceback`)."
        )
    else:
        outcome.update(
            markdown=result.markdown, metrics=result.metrics, failures=list(result.failures)
        )
        if result.failures:
            outcome["status"] = "ok, with failures"
    outcome["elapsed_s"] = time.perf_counter() - start
    return outcome


def _index_markdown(outcomes, *, env, args, created, elapsed, describe) -> str:
    versions = env["versions"]
    sizes = (
        "**smoke sizes** (a quick check, not representative timings)"
        if args.smoke
        else "default sizes"
    )
    lines = [
        "# sciml report",
        "",
        f"Generated by `sciml report{' --smoke' if args.smoke else ''}` (sciml "
        f"{versions['sciml']}) on {created:%Y-%m-%d %H:%M} UTC in {elapsed:.0f} s, "
        f"{sizes}, "
        f"{args.dtype}, seed {args.seed}.",
        "",
        f"**Machine**: {describe}. JAX devices: {', '.join(env['devices'])}.",
        "",
        "Timings are wall-clock seconds on this machine: *compile* is JAX's trace + lower + "
        "XLA compile of the whole solve (paid once per shape and dtype), *run* the median of "
        "the timed runs (JAX after one untimed warm-up run). SciPy runs on the host CPU with "
        f"OPENBLAS_NUM_THREADS={env['env'].get('OPENBLAS_NUM_THREADS') or 'unset'}: threaded "
        "BLAS-1 calls on vectors this short gain nothing and contend with XLA's thread pool. "
        "Numbers from a shared or busy machine are noisy; compare methods within one report, "
        "not across machines.",
        "",
        "| section | status | time [s] |",
        "|---|---|---:|",
    ]
    for o in outcomes:
        status = o["status"] if o["status"] != "error" else f"**error**: {o['error']}"
        if o["status"] == "skipped":
            status = f"skipped: {o['error']}"
        lines.append(f"| [{o['title']}](#{o['key']}) | {status} | {o['elapsed_s']:.1f} |")
    failures = [line for o in outcomes for line in o["failures"]]
    if failures:
        lines += ["", "**Not successful** (shown as failures in the tables below):", ""]
        lines += [f"- {line}" for line in failures]
    for o in outcomes:
        lines += ["", f'<a id="{o["key"]}"></a>', "", f"## {o['title']}", "", o["markdown"]]
    return "\n".join(lines).rstrip() + "\n"
