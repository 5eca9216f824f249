"""`sciml info`: versions, devices and precision of this installation."""

import argparse
import json

from ._common import add_run_options, configure_jax


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "info",
        help="show versions, devices and whether x64 is on",
        description="Show the versions of sciml and its dependencies, JAX's devices and "
        "whether 64-bit mode is on.",
    )
    parser.add_argument("--json", action="store_true", help="print the information as JSON")
    add_run_options(parser)
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace) -> int:
    configure_jax(platform=args.platform)
    from sciml._core._metrics import environment, jsonable

    env = environment()
    if args.json:
        print(json.dumps(jsonable(env), indent=2))
        return 0
    versions = env["versions"]
    rows = [
        ("sciml", versions["sciml"]),
        ("python", f"{env['python']} ({env['platform']})"),
        ("jax / jaxlib", f"{versions['jax']} / {versions['jaxlib']}"),
        ("numpy / scipy", f"{versions['numpy']} / {versions['scipy']}"),
        ("equinox / optax", f"{versions['equinox']} / {versions['optax']}"),
        ("backend", env["backend"]),
        ("devices", f"{env['device_count']} × {env['device_kind']}: " + ", ".join(env["devices"])),
        ("processes", str(env["process_count"])),
        ("cpu cores", str(env["cpu_count"])),
        ("x64", "on" if env["x64"] else "off (float64 needs JAX_ENABLE_X64=1)"),
    ]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name.ljust(width)}  {value}")
    return 0
