"""Generate docs/datasets/catalogue.md from the registered declarations.

Run: `python scripts/gen_dataset_catalogue.py` (the test suite checks the page is current).
"""

from __future__ import annotations

import sys
from pathlib import Path

PAGE = Path(__file__).resolve().parents[1] / "docs" / "datasets" / "catalogue.md"


def _size(n: int | None) -> str:
    if not n:
        return "?"
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return "?"


def render() -> str:
    import scimlkit.datasets  # noqa: F401  (registers the declarations)
    from scimlkit.data import catalogue

    deps = [
        d
        for d in catalogue().values()
        if d.source == "python" and (not d.name.startswith("Rdatasets-") or d.name == "Rdatasets-index")
    ]
    lines = [
        "# Dataset catalogue",
        "",
        "Generated from the declarations in `scimlkit.datasets` by `scripts/gen_dataset_catalogue.py`;",
        "do not edit by hand. `scimlkit data list` shows the same catalogue, with what is cached.",
        "",
        "| name | description | files | size | licence | hashes |",
        "|---|---|---|---|---|---|",
    ]
    for d in deps:
        pinned = "all pinned" if d.pinned else "recorded on first fetch"
        lines.append(
            f"| `{d.name}` | {d.description} | {len(d.files)} | {_size(d.size)} | {d.licence} | {pinned} |"
        )
    lines += ["", "## Citations", ""]
    for d in deps:
        lines += [f"- **{d.name}**: {d.citation}"]
    lines += ["", "## Sources", ""]
    for d in deps:
        lines += [f"### {d.name}", ""]
        for f in d.files:
            lines += [f"- `{f.filename}` ({f.hash or 'no published hash'})"]
            lines += [f"    - <{u}>" for u in f.urls]
        lines += [""]
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":
    text = render()
    if "--check" in sys.argv:
        sys.exit(0 if PAGE.read_text() == text else 1)
    PAGE.write_text(text)
    print(f"wrote {PAGE}")
