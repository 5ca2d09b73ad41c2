"""`scimlkit data list | info | fetch | path | verify | hash | purge | du` (``--json`` where tabular)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import store
from .checksum import file_hash
from .errors import NotInStore
from .resolve import fetch, purge, verify
from .spec import catalogue, get


def _fmt_size(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return str(n)


def _table(rows: list[list[str]], header: list[str]) -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip())


def _emit(args: argparse.Namespace, data, rows: list[list[str]], header: list[str]) -> None:
    if args.json:
        json.dump(data, sys.stdout, indent=1)
        print()
    elif rows:
        _table(rows, header)


def _cmd_list(args: argparse.Namespace) -> int:
    deps = catalogue()
    data, rows = [], []
    for name, dep in deps.items():
        folder = store.find(name)
        entry = {"name": name, "files": len(dep.files), "pinned": dep.pinned, "terms": bool(dep.message),
                 "installed": str(folder) if folder else None, "description": dep.description,
                 "source": dep.source, "size": dep.size, "licence": dep.licence}
        data.append(entry)
        size = _fmt_size(dep.size) if dep.size else "?"
        rows.append([name, str(len(dep.files)), size, dep.licence or "?", "yes" if folder else "no", dep.description])
    _emit(args, data, rows, ["NAME", "FILES", "SIZE", "LICENCE", "INSTALLED", "DESCRIPTION"])
    if not deps and not args.json:
        print("no datasets registered (install scimlkit.datasets, or declare some: see `scimlkit data --help`)")
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    dep = get(args.name)
    folder = store.find(dep.name)
    stamp = store.read_json(store.stamp_path(folder.parent, folder.name)) if folder else None
    info = {
        "name": dep.name, "description": dep.description, "source": dep.source, "message": dep.message,
        "licence": dep.licence, "citation": dep.citation, "download_size": dep.size,
        "files": [{"file": f.filename, "urls": list(f.urls), "hash": f.hash} for f in dep.files],
        "unpack": sorted(dep.unpack), "installed": str(folder) if folder else None,
        "installed_at": (stamp or {}).get("installed"),
    }
    if folder:
        info["size"], info["file_count"] = store.folder_size(folder)
    if args.json:
        print(json.dumps(info, indent=1))
        return 0
    print(f"{dep.name}: {dep.description}" if dep.description else dep.name)
    print(f"  declared in: {dep.source}")
    if dep.licence:
        print(f"  licence: {dep.licence}")
    if dep.citation:
        print(f"  cite: {dep.citation}")
    if dep.size:
        print(f"  download size: {_fmt_size(dep.size)}")
    for f in dep.files:
        print(f"  file {f.filename}  {f.hash or '(no hash)'}")
        for url in f.urls:
            print(f"    {url}")
    if dep.unpack:
        print(f"  unpack: {', '.join(sorted(dep.unpack))}")
    if folder:
        print(f"  installed: {folder} ({_fmt_size(info['size'])}, {info['file_count']} files, {info['installed_at']})")
    else:
        print("  installed: no")
    if dep.message:
        print("  terms:\n    " + dep.message.strip().replace("\n", "\n    "))
    return 0


def _cmd_fetch(args: argparse.Namespace) -> int:
    for name in args.names:
        print(fetch(name, force=args.force, accept_terms=True if args.accept_terms else None))
    return 0


def _cmd_path(args: argparse.Namespace) -> int:
    name, _, sub = args.name.strip("/").partition("/")
    folder = store.find(name)
    if folder is None:
        raise NotInStore(f"dataset {name!r} is not installed; fetch it with `scimlkit data fetch {name}`")
    path = folder / sub if sub else folder
    if not path.exists():
        raise NotInStore(f"{sub!r} is not in dataset {name!r} at {folder}")
    print(path)
    return 0


def _cmd_verify(args: argparse.Namespace) -> int:
    names = args.names or sorted({n for root in store.load_path() for n in store.installed(root)})
    reports = [verify(n) for n in names]
    rows = [[r.name, "ok" if r.ok else "FAILED", str(r.checked), "; ".join(r.problems) or
             ("" if r.stamped else "no stamp: installed by hand, nothing to compare")] for r in reports]
    _emit(args, [r.as_dict() for r in reports], rows, ["NAME", "STATUS", "FILES", "PROBLEMS"])
    if not reports and not args.json:
        print("no datasets installed")
    return 0 if all(r.ok for r in reports) else 1


def _cmd_hash(args: argparse.Namespace) -> int:
    data, rows = [], []
    for f in args.files:
        p = Path(f)
        if not p.is_file():
            raise NotInStore(f"{f}: no such file")
        digest = f"{args.algorithm}:{file_hash(p, args.algorithm)}"
        data.append({"file": f, "hash": digest, "size": p.stat().st_size})
        rows.append([digest, f])
    if args.json:
        print(json.dumps(data, indent=1))
    else:
        for digest, f in rows:
            print(f"{digest}  {f}")
    return 0


def _cmd_purge(args: argparse.Namespace) -> int:
    code = 0
    for name in args.names:
        if purge(name):
            print(f"purged {name} from {store.primary_store()}")
        else:
            print(f"{name}: not in the primary store {store.primary_store()}", file=sys.stderr)
            code = 1
    return code


def _cmd_du(args: argparse.Namespace) -> int:
    data, rows = [], []
    for root in store.load_path():
        writable = root == store.primary_store()
        for name in store.installed(root):
            size, count = store.folder_size(root / name)
            data.append({"name": name, "store": str(root), "bytes": size, "files": count, "writable": writable})
            rows.append([name, _fmt_size(size), str(count), str(root) + ("" if writable else " (read-only)")])
    partial = store.primary_store() / store.META / "partial"
    part_bytes = store.folder_size(partial)[0] if partial.is_dir() else 0
    if args.json:
        print(json.dumps({"datasets": data, "partial_bytes": part_bytes}, indent=1))
        return 0
    if rows:
        _table(rows, ["NAME", "SIZE", "FILES", "STORE"])
    else:
        print("no datasets installed")
    total = sum(d["bytes"] for d in data)
    print(f"total {_fmt_size(total)}" + (f"; partial downloads {_fmt_size(part_bytes)}" if part_bytes else ""))
    return 0


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the ``scimlkit data`` subcommands to `parser`."""
    sub = parser.add_subparsers(dest="data_command", metavar="{list,info,fetch,path,verify,hash,purge,du}")

    p = sub.add_parser("list", help="list registered datasets")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=_cmd_list)

    p = sub.add_parser("info", help="show a dataset's declaration and install state")
    p.add_argument("name")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_info)

    p = sub.add_parser("fetch", help="download, verify and install datasets; print their folders")
    p.add_argument("names", nargs="+", metavar="NAME")
    p.add_argument("--force", action="store_true", help="fetch again even if installed")
    p.add_argument("--accept-terms", action="store_true", help="accept the datasets' terms")
    p.set_defaults(func=_cmd_fetch)

    p = sub.add_parser("path", help="print the local path of NAME or NAME/sub/file (no download)")
    p.add_argument("name")
    p.set_defaults(func=_cmd_path)

    p = sub.add_parser("verify", help="re-hash installed datasets against their stamps")
    p.add_argument("names", nargs="*", metavar="NAME")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_verify)

    p = sub.add_parser("hash", help="print 'alg:hex' hashes of files, ready to paste into a declaration")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("-a", "--algorithm", default="sha256")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_hash)

    p = sub.add_parser("purge", help="delete datasets from the primary store")
    p.add_argument("names", nargs="+", metavar="NAME")
    p.set_defaults(func=_cmd_purge)

    p = sub.add_parser("du", help="disk usage of the installed datasets")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_du)


def main(argv: list[str] | None = None) -> int:
    """``python -m scimlkit.data.cli ...``: the data commands alone (no other capability imported)."""
    from ..errors import ScimlkitError

    parser = argparse.ArgumentParser(prog="scimlkit data", description="declare, fetch, verify and cache datasets")
    configure(parser)
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except ScimlkitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
