"""Sluice aggregator in Python: per stay category, how many bookings
(`count_all`) and how many distinct hotels (`count_distinct`), as the Rust
stay-summary guest computes them.

Records that already carry `stay_category` (the output of a stay-category
transform) are counted under it; raw bookings are categorised on the way
in with the same rules.
"""

import json

from sluice_guest import Output, Reject, aggregator
from stay_rules import CATEGORIES, category


class StaySummary:
    """One window's counts: category -> (bookings, distinct hotel ids)."""

    def __init__(self):
        self.categories = {}

    def add(self, booking):
        if not isinstance(booking, dict):
            raise Reject("value is not a JSON booking record")
        name = booking.get("stay_category")
        if name is None:
            name = category(booking.get("srch_ci"), booking.get("srch_co"))
        elif not isinstance(name, str):
            raise Reject("value is not a JSON booking record: stay_category is not a string")
        counts = self.categories.setdefault(name, [0, set()])
        counts[0] += 1
        hotel = booking.get("hotel_id")
        if hotel is not None:
            # By JSON text, as the Rust guest counts them: 7 and "7" are two.
            counts[1].add(json.dumps(hotel, sort_keys=True))

    def finish(self):
        order = {name: rank for rank, name in enumerate(CATEGORIES)}
        # The original table's order; categories it does not know after, by name.
        rows = sorted(
            self.categories.items(),
            key=lambda item: (order.get(item[0], len(order)), item[0]),
        )
        return [
            Output(
                {"stay_category": name, "count_all": count, "count_distinct": len(hotels)},
                key=name,
            )
            for name, (count, hotels) in rows
        ]


Aggregate = aggregator(StaySummary)
