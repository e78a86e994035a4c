"""Parses a Prometheus text exposition (stdin) with the official client's
parser and prints its samples as JSON: [[name, labels, value], ...]."""
import json
import sys

from prometheus_client.parser import text_string_to_metric_families

samples = []
for family in text_string_to_metric_families(sys.stdin.read()):
    for sample in family.samples:
        samples.append([sample.name, sample.labels, sample.value])
json.dump(samples, sys.stdout)
