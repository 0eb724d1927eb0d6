#!/usr/bin/env python3
"""Self-test for validate_change_events.py and the change-event / change-key
schemas under crates/cdc/schema.

    python tools/test_validate_change_events.py
"""

import copy
import json
import subprocess
import sys
import unittest
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.dont_write_bytecode = True

import validate_change_events as vce  # noqa: E402

USERS = "db.changes.users"
CONVERSATIONS = "db.changes.conversations"

USER_ID = "6f1c2a9e-3b1d-4c55-9a0e-1f2b3c4d5e6f"
CONV_ID = "0b7e4c1a-8d2f-4e6a-b1c3-9f8e7d6c5b4a"


def user_row(**over):
    row = {
        "id": USER_ID,
        "name": "Ada Lovelace",
        "email": "ada@example.com",
        "phone": None,
        "country": "GB",
        "risk_profile": "balanced",
        "status": "active",
        "created_at": "2024-05-01T09:30:00.123456Z",
        "updated_at": "2024-05-01T09:30:00.123456Z",
    }
    row.update(over)
    return row


def conversation_row(**over):
    row = {
        "id": CONV_ID,
        "customer_id": USER_ID,
        "subject": None,
        "status": "open",
        "messages": json.dumps([{"role": "customer", "text": "hello"}]),
        "message_count": 1,
        "created_at": "2024-05-01T10:00:00Z",
        "updated_at": "2024-05-01T10:05:00Z",
    }
    row.update(over)
    return row


def pg_source(table, snapshot="false", lsn=24023128, tx=555, **over):
    src = {
        "version": "0.1.0",
        "connector": "postgresql",
        "name": "ultracore",
        "ts_ms": 1714555800000,
        "snapshot": snapshot,
        "db": "ultracore",
        "sequence": json.dumps(["24023119", str(lsn)]),
        "schema": "public",
        "table": table,
        "txId": tx,
        "lsn": lsn,
        "xmin": None,
    }
    src.update(over)
    return src


def sqlite_source(table, snapshot="false", seq=42, **over):
    src = {
        "version": "0.1.0",
        "connector": "sqlite",
        "name": "ultracore",
        "ts_ms": 1714555800000,
        "snapshot": snapshot,
        "db": "ultracore",
        "schema": "main",
        "table": table,
        "seq": seq,
    }
    src.update(over)
    return src


def event(op, before, after, source, transaction=None):
    return {"before": before, "after": after, "source": source, "op": op,
            "ts_ms": 1714555800042, "transaction": transaction}


def rec(topic, key_id, value):
    return {"topic": topic, "key": {"id": key_id}, "value": value}


def lines(*records):
    return [json.dumps(r) for r in records]


def run(*records):
    return vce.validate_lines(lines(*records))


# --- valid records -----------------------------------------------------------

PG_CREATE = rec(USERS, USER_ID, event("c", None, user_row(), pg_source("users")))
PG_UPDATE_NO_BEFORE = rec(USERS, USER_ID, event(
    "u", None, user_row(status="suspended", updated_at="2024-05-02T08:00:00Z"),
    pg_source("users", lsn=24023200, tx=556)))
PG_DELETE_KEY_ONLY = rec(USERS, USER_ID, event(
    "d", {"id": USER_ID}, None, pg_source("users", lsn=24023300, tx=557)))
TOMBSTONE_USER = rec(USERS, USER_ID, None)
PG_READ_TRUE = rec(CONVERSATIONS, CONV_ID, event(
    "r", None, conversation_row(), pg_source("conversations", snapshot="true")))
PG_READ_LAST = rec(USERS, USER_ID, event(
    "r", None, user_row(phone="+44 20 7946 0000"), pg_source("users", snapshot="last")))
PG_CREATE_WITH_TX = rec(CONVERSATIONS, CONV_ID, event(
    "c", None, conversation_row(), pg_source("conversations", lsn=53195832, tx=571),
    transaction={"id": "571:53195832", "total_order": 1, "data_collection_order": 1}))
