#!/usr/bin/env python3
"""Validates UltraCore's change events (topics db.changes.users and
db.changes.conversations) against what Debezium consumers expect.

    validate_change_events.py [FILE] [--max-failures N]

Reads JSON lines from FILE (or stdin when FILE is absent or "-"), one
Kafka record per line:

    {"topic": "db.changes.users", "key": {"id": "..."}, "value": {...}}

"value": null is a tombstone. Every key is checked against
crates/cdc/schema/change-key.schema.json and every non-null value against
crates/cdc/schema/change-event.schema.json (JSON Schema draft 2020-12,
jsonschema's Draft202012Validator). Prints a one-line summary (records,
events per op, tombstones); on any failure it first prints the first few
failures (line number, JSON Pointer of the failing element, message) and
exits with status 1.

Where the rules come from -- the Debezium documentation:

* Debezium connector for PostgreSQL,
  https://debezium.io/documentation/reference/stable/connectors/postgresql.html
  - "Data change events" (#postgresql-events): every event has a key and a
    value; with the JSON converter the schema part is present only when the
    converter is configured to produce it.
  - "Change event keys" (#postgresql-change-events-key): the key holds the
    changed row's primary-key columns.
  - "Change event values" (#postgresql-change-events-value) and
    "_create_ events" (#postgresql-create-events): the envelope fields
    before / after / source / op / ts_ms; op codes c, u, d, r ("read,
    applies to only snapshots"), t, m; the source fields (version,
    connector, name, ts_ms, snapshot, db, sequence -- "stringified JSON
    array ... the first value is always the last committed LSN, the second
    value is always the current LSN. Either value may be null" -- schema,
    table, txId, lsn, xmin).
  - "_update_ events" (#postgresql-update-events): after is the new row;
    before is null unless REPLICA IDENTITY FULL (only primary-key columns
    under DEFAULT); source.snapshot is "always false for update events".
  - "_delete_ events" (#postgresql-delete-events): after is null, before
    holds the old row (its primary key under REPLICA IDENTITY DEFAULT);
    snapshot "always false for delete events".
  - "Tombstone events" (#postgresql-tombstone-events): a delete event is
    followed by a record with the same key and a null value.
  - "Replica identity" (#postgresql-replica-identity).
  - "Transaction metadata" (#postgresql-transaction-metadata): the
    transaction block (id, total_order, data_collection_order); the
    transaction id is "txID:LSN".
  - "Data type mappings" (#postgresql-data-types): timestamptz is
    io.debezium.time.ZonedTimestamp, a string "where the timezone is GMT";
    json/jsonb is io.debezium.data.Json, a string holding the JSON text.
  - "Running an ad hoc incremental snapshots with additional-conditions"
    (#postgresql-incremental-snapshots-additional-conditions): snapshot
    events have op "r" ("a snapshot is a READ operation"); source.snapshot
    names the kind of snapshot ("incremental" there).
* Avro serialization,
  https://debezium.io/documentation/reference/stable/configuration/avro.html:
  key.converter.schemas.enable / value.converter.schemas.enable = false
  drop the schema part, leaving the bare payload as the record value.

Checks that JSON Schema cannot express are made here: a tombstone is valid
only when the previous record with the same topic and key was a delete;
the key's id equals the row's id (after, or before for a delete); the topic
db.changes.<table> matches source.table; for postgresql the second LSN of
source.sequence equals source.lsn and the transaction id's txID equals
source.txId; conversations.messages parses as a JSON array.
"""

import json
import sys
from collections import Counter
from pathlib import Path

from jsonschema import Draft202012Validator

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run from any directory
sys.dont_write_bytecode = True  # no tools/__pycache__
import jsonlines_check as jlc  # noqa: E402

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "crates" / "cdc" / "schema"
TOPIC_PREFIX = "db.changes."
OPS = ("c", "u", "d", "r")


def load_schema(name):
    return jlc.load_schema(SCHEMA_DIR / name)


def _resolve(schema, node):
    while isinstance(node, dict) and "$ref" in node:
        target = schema
        for seg in node["$ref"].lstrip("#/").split("/"):
            target = target[seg]
        node = target
    return node


def _rule_title(schema, schema_path):
    """Title of the innermost titled subschema on an error's schema path
    (the allOf rules carry titles naming the documented rule)."""
    node, title = schema, None
    for part in schema_path:
        if part == "$ref":
            node = _resolve(schema, node)
            continue
        if isinstance(node, dict) and part not in node and "$ref" in node:
            node = _resolve(schema, node)
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            break
        if isinstance(node, dict) and "title" in node:
            title = node["title"]
    return title


def _message(err):
    """jsonschema's message, without a repr of a whole row or block."""
    if err.validator == "not" and err.validator_value == {}:
        return f"field not allowed here (value {err.instance!r})"
    return jlc.message(err)


