"""Reading an object gives exactly what the parser gave before it was made faster (issue 18).

tests/fixtures/status-parse/cases.json holds Flux objects and, for each, what
`parse_flux_object` returned at commit c0d3c63, before the parser was tuned for cold syncs of
100,000 objects: the benchmark fleet's shapes (benchmarks/cache_bench.py ClusterBuilder), every
object of tests/fixtures/parity and of the demo fleet, hand-made edge cases, and mutants of
those with fields missing, mistyped or odd (as a careless dump or an old controller may write
them). Every field of every result must be equal and of the same type; see the fixture's
README.md for how it was made.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import enum
import gzip
import json
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest

from bot.domain.status import parse_flux_object

CASES_FILE = Path(__file__).resolve().parent / "fixtures" / "status-parse" / "cases.json.gz"


class _Text(str):
    """A str subclass: what a caller other than the JSON or YAML decoder might pass."""


def decode(value: Any) -> Any:
    """A case's input with its tagged values (`{"@datetime": ...}`, ...) made real."""
    if isinstance(value, list):
        return [decode(v) for v in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        ((tag, inner),) = value.items()
        if tag == "@datetime":  # an unquoted YAML timestamp
            return dt.datetime.fromisoformat(inner)
        if tag == "@date":  # an unquoted YAML date
            return dt.date.fromisoformat(inner)
        if tag == "@mapping":  # a Mapping that is not a dict
            return MappingProxyType(decode(inner))
        if tag == "@text":
            return _Text(inner)
        if tag == "@tuple":
            return tuple(decode(v) for v in inner)
    return {k: decode(v) for k, v in value.items()}


def mutated(base: Any, mutations: list[list[Any]]) -> Any:
    """`base` with each `[path, value]` set (`[path]` alone deletes the key)."""
    obj = copy.deepcopy(base)
    for mutation in mutations:
        path = mutation[0]
        parent = obj
        for step in path[:-1]:
            parent = parent[step]
        if len(mutation) == 1:
            del parent[path[-1]]
        else:
            parent[path[-1]] = decode(mutation[1])
    return obj


def canonical(value: Any) -> Any:
    """`value` as JSON that also records every type: equal canonical forms, equal values."""
    kind = type(value)
    if value is None or kind in (bool, int, str):
        return value
    if kind is float:
        return {"@float": repr(value)}
    if isinstance(value, enum.Enum):
        return {f"@{kind.__name__}": value.value}
    if kind is tuple:
        return {"@tuple": [canonical(v) for v in value]}
    if kind is frozenset:
        return {"@frozenset": sorted(canonical(v) for v in value)}
    if kind is dt.datetime:
        return {"@datetime": value.isoformat(), "tz": repr(value.tzinfo)}
    if kind is dt.timedelta:
        return {"@timedelta": [value.days, value.seconds, value.microseconds]}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: canonical(getattr(value, f.name)) for f in dataclasses.fields(value)}
        fields.pop("_health", None)
        return {"@": kind.__name__, **fields}
    raise TypeError(f"no canonical form for {kind.__name__}")


def outcome(obj: Any, kind: str | None) -> Any:
    """What parsing `obj` gives: the object (and its derived verdicts), or the error raised."""
    try:
        parsed = parse_flux_object(obj, kind)
    except ValueError as err:
        return {"@raises": f"ValueError: {err}"}
    return {
        **canonical(parsed),
        "health": canonical(parsed.health),
        "kstatus": canonical(parsed.kstatus),
        "has_ready_condition": parsed.has_ready_condition,
        "drifted": parsed.drifted,
        "generation_lag": parsed.generation_lag,
    }


def load_cases() -> list[dict[str, Any]]:
    """Every case of the fixture, its input decoded (mutants built from their base)."""
    cases: list[dict[str, Any]] = json.loads(gzip.decompress(CASES_FILE.read_bytes()))["cases"]
    for case in cases:
        source = case["input"]
        if "base" in source:
            case["object"] = mutated(cases[source["base"]]["object"], source["mutate"])
        else:
            case["object"] = decode(source)
    return cases


CASES = load_cases()


@pytest.mark.parametrize("case", CASES, ids=[f"{i}-{c['what']}" for i, c in enumerate(CASES)])
def test_an_object_reads_exactly_as_before(case: dict[str, Any]) -> None:
    assert outcome(case["object"], case["kind"]) == case["expected"]


def test_objects_read_again_in_another_order_read_the_same() -> None:
    # The parser shares equal immutable parts between objects: what an earlier object left in
    # a cache must never leak into a later one.
    for case in reversed(CASES):
        assert outcome(case["object"], case["kind"]) == case["expected"], case["what"]


def test_objects_read_the_same_while_the_shared_parts_are_forgotten() -> None:
    # The caches that share timestamps, references and safeguards are bounded (emptied when
    # full): objects with new timestamps, owners and sources between the cases fill them
    # several times over.
    filler = 0
    for case in CASES * 3:
        for _ in range(8):
            filler += 1
            moment = dt.datetime(2026, 1, 1, tzinfo=dt.UTC) + dt.timedelta(seconds=filler)
            parse_flux_object(
                {
                    "kind": "Kustomization",
                    "metadata": {
                        "name": f"filler-{filler}",
                        "namespace": "fill",
                        "creationTimestamp": moment.isoformat(),
                        "labels": {"kustomize.toolkit.fluxcd.io/name": f"owner-{filler}"},
                    },
                    "spec": {"sourceRef": {"kind": "GitRepository", "name": f"src-{filler}"}},
                    "status": {
                        "conditions": [
                            {"type": "Ready", "status": "True", "lastTransitionTime": f"{filler}"}
                        ],
                        "inventory": {"entries": [{"id": f"fill_f{filler}__Kind{filler}"}]},
                    },
                }
            )
        assert outcome(case["object"], case["kind"]) == case["expected"], case["what"]
    # Two timestamps and two references per filler: each cache was emptied at least 3 times.
    assert filler > 3 * 8192 / 2


def test_the_cases_cover_every_kind_odd_input_and_refusals() -> None:
    parsed = [c["expected"] for c in CASES if "@raises" not in c["expected"]]
    assert {p["kind"] for p in parsed} >= {
        "GitRepository", "OCIRepository", "HelmRepository", "HelmChart", "Bucket",
        "ArtifactGenerator", "ExternalArtifact", "Kustomization", "HelmRelease",
        "ImageRepository", "ImagePolicy", "ImageUpdateAutomation", "Receiver", "Provider",
        "Alert",
    }  # fmt: skip
    assert {p["health"]["@Health"] for p in parsed} == {
        "failing", "progressing", "suspended", "ready"
    }  # fmt: skip
    assert sum("@raises" in c["expected"] for c in CASES) >= 3
    assert sum("base" in c["input"] for c in CASES) >= 200  # mutants
    assert sum(c["what"].startswith("benchmark fleet") for c in CASES) >= 50
