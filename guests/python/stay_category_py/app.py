"""Sluice transformer in Python: adds `stay_category` to each expedia
booking, with the same output as the Rust stay-category guest, written as
the worker's process() hook. The rules are in `stay_rules`. A value that is
JSON but not an object is rejected.
"""

from sluice_guest import Reject, transformer
from stay_rules import category


def process(message, consumer_name, metadatas):
    if not isinstance(message, dict):
        raise Reject("value is JSON but not an object")
    # An existing category is overwritten in place, a new one goes last:
    # dict assignment does both, as the Rust guest does.
    message["stay_category"] = category(message.get("srch_ci"), message.get("srch_co"))
    return message


Transform = transformer(process)
