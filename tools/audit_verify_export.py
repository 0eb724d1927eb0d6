#!/usr/bin/env python3
"""Verifies an export of UltraCore's audit trail (`ultracore audit export`)
without UltraCore: only Python's standard library, plus the `cryptography`
package for the Ed25519 signature of the checkpoint when it is installed.

    python3 verify_export.py DIR [--key VKEY]

For every record in DIR/records.jsonl it rebuilds the record's leaf (the
encoding below), hashes it, and walks its audit path (RFC 9162 §2.1.3.2)
to the root of DIR/checkpoint.json; it checks that the checkpoint's signed
note (C2SP signed-note, Ed25519) is signed by the verifier key VKEY (the one
you recorded when the trail began; the export's own by default) and says
the same size and root. Exit status 0 when everything holds, 1 otherwise,
naming each record (topic, partition, offset) that does not.

Leaf encoding v1 (integers big-endian, H = SHA-256):
  b"ultracore.audit.leaf.v1"
  u16 len || topic (UTF-8)
  u32 partition
  u64 offset
  i64 timestamp (ms)
  0x00 (no key) | 0x01 || H(key)
  u32 header count || H(for each header: u32 len || name || u32 len || value)
  u32 len(value) || H(value)
  0x00 | 0x01 || u16 len || principal (the envelope's "principal" string, when the value is a JSON object naming one)
Leaf hash: H(0x00 || leaf); node hash: H(0x01 || left || right).
"""

import argparse
import base64
import hashlib
import json
import struct
import sys

TAG = b"ultracore.audit.leaf.v1"


def sha256(b):
    return hashlib.sha256(b).digest()


def principal(value):
    """The envelope's principal, as the platform reads it: only a JSON
    object (first byte '{') whose "principal" is a string, once."""
    if value[:1] != b"{":
        return None

    def pairs(items):
        names = [k for k, _ in items]
        if names.count("principal") > 1:
            raise ValueError("duplicate principal")
        return dict(items)

    def no_constants(name):
        raise ValueError(name)

    try:
        obj = json.loads(value.decode("utf-8"), object_pairs_hook=pairs, parse_constant=no_constants)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(obj, dict):
        return None
    p = obj.get("principal")
    if p is None:
        return None
    if not isinstance(p, str):
        return None
    raw = p.encode("utf-8")
    return raw if len(raw) <= 0xFFFF else None


def leaf(record):
    topic = record["topic"].encode("utf-8")
    out = bytearray(TAG)
    out += struct.pack(">H", len(topic)) + topic
    out += struct.pack(">I", record["partition"])
    out += struct.pack(">Q", record["offset"])
    out += struct.pack(">q", record["timestamp"])
    if record["key"] is None:
        out += b"\x00"
    else:
        out += b"\x01" + sha256(base64.b64decode(record["key"]))
    h = hashlib.sha256()
    for header in record["headers"]:
        name = header["key"].encode("utf-8")
        value = base64.b64decode(header["value"])
        h.update(struct.pack(">I", len(name)) + name + struct.pack(">I", len(value)) + value)
    out += struct.pack(">I", len(record["headers"])) + h.digest()
    value = base64.b64decode(record["value"])
    out += struct.pack(">I", len(value)) + sha256(value)
    p = principal(value)
    out += b"\x00" if p is None else b"\x01" + struct.pack(">H", len(p)) + p
    return bytes(out)


def verify_inclusion(leaf_hash, index, size, path, root):
    """RFC 9162 §2.1.3.2."""
    if index >= size:
        return False
    fn, sn = index, size - 1
    r = leaf_hash
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = sha256(b"\x01" + p + r)
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = sha256(b"\x01" + r + p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def parse_vkey(vkey):
    name, key_id, raw = vkey.strip().split("+", 2)
    raw = base64.b64decode(raw)
    if len(raw) != 33 or raw[0] != 1:
        raise ValueError("not an Ed25519 note verifier key")
    if sha256(name.encode() + b"\n" + raw[:1] + raw[1:])[:4].hex() != key_id:
        raise ValueError("the key id does not match the key")
    return name, bytes.fromhex(key_id), raw[1:]


def check_note(note, vkey):
    """Returns (body, problems, signature_checked)."""
    split = note.find("\n\n")
    if split < 0:
        return None, ["the note has no signature block"], False
    body = note[: split + 1]
    name, key_id, public = parse_vkey(vkey)
    sig = None
    for line in note[split + 2 :].splitlines():
        if not line.startswith("\u2014 "):
            return body, ["a signature line does not start with an em dash: %r" % line], False
        who, b64 = line[2:].split(" ", 1)
        raw = base64.b64decode(b64)
        if who == name and raw[:4] == key_id:
            sig = raw[4:]
    if sig is None:
        return body, ["the note has no signature by %s" % vkey], False
    try:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    except ImportError:
        return body, [], False
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(sig, body.encode("utf-8"))
    except InvalidSignature:
        return body, ["the note's signature does not verify: it was changed or signed by another key"], True
    return body, [], True


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dir")
    ap.add_argument("--key", help="the verifier key you trust (default: the export's own)")
    args = ap.parse_args()
    with open(f"{args.dir}/checkpoint.json") as f:
        cp = json.load(f)
    problems = []
    vkey = args.key or cp["verifier_key"]
    if not args.key:
        print("checking the signature with the export's own key; pass --key with the key you recorded", file=sys.stderr)
    body, note_problems, signed = check_note(cp["note"], vkey)
    problems += note_problems
    size = cp["tree_size"]
    root = base64.b64decode(cp["root_hash"])
    if body is not None:
        lines = body.split("\n")
        if len(lines) < 3 or lines[1] != str(size) or base64.b64decode(lines[2]) != root:
            problems.append("the signed note does not say the checkpoint's size and root")
    records = 0
    bad = []
    with open(f"{args.dir}/records.jsonl") as f:
        for line in f:
            if not line.strip():
                continue
            r = json.loads(line)
            records += 1
            path = [base64.b64decode(p) for p in r["audit_path"]]
            ok = r["tree_size"] == size and verify_inclusion(sha256(b"\x00" + leaf(r)), r["leaf_index"], size, path, root)
            if not ok:
                bad.append(r)
    for r in bad:
        problems.append("%s/%d@%d (leaf %d): not in the signed tree: the record or its proof was changed"
                        % (r["topic"], r["partition"], r["offset"], r["leaf_index"]))
    if problems:
        for p in problems:
            print("FAIL", p)
        print("%d of %d records fail; %d problems" % (len(bad), records, len(problems)))
        return 1
    print("%d records: each is in the tree of %d leaves whose root the checkpoint signs" % (records, size))
    if signed:
        print("the checkpoint's signature verifies with %s" % vkey)
    else:
        print("the checkpoint's signature was NOT checked: install the 'cryptography' package")
    return 0


if __name__ == "__main__":
    sys.exit(main())