def _schema_failures(validator, instance, prefix):
    return jlc.schema_failures(validator, instance, [prefix], message=_message, rule_title=_rule_title)


def _canonical(key):
    return json.dumps(key, sort_keys=True, separators=(",", ":"))


class Result(jlc.Result):
    def __init__(self):
        super().__init__()
        self.ops = Counter()
        self.tombstones = 0

    @property
    def records(self):
        return self.count

    def summary(self):
        ops = " ".join(f"{op}={self.ops.get(op, 0)}" for op in OPS)
        return f"{self.records} records: {ops} tombstones={self.tombstones} -- {self.status()}"


def _cross_checks(topic, key, value):
    """Rules relating fields to each other, the key and the topic."""
    out = []
    source = value.get("source") if isinstance(value.get("source"), dict) else {}
    table = source.get("table")
    if isinstance(topic, str) and topic.startswith(TOPIC_PREFIX) and isinstance(table, str):
        if topic[len(TOPIC_PREFIX):] != table:
            out.append(("/value/source/table", f"table {table!r} does not match topic {topic!r}"))
    elif isinstance(topic, str) and not topic.startswith(TOPIC_PREFIX):
        out.append(("/topic", f"topic {topic!r} is not a {TOPIC_PREFIX}<table> topic"))

    op = value.get("op")
    row_field = "before" if op == "d" else "after"
    row = value.get(row_field)
    if isinstance(key, dict) and isinstance(row, dict) and "id" in key:
        if row.get("id") != key["id"]:
            out.append((f"/value/{row_field}/id",
                        f"row id {row.get('id')!r} differs from the record key id {key['id']!r}"))

    if source.get("connector") == "postgresql":
        seq, lsn = source.get("sequence"), source.get("lsn")
        if isinstance(seq, str):
            try:
                parsed = json.loads(seq)
            except ValueError:
                parsed = None
            if isinstance(parsed, list) and len(parsed) == 2 and parsed[1] is not None \
                    and isinstance(lsn, int) and parsed[1] != str(lsn):
                out.append(("/value/source/sequence",
                            f"current LSN {parsed[1]!r} in sequence differs from source.lsn {lsn}"))
        tx = value.get("transaction")
        if isinstance(tx, dict) and isinstance(tx.get("id"), str) and isinstance(source.get("txId"), int):
            head = tx["id"].split(":", 1)[0]
            if head != str(source["txId"]):
                out.append(("/value/transaction/id",
                            f"transaction id {tx['id']!r} does not start with source.txId {source['txId']}"))

    if table == "conversations":
        for field in ("before", "after"):
            r = value.get(field)
            if isinstance(r, dict) and isinstance(r.get("messages"), str):
                try:
                    msgs = json.loads(r["messages"])
                except ValueError as e:
                    out.append((f"/value/{field}/messages", f"not JSON text: {e}"))
                    continue
                if not isinstance(msgs, list):
                    out.append((f"/value/{field}/messages", "JSON text is not an array"))
    return out


def validate_lines(lines, event_schema=None, key_schema=None):
    """Validates an iterable of JSON-lines strings; returns a Result."""
    event_v = Draft202012Validator(event_schema or load_schema("change-event.schema.json"))
    key_v = Draft202012Validator(key_schema or load_schema("change-key.schema.json"))
    res = Result()
    last = {}  # (topic, canonical key) -> op of the previous record, or "tombstone"

    for rec, fail in jlc.json_lines(lines, res):
        if not isinstance(rec, dict) or not {"topic", "key", "value"} <= rec.keys():
            fail("", 'a record is an object with "topic", "key" and "value"')
            continue
        topic, key, value = rec["topic"], rec["key"], rec["value"]
        if not isinstance(topic, str):
            fail("/topic", "topic is not a string")
            continue

        for pointer, msg in _schema_failures(key_v, key, "key"):
            fail(pointer, msg)
        slot = (topic, _canonical(key))

        if value is None:
            res.tombstones += 1
            if last.get(slot) != "d":
                prev = last.get(slot)
                fail("/value", "tombstone not preceded by a delete (op d) for the same topic and key"
                     + (f" (previous record for this key: {prev})" if prev else " (no previous record for this key)"))
            last[slot] = "tombstone"
            continue

        op = value.get("op") if isinstance(value, dict) else None
        if op in OPS:
            res.ops[op] += 1
        for pointer, msg in _schema_failures(event_v, value, "value"):
            fail(pointer, msg)
        if isinstance(value, dict):
            for pointer, msg in _cross_checks(topic, key, value):
                fail(pointer, msg)
        last[slot] = op
    return res


def main(argv=None):
    return jlc.main(validate_lines, "Validate Debezium-style change events (JSON lines).", argv)


if __name__ == "__main__":
    sys.exit(main())
