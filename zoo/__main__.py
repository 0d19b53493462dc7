"""Command line for the zoo.

    python -m zoo list                     # every model, with where its weights are now
    python -m zoo pull NAME [--path FILE]  # resolve NAME through the chain, print the file
    python -m zoo verify [NAME ...]        # check local copies against the pinned digests
    python -m zoo push NAME --repo ID      # upload NAME's files (banks too) and a model card (token: $HF_TOKEN)
"""

from __future__ import annotations

import argparse
import sys

from . import hub, publish
from .manifest import VGG16_FIRST_FILTER, ModelSpec
from .registry import get_spec, list_models
from .resolve import WeightsNotFoundError, local_file_name, local_weights_dir


def _where(spec: ModelSpec) -> str:
    places = []
    if (local_weights_dir() / local_file_name(spec)).is_file():
        places.append("local")
    if spec.embedded_path is not None and spec.embedded_path.is_file():
        places.append("embedded")
    places.append(f"hub:{spec.repo_id}" if spec.on_hub else "not on hub")
    return ", ".join(places)


def _cmd_list(args: argparse.Namespace) -> int:
    rows = [("name", "kind", "method", "license", "where")]
    rows += [(s.name, s.kind, s.method, s.license, _where(s)) for s in list_models()]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    return 0


def _cmd_pull(args: argparse.Namespace) -> int:
    found, files = publish.pull(args.name, args.path)
    print(f"{args.name}: {found.path}\n  from {found.source}")
    for in_repo, path in list(files.items())[1:]:
        print(f"  {in_repo}: {path}")
    return 0


def _verify_one(spec: ModelSpec) -> list[str]:
    problems = []
    if spec.embedded_path is not None:
        if not spec.embedded_path.is_file():
            problems.append(f"embedded file zoo/weights/{spec.embedded} is missing")
        elif spec.sha256 and hub.file_sha256(spec.embedded_path) != spec.sha256:
            problems.append(f"embedded file zoo/weights/{spec.embedded} does not match its sha256")
    local = local_weights_dir() / local_file_name(spec)
    if local.is_file() and spec.kind == "vgg16-features":
        from safetensors import safe_open

        with safe_open(str(local), framework="pt") as f:
            first = f.get_tensor("features.0.weight")[0, 0, 0].tolist()
        if any(abs(a - b) > 1e-4 for a, b in zip(first, VGG16_FIRST_FILTER)):
            problems.append(f"local copy {local} has first filter {first}, not VGG-16's")
    return problems


def _cmd_verify(args: argparse.Namespace) -> int:
    specs = [get_spec(n) for n in args.names] if args.names else list_models()
    failed = 0
    for spec in specs:
        problems = _verify_one(spec)
        failed += bool(problems)
        print(f"{'FAIL' if problems else 'ok  '} {spec.name}" + "".join(f"\n     {p}" for p in problems))
    return 1 if failed else 0


def _cmd_push(args: argparse.Namespace) -> int:
    commit = publish.push(args.name, args.repo, path=args.path)
    print(f"pushed {args.name} to {args.repo}; commit {commit}")
    print("pin it in zoo/manifest.py: repo_id, revision and sha256 of this entry")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m zoo", description="The style-transfer model zoo.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="list the models").set_defaults(run=_cmd_list)
    p = sub.add_parser("pull", help="resolve a model's weights through the chain")
    p.add_argument("name")
    p.add_argument("--path", help="an explicit weights file to use")
    p.set_defaults(run=_cmd_pull)
    p = sub.add_parser("verify", help="check local copies against the manifest")
    p.add_argument("names", nargs="*")
    p.set_defaults(run=_cmd_verify)
    p = sub.add_parser("push", help="upload a model to a Hub repo (token from $HF_TOKEN)")
    p.add_argument("name")
    p.add_argument("--repo", required=True, help="owner/name of the Hub model repo")
    p.add_argument("--path", help="upload this file instead of the resolved one")
    p.set_defaults(run=_cmd_push)
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except (KeyError, WeightsNotFoundError, hub.HubError, ValueError) as e:
        print(f"error: {e.args[0] if isinstance(e, KeyError) else e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
