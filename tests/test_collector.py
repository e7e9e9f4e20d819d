"""The cyclic garbage collector stays off listings being parsed and off what the cold sync
built (bot/collector.py): a listing's decoded JSON holds no cycles and is freed by
reference counting, so scanning it only costs CPU."""

from __future__ import annotations

import gc
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence

import pytest

from bot.collector import collection_paused
from bot.digests.composer import DigestComposer
from bot.domain.fleet import ClusterStatus, ClusterTarget, EnvironmentLayout, FleetLayout
from bot.domain.status import parse_flux_object
from bot.offline import OfflineCluster, OfflineFleetReader
from tests.flux_objects import flux_object


@pytest.fixture(autouse=True)
def _collector_on() -> Iterator[None]:
    was = gc.isenabled()
    gc.enable()
    yield
    if was:
        gc.enable()
    else:
        gc.disable()


def test_collection_stays_off_until_the_last_listing_in_progress_is_parsed() -> None:
    first_in, second_in, first_may_leave, second_may_leave = (threading.Event() for _ in "four")
    seen: dict[str, bool] = {}

    def parse(entered: threading.Event, may_leave: threading.Event) -> None:
        with collection_paused:
            entered.set()
            may_leave.wait(5)

    one = threading.Thread(target=parse, args=(first_in, first_may_leave))
    two = threading.Thread(target=parse, args=(second_in, second_may_leave))
    one.start()
    first_in.wait(5)
    two.start()
    second_in.wait(5)
    seen["both parsing"] = gc.isenabled()
    first_may_leave.set()
    one.join(5)
    seen["one still parsing"] = gc.isenabled()
    second_may_leave.set()
    two.join(5)
    seen["none parsing"] = gc.isenabled()
    assert seen == {"both parsing": False, "one still parsing": False, "none parsing": True}


def test_a_collector_turned_off_elsewhere_stays_off_after_a_listing() -> None:
    gc.disable()
    with collection_paused:
        pass
    assert not gc.isenabled()


def test_a_listing_that_fails_to_parse_still_turns_collection_back_on() -> None:
    with pytest.raises(ValueError, match="not JSON"), collection_paused:
        raise ValueError("not JSON")
    assert gc.isenabled()


def test_what_survives_the_cold_sync_is_frozen_out_of_later_collections() -> None:
    # In a process of its own: freezing is for the life of a process.
    script = (
        "import gc; from bot.collector import freeze_survivors; "
        "kept = [{'object': i} for i in range(1000)]; "
        "print(freeze_survivors() >= 1000, gc.isenabled(), gc.get_count()[2])"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    ).stdout.split()
    assert out == ["True", "True", "0"]


def test_a_digest_is_composed_with_collection_paused_and_resumed_after() -> None:
    # A digest of 25,000 objects builds tens of thousands of items kept until it is posted.
    seen: list[bool] = []

    class Reader(OfflineFleetReader):
        def read(
            self, targets: Sequence[ClusterTarget], kinds: frozenset[str] = frozenset()
        ) -> list[ClusterStatus]:
            seen.append(gc.isenabled())
            return super().read(targets, kinds)

    objects = (parse_flux_object(flux_object("Kustomization", "apps")),)
    layout = FleetLayout((EnvironmentLayout("production", "production", "C0PROD", ("prod-eu-1",)),))
    composer = DigestComposer(
        layout, Reader([OfflineCluster("production", "prod-eu-1", objects)]), None
    )
    digest = composer.compose("production")
    assert digest.environment == "production"
    assert (seen, gc.isenabled()) == ([False], True)