SQLITE_CREATE = rec(CONVERSATIONS, CONV_ID, event(
    "c", None, conversation_row(), sqlite_source("conversations", seq=7)))
SQLITE_UPDATE_WITH_BEFORE = rec(CONVERSATIONS, CONV_ID, event(
    "u", conversation_row(),
    conversation_row(subject="Fees", messages=json.dumps([{"t": "a"}, {"t": "b"}]), message_count=2,
                     updated_at="2024-05-01T10:06:00+00:00"),
    sqlite_source("conversations", seq=8)))
SQLITE_DELETE_FULL = rec(CONVERSATIONS, CONV_ID, event(
    "d", conversation_row(), None, sqlite_source("conversations", seq=9)))
TOMBSTONE_CONV = rec(CONVERSATIONS, CONV_ID, None)


def mutate(record, fn):
    r = copy.deepcopy(record)
    fn(r["value"])
    return r


class Accepts(unittest.TestCase):
    def assertValid(self, *records):
        res = run(*records)
        self.assertTrue(res.ok, res.failures)
        return res

    def test_create_postgresql(self):
        self.assertValid(PG_CREATE)

    def test_update_without_before_postgresql(self):
        self.assertValid(PG_CREATE, PG_UPDATE_NO_BEFORE)

    def test_update_with_before_sqlite(self):
        self.assertValid(SQLITE_CREATE, SQLITE_UPDATE_WITH_BEFORE)

    def test_update_with_full_before_postgresql(self):
        # REPLICA IDENTITY FULL
        r = mutate(PG_UPDATE_NO_BEFORE, lambda v: v.update(before=user_row()))
        self.assertValid(r)

    def test_delete_then_tombstone(self):
        res = self.assertValid(PG_CREATE, PG_DELETE_KEY_ONLY, TOMBSTONE_USER)
        self.assertEqual(res.tombstones, 1)
        self.assertValid(SQLITE_CREATE, SQLITE_DELETE_FULL, TOMBSTONE_CONV)

    def test_snapshot_reads(self):
        self.assertValid(PG_READ_TRUE, PG_READ_LAST)

    def test_transaction_block(self):
        self.assertValid(PG_CREATE_WITH_TX)

    def test_xmin_absent_and_sequence_nulls(self):
        def f(v):
            del v["source"]["xmin"]
            v["source"]["sequence"] = '[null,"24023128"]'
        self.assertValid(mutate(PG_CREATE, f))

    def test_summary_counts(self):
        res = self.assertValid(PG_READ_TRUE, PG_READ_LAST, PG_CREATE, PG_UPDATE_NO_BEFORE,
                               PG_DELETE_KEY_ONLY, TOMBSTONE_USER, SQLITE_CREATE)
        self.assertEqual(res.records, 7)
        self.assertEqual((res.ops["c"], res.ops["u"], res.ops["d"], res.ops["r"]), (2, 1, 1, 2))
        self.assertIn("tombstones=1", res.summary())

    def test_cli_ok(self):
        p = subprocess.run([sys.executable, str(HERE / "validate_change_events.py")],
                           input="\n".join(lines(PG_CREATE, PG_DELETE_KEY_ONLY, TOMBSTONE_USER)) + "\n",
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertEqual(p.stdout.strip().count("\n"), 0)
        self.assertIn("3 records: c=1 u=0 d=1 r=0 tombstones=1", p.stdout)


class Rejects(unittest.TestCase):
    def assertInvalid(self, *records, where=None):
        res = run(*records)
        self.assertFalse(res.ok, "expected a failure")
        if where is not None:
            self.assertTrue(any(where in f"{ptr} {msg}" for _, ptr, msg in res.failures),
                            f"no failure mentioning {where!r}: {res.failures}")
        return res

    def test_create_with_before(self):
        self.assertInvalid(mutate(PG_CREATE, lambda v: v.update(before=user_row())), where="/value/before")

    def test_delete_with_after(self):
        self.assertInvalid(mutate(PG_DELETE_KEY_ONLY, lambda v: v.update(after=user_row())),
                           where="/value/after")

    def test_delete_without_before(self):
        self.assertInvalid(mutate(PG_DELETE_KEY_ONLY, lambda v: v.update(before=None)), where="/value/before")

    def test_update_without_after(self):
        self.assertInvalid(mutate(PG_UPDATE_NO_BEFORE, lambda v: v.update(after=None)), where="/value/after")

    def test_postgresql_missing_lsn(self):
        self.assertInvalid(mutate(PG_CREATE, lambda v: v["source"].pop("lsn")), where="'lsn'")

    def test_postgresql_missing_txid_or_sequence(self):
        self.assertInvalid(mutate(PG_CREATE, lambda v: v["source"].pop("txId")), where="'txId'")
        self.assertInvalid(mutate(PG_CREATE, lambda v: v["source"].pop("sequence")), where="'sequence'")

    def test_postgresql_bad_sequence(self):
        self.assertInvalid(mutate(PG_CREATE, lambda v: v["source"].update(sequence="24023128")),
                           where="/value/source/sequence")
        self.assertInvalid(mutate(PG_CREATE, lambda v: v["source"].update(sequence='["1","2"]')),
                           where="/value/source/sequence")

    def test_sqlite_missing_seq(self):
        self.assertInvalid(mutate(SQLITE_CREATE, lambda v: v["source"].pop("seq")), where="'seq'")

    def test_position_field_of_the_other_connector(self):
        self.assertInvalid(mutate(SQLITE_CREATE, lambda v: v["source"].update(lsn=1)), where="/value/source")

    def test_snapshot_last_on_create(self):
        self.assertInvalid(mutate(PG_CREATE, lambda v: v["source"].update(snapshot="last")),
                           where="/value/source/snapshot")

    def test_snapshot_true_on_update_or_delete(self):
        self.assertInvalid(mutate(PG_UPDATE_NO_BEFORE, lambda v: v["source"].update(snapshot="true")))
        self.assertInvalid(mutate(SQLITE_DELETE_FULL, lambda v: v["source"].update(snapshot="true")))

    def test_read_outside_snapshot(self):
        self.assertInvalid(mutate(PG_READ_TRUE, lambda v: v["source"].update(snapshot="false")),
                           where="/value/source/snapshot")

    def test_snapshot_boolean(self):
        self.assertInvalid(mutate(PG_READ_TRUE, lambda v: v["source"].update(snapshot=True)),
                           where="/value/source/snapshot")

    def test_tombstone_without_delete(self):
        self.assertInvalid(TOMBSTONE_USER, where="tombstone")
        self.assertInvalid(PG_CREATE, TOMBSTONE_USER, where="tombstone")
        self.assertInvalid(PG_DELETE_KEY_ONLY, TOMBSTONE_USER, TOMBSTONE_USER, where="tombstone")
        # a delete of another key does not license this key's tombstone
        other = rec(USERS, "someone-else", event("d", {"id": "someone-else"}, None, pg_source("users")))
        self.assertInvalid(other, TOMBSTONE_USER, where="tombstone")

    def test_unknown_op(self):
        self.assertInvalid(mutate(PG_CREATE, lambda v: v.update(op="x")), where="/value/op")
        self.assertInvalid(mutate(PG_CREATE, lambda v: v.update(op="t")), where="/value/op")

    def test_missing_top_level_fields(self):
        for field in ("before", "after", "source", "op", "ts_ms", "transaction"):
            self.assertInvalid(mutate(PG_CREATE, lambda v, f=field: v.pop(f)), where=repr(field))

    def test_schema_payload_wrapper(self):
        wrapped = copy.deepcopy(PG_CREATE)
        wrapped["value"] = {"schema": {}, "payload": wrapped["value"]}
        self.assertInvalid(wrapped)

    def test_missing_common_source_field(self):
        for field in ("version", "connector", "name", "ts_ms", "snapshot", "db", "schema", "table"):
            self.assertInvalid(mutate(SQLITE_CREATE, lambda v, f=field: v["source"].pop(f)), where=repr(field))

    def test_unknown_connector(self):
        self.assertInvalid(mutate(PG_CREATE, lambda v: v["source"].update(connector="mysql")))

    def test_nested_column_value(self):
        r = mutate(SQLITE_CREATE, lambda v: v["after"].update(messages=[{"role": "customer"}]))
        self.assertInvalid(r, where="/value/after/messages")

    def test_messages_not_a_json_array(self):
        self.assertInvalid(mutate(SQLITE_CREATE, lambda v: v["after"].update(messages='{"a":1}')),
                           where="/value/after/messages")

    def test_users_row_shape(self):
        self.assertInvalid(mutate(PG_CREATE, lambda v: v["after"].pop("email")), where="'email'")
        self.assertInvalid(mutate(PG_CREATE, lambda v: v["after"].update(extra="x")), where="/value/after")
        self.assertInvalid(mutate(PG_CREATE, lambda v: v["after"].update(created_at=1714555800000)),
                           where="/value/after/created_at")
        self.assertInvalid(mutate(PG_CREATE, lambda v: v["after"].update(updated_at="2024-05-01 09:30:00")),
                           where="/value/after/updated_at")
        self.assertInvalid(mutate(PG_CREATE, lambda v: v["after"].update(updated_at="2024-05-01T11:30:00+02:00")),
                           where="/value/after/updated_at")

    def test_conversations_row_shape(self):
        self.assertInvalid(mutate(SQLITE_CREATE, lambda v: v["after"].update(message_count="1")),
                           where="/value/after/message_count")
        self.assertInvalid(mutate(SQLITE_CREATE, lambda v: v["after"].pop("subject")), where="'subject'")

    def test_key_shape_and_match(self):
        bad_key = copy.deepcopy(PG_CREATE)
        bad_key["key"] = {"id": 1}
        self.assertInvalid(bad_key, where="/key/id")
        null_key = copy.deepcopy(PG_CREATE)
        null_key["key"] = None
        self.assertInvalid(null_key, where="/key")
        other = copy.deepcopy(PG_CREATE)
        other["key"] = {"id": "another-id"}
        self.assertInvalid(other, where="/value/after/id")

    def test_topic_table_mismatch(self):
        r = copy.deepcopy(PG_CREATE)
        r["topic"] = CONVERSATIONS
        self.assertInvalid(r, where="/value/source/table")

    def test_sequence_lsn_mismatch(self):
        self.assertInvalid(mutate(PG_CREATE, lambda v: v["source"].update(lsn=1)), where="/value/source/sequence")

    def test_transaction_block(self):
        self.assertInvalid(mutate(PG_CREATE_WITH_TX, lambda v: v["transaction"].update(id="abc")),
                           where="/value/transaction/id")
        self.assertInvalid(mutate(PG_CREATE_WITH_TX, lambda v: v["transaction"].update(id="999:53195832")),
                           where="/value/transaction/id")
        self.assertInvalid(mutate(PG_CREATE_WITH_TX, lambda v: v["transaction"].pop("total_order")),
                           where="total_order")

    def test_bad_json_line(self):
        res = vce.validate_lines(["{not json"])
        self.assertFalse(res.ok)
        self.assertEqual(res.failures[0][0], 1)

    def test_cli_failure(self):
        p = subprocess.run([sys.executable, str(HERE / "validate_change_events.py")],
                           input="\n".join(lines(PG_CREATE, TOMBSTONE_CONV)) + "\n",
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn("line 2: /value: tombstone", p.stdout)
        self.assertIn("2 records", p.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    unittest.main(verbosity=1)
