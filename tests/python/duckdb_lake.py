"""Reads a time-partitioned export the way a lake's users do: DuckDB over
the Parquet files with Hive partitioning (dt and hour from the folders).

    python duckdb_lake.py REQUEST_JSON

REQUEST_JSON: {"glob": ".../topic=T/**/*.parquet", "where": "dt='2026-12-05'
AND hour=11", "repeat": N} ("where" and "repeat" optional). Prints one JSON
object: rows, distinct (partition, kafka_offset) pairs, files; with "where"
the filtered count, the files the scan kept out of all ("Scanning Files:
k/n") and read ("Total Files Read"), from EXPLAIN ANALYZE; with "repeat"
the best of N timings of the filtered count, in seconds.
"""

import json
import re
import sys
import time

import duckdb


def main():
    request = json.loads(sys.argv[1])
    con = duckdb.connect()
    source = f"read_parquet('{request['glob']}', hive_partitioning=true)"
    rows, pairs, files = con.execute(
        f"SELECT count(*), count(DISTINCT (partition, kafka_offset)), "
        f"count(DISTINCT filename) FROM read_parquet('{request['glob']}', "
        f"hive_partitioning=true, filename=true)"
    ).fetchone()
    answer = {"duckdb": duckdb.__version__, "rows": rows, "pairs": pairs, "files": files}
    where = request.get("where")
    if where:
        query = f"SELECT count(*) FROM {source} WHERE {where}"
        answer["where_count"] = con.execute(query).fetchone()[0]
        plan = "\n".join(row[1] for row in con.execute(f"EXPLAIN ANALYZE {query}").fetchall())
        scanning = re.search(r"Scanning Files:\s*(\d+)\s*/\s*(\d+)", plan)
        read = re.search(r"Total Files Read:\s*(\d+)", plan)
        answer["scanning"] = [int(scanning.group(1)), int(scanning.group(2))] if scanning else None
        answer["files_read"] = int(read.group(1)) if read else None
        repeat = int(request.get("repeat", 0))
        if repeat:
            best = None
            for _ in range(repeat):
                started = time.perf_counter()
                con.execute(query).fetchone()
                took = time.perf_counter() - started
                best = took if best is None else min(best, took)
            answer["seconds"] = best
    print(json.dumps(answer))


if __name__ == "__main__":
    main()
