"""Read a PEtab (format version 1) problem: the YAML file and its tab-separated tables."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from scimlkit.fit.petab.errors import PEtabError

_REQUIRED = {
    "condition": ["conditionId"],
    "measurement": ["observableId", "simulationConditionId", "measurement", "time"],
    "observable": ["observableId", "observableFormula", "noiseFormula"],
    "parameter": [
        "parameterId",
        "parameterScale",
        "lowerBound",
        "upperBound",
        "nominalValue",
        "estimate",
    ],
}


@dataclass
class PEtabTables:
    """The tables of one PEtab problem, as pandas DataFrames, plus the SBML path."""

    yaml_path: Path
    sbml_path: Path
    conditions: pd.DataFrame
    measurements: pd.DataFrame
    observables: pd.DataFrame
    parameters: pd.DataFrame


def read_tables(yaml_path: str | Path) -> PEtabTables:
    """Read the YAML file of a PEtab problem and every table it names.

    Example:
        >>> t = read_tables("Boehm_JProteomeRes2014/Boehm_JProteomeRes2014.yaml")  # doctest: +SKIP
        >>> t.measurements.shape  # doctest: +SKIP
        (48, 8)
    """
    import yaml

    yaml_path = Path(yaml_path)
    if not yaml_path.is_file():
        raise PEtabError(f"PEtab YAML file {yaml_path} does not exist")
    try:
        spec = yaml.safe_load(yaml_path.read_text())
    except yaml.YAMLError as exc:
        raise PEtabError(f"{yaml_path} is not valid YAML: {exc}") from exc
    if not isinstance(spec, dict) or "problems" not in spec or "parameter_file" not in spec:
        raise PEtabError(
            f"{yaml_path} is not a PEtab problem file (needs 'parameter_file' and 'problems')"
        )
    version = str(spec.get("format_version", "1"))
    if not version.startswith("1"):
        raise PEtabError(f"{yaml_path}: PEtab format_version {version} is not supported (only 1.x)")
    problems = spec["problems"]
    if len(problems) != 1:
        raise PEtabError(f"{yaml_path} holds {len(problems)} problems; exactly one is supported")
    prob = problems[0]
    base = yaml_path.parent
    sbml = prob.get("sbml_files") or []
    if len(sbml) != 1:
        raise PEtabError(f"{yaml_path}: exactly one SBML file is supported, found {len(sbml)}")

    def load(kind: str, files: list[str] | str) -> pd.DataFrame:
        files = [files] if isinstance(files, str) else list(files or [])
        if not files:
            raise PEtabError(f"{yaml_path} names no {kind} table")
        frames = []
        for f in files:
            p = base / f
            if not p.is_file():
                raise PEtabError(f"{kind} table {p} (named in {yaml_path.name}) does not exist")
            frames.append(pd.read_csv(p, sep="\t", dtype={"conditionId": str, "parameterId": str}))
        df = pd.concat(frames, ignore_index=True)
        df.columns = [str(c).strip() for c in df.columns]
        missing = [c for c in _REQUIRED[kind] if c not in df.columns]
        if missing:
            raise PEtabError(f"{kind} table of {yaml_path.name} lacks required column(s) {missing}")
        return df

    return PEtabTables(
        yaml_path,
        base / sbml[0],
        load("condition", prob.get("condition_files")),
        load("measurement", prob.get("measurement_files")),
        load("observable", prob.get("observable_files")),
        load("parameter", spec["parameter_file"]),
    )


def split_overrides(cell: object) -> list[str | float]:
    """Split a measurement table's `observableParameters`/`noiseParameters` cell.

    Returns numbers as floats and parameter ids as strings; empty cells give `[]`.
    """
    if cell is None or (isinstance(cell, float) and cell != cell):
        return []
    if isinstance(cell, int | float):
        return [float(cell)]
    out: list[str | float] = []
    for part in str(cell).split(";"):
        part = part.strip()
        if not part:
            continue
        try:
            out.append(float(part))
        except ValueError:
            out.append(part)
    return out


def is_missing(value: object) -> bool:
    """True for an empty table cell (NaN or blank)."""
    if value is None:
        return True
    if isinstance(value, float):
        return value != value
    return isinstance(value, str) and not value.strip()
