"""Reads a Delta table the way other engines do, for the Delta tests: the
`deltalake` package (delta-rs) opens it and reads its rows, a SQL query
runs over it (DataFusion, with the file statistics for skipping), and
pyarrow reads each of its data files on its own, without Delta.

    python read_table.py REQUEST_JSON

REQUEST_JSON: {"uri": ..., "storage_options": {...}, "app_ids": [...],
"where": "kafka_offset >= 10", "history": true, "checkpoint": true,
"optimize": true, "azure": {"account", "key", "authority"},
"partitions": [["dt", "=", "2026-12-05"], ["hour", "=", "11"]]} (all but
"uri" optional). "optimize" has the deltalake package compact the table's
files first (a commit of its own), "checkpoint" write a checkpoint of the
latest version; "partitions" has the files and rows of those partitions
read alone (the table's partition pruning). Prints one JSON object.
"""

import json
import sys

import pyarrow.fs as pafs
import pyarrow.parquet as pq
from deltalake import DeltaTable, QueryBuilder


def main():
    request = json.loads(sys.argv[1])
    table = DeltaTable(request["uri"], storage_options=request.get("storage_options"))
    if request.get("optimize"):
        table.optimize.compact()
    if request.get("checkpoint"):
        table.create_checkpoint()
    # Every column, the headers map and typed columns included.
    rows = table.to_pyarrow_table()
    pairs = {}
    for partition, offset in zip(
        rows.column("partition").to_pylist(), rows.column("kafka_offset").to_pylist()
    ):
        key = f"{partition}:{offset}"
        pairs[key] = pairs.get(key, 0) + 1
    stamps = rows.column("timestamp")
    answer = {
        "deltalake": __import__("deltalake").__version__,
        "version": table.version(),
        "protocol": [table.protocol().min_reader_version, table.protocol().min_writer_version],
        "schema": json.loads(table.schema().to_json()),
        "rows": rows.num_rows,
        "offsets": pairs,
        "timestamp_type": str(stamps.type),
        "first_timestamp_ms": (
            stamps[0].value // 1000 if rows.num_rows and stamps[0].is_valid else None
        ),
        "txn": {app_id: table.transaction_version(app_id) for app_id in request.get("app_ids", [])},
        "operations": (
            [h.get("operation") for h in reversed(table.history())] if request.get("history") else None
        ),
        "files": table.file_uris(),
    }
    answer["properties"] = dict(table.metadata().configuration)
    answer["partition_columns"] = list(table.metadata().partition_columns)
    if request.get("partitions"):
        filters = [tuple(f) for f in request["partitions"]]
        answer["partition_files"] = len(table.file_uris(partition_filters=filters))
        answer["partition_rows"] = table.to_pyarrow_table(partitions=filters).num_rows
    if request.get("where"):
        query = QueryBuilder().register("t", table)
        result = query.execute(f"SELECT count(*) AS n FROM t WHERE {request['where']}").read_all()
        answer["where_count"] = result.column("n")[0].as_py()

    # pyarrow alone, file by file: the data files are plain Parquet.
    azure = request.get("azure")
    if azure:
        filesystem = pafs.AzureFileSystem(
            account_name=azure["account"],
            account_key=azure["key"],
            blob_storage_authority=azure["authority"],
            blob_storage_scheme="http",
            dfs_storage_authority=azure["authority"],
            dfs_storage_scheme="http",
        )
    else:
        filesystem = None
    file_rows = 0
    for uri in answer["files"]:
        if filesystem is None:
            file = pq.read_table(uri)
        else:
            # az://container/path or abfss://container@account.../path
            rest = uri.split("://", 1)[1]
            container, path = rest.split("/", 1)
            file = pq.read_table(f"{container.split('@')[0]}/{path}", filesystem=filesystem)
        file_rows += file.num_rows
    answer["pyarrow_rows"] = file_rows
    print(json.dumps(answer))


if __name__ == "__main__":
    main()
