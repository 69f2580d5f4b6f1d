"""The signed audit log from outside: Merkle roots, inclusion and consistency proofs and
checkpoint signatures checked by an independent Python implementation (hashlib and the RFC 8032
reference Ed25519), tampering with the real store (the SQLite file, or the PostgreSQL database
under SIGNOFF_E2E_STORE=postgres) named by `signoff audit verify`,
offline verification of an export, and audit writes that fail without leaving anything half
done.

The tree is RFC 6962's: leaf i is SHA-256(0x00 || chain hash of event i + 1), interior nodes
SHA-256(0x01 || left || right), split at the largest power of two below n. The proofs are
checked against recursive readings of RFC 6962's PATH and SUBPROOF, not RFC 9162's loops, so
the daemon's verifier and this one share nothing but SHA-256.
"""

import csv
import hashlib
import io
import json
import random
import shutil

import pytest

from conftest import (POSTGRES, Daemon, HEX64_RE, TIME_RE, bind_store_database, canonical_text,
                      expect_error, make_config, new_database, ok, run_cli, sample_action,
                      store_database, store_rows, store_sql, wait_until, CAST)

# --------------------------------------------------------------------------------------------
# Ed25519 after RFC 8032 section 6 (the reference code; not constant time, for tests only).

_P = 2**255 - 19
_L = 2**252 + 27742317777372353535851937790883648493
_D = -121665 * pow(121666, _P - 2, _P) % _P
_I = pow(2, (_P - 1) // 4, _P)


def _sha512(b):
    return hashlib.sha512(b).digest()


def _padd(p, q):
    x1, y1, z1, t1 = p
    x2, y2, z2, t2 = q
    a, b = (y1 - x1) * (y2 - x2) % _P, (y1 + x1) * (y2 + x2) % _P
    c, d = 2 * t1 * t2 * _D % _P, 2 * z1 * z2 % _P
    e, f, g, h = b - a, d - c, d + c, b + a
    return (e * f % _P, g * h % _P, f * g % _P, e * h % _P)


def _pmul(s, p):
    q = (0, 1, 1, 0)
    while s > 0:
        if s & 1:
            q = _padd(q, p)
        p = _padd(p, p)
        s >>= 1
    return q


def _pequal(p, q):
    return (p[0] * q[2] - q[0] * p[2]) % _P == 0 and (p[1] * q[2] - q[1] * p[2]) % _P == 0


def _recover_x(y, sign):
    if y >= _P:
        return None
    x2 = (y * y - 1) * pow(_D * y * y + 1, _P - 2, _P)
    if x2 == 0:
        return None if sign else 0
    x = pow(x2, (_P + 3) // 8, _P)
    if (x * x - x2) % _P != 0:
        x = x * _I % _P
    if (x * x - x2) % _P != 0:
        return None
    return _P - x if (x & 1) != sign else x


_GY = 4 * pow(5, _P - 2, _P) % _P
_GX = _recover_x(_GY, 0)
_G = (_GX, _GY, 1, _GX * _GY % _P)


def _compress(p):
    zi = pow(p[2], _P - 2, _P)
    x, y = p[0] * zi % _P, p[1] * zi % _P
    return int.to_bytes(y | ((x & 1) << 255), 32, "little")


def _decompress(s):
    y = int.from_bytes(s, "little")
    sign, y = y >> 255, y & ((1 << 255) - 1)
    x = _recover_x(y, sign)
    return None if x is None else (x, y, 1, x * y % _P)


def _expand(seed):
    h = _sha512(seed)
    a = (int.from_bytes(h[:32], "little") & ((1 << 254) - 8)) | (1 << 254)
    return a, h[32:]


def ed25519_public(seed):
    return _compress(_pmul(_expand(seed)[0], _G))


def ed25519_sign(seed, msg):
    a, prefix = _expand(seed)
    pk = _compress(_pmul(a, _G))
    r = int.from_bytes(_sha512(prefix + msg), "little") % _L
    rs = _compress(_pmul(r, _G))
    h = int.from_bytes(_sha512(rs + pk + msg), "little") % _L
    return rs + int.to_bytes((r + h * a) % _L, 32, "little")


def ed25519_verify(pk, msg, sig):
    if len(pk) != 32 or len(sig) != 64:
        return False
    a, r = _decompress(pk), _decompress(sig[:32])
    s = int.from_bytes(sig[32:], "little")
    if a is None or r is None or s >= _L:
        return False
    h = int.from_bytes(_sha512(sig[:32] + pk + msg), "little") % _L
    return _pequal(_pmul(s, _G), _padd(r, _pmul(h, a)))


def test_python_ed25519_matches_rfc8032_test_1():
    seed = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
    pk = ed25519_public(seed)
    assert pk.hex() == "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
    sig = ed25519_sign(seed, b"")
    assert sig.hex() == ("e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8"
                         "821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b")
    assert ed25519_verify(pk, b"", sig)
    assert not ed25519_verify(pk, b"x", sig)


# --------------------------------------------------------------------------------------------
# RFC 6962 in Python.


def sha(b):
    return hashlib.sha256(b).digest()


def leaf_hash(chain_hash_hex):
    return sha(b"\x00" + bytes.fromhex(chain_hash_hex))


def node(left, right):
    return sha(b"\x01" + left + right)


def split(n):
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(leaves):
    if not leaves:
        return sha(b"")
    if len(leaves) == 1:
        return leaves[0]
    k = split(len(leaves))
    return node(mth(leaves[:k]), mth(leaves[k:]))


def all_roots(leaves):
    """The root of every prefix, via the right edge of the tree (checked against mth)."""
    roots, stack = [sha(b"")], []  # stack of (height, hash)
    for lf in leaves:
        h, height = lf, 0
        while stack and stack[-1][0] == height:
            h = node(stack.pop()[1], h)
            height += 1
        stack.append((height, h))
        acc = stack[-1][1]
        for _, left in reversed(stack[:-1]):
            acc = node(left, acc)
        roots.append(acc)
    return roots


def root_from_path(leaf, index, size, proof):
    """PATH(index, D[size]) read back into a root; None when the proof has the wrong shape."""
    if size == 1:
        return leaf if not proof else None
    if not proof or index >= size:
        return None
    k = split(size)
    if index < k:
        sub = root_from_path(leaf, index, k, proof[:-1])
        return None if sub is None else node(sub, proof[-1])
    sub = root_from_path(leaf, index - k, size - k, proof[:-1])
    return None if sub is None else node(proof[-1], sub)


def verify_inclusion(leaf, index, size, proof, root):
    return 0 <= index < size and root_from_path(leaf, index, size, proof) == root


def _subproof_roots(m, n, proof, complete, old_root):
    """Read SUBPROOF(m, D[n], complete) back into (old root, new root); None on a bad shape."""
    if m == n:
        if complete:
            return (old_root, old_root) if not proof else None
        return (proof[0], proof[0]) if len(proof) == 1 else None
    if not proof:
        return None
    k = split(n)
    if m <= k:
        sub = _subproof_roots(m, k, proof[:-1], complete, old_root)
        return None if sub is None else (sub[0], node(sub[1], proof[-1]))
    sub = _subproof_roots(m - k, n - k, proof[:-1], False, old_root)
    return None if sub is None else (node(proof[-1], sub[0]), node(proof[-1], sub[1]))


def verify_consistency(m, n, old_root, new_root, proof):
    if not 0 < m <= n:
        return False
    if m == n:
        return not proof and old_root == new_root
    got = _subproof_roots(m, n, proof, True, old_root)
    return got is not None and got == (old_root, new_root)


def flipped(hashes, i, bit):
    out = list(hashes)
    b = bytearray(out[i])
    b[bit // 8] ^= 1 << (bit % 8)
    out[i] = bytes(b)
    return out


def flip1(h, bit):
    return flipped([h], 0, bit)[0]


# --------------------------------------------------------------------------------------------
# The log as the API shows it.


canonical = canonical_text


def chain_leaves(events):
    """Recompute every chain hash from the events; return the Merkle leaves."""
    prev, leaves = "0" * 64, []
    for i, ev in enumerate(events):
        assert ev["seq"] == i + 1
        body = {k: v for k, v in ev.items() if k not in ("prev_hash", "hash")}
        h = hashlib.sha256(bytes.fromhex(prev) + canonical(body).encode()).hexdigest()
        assert ev["prev_hash"] == prev and ev["hash"] == h, f"chain broken at {ev['seq']}"
        leaves.append(leaf_hash(h))
        prev = h
    return leaves


def checkpoint_message(cp):
    return (f"signoff-checkpoint/v1\nsize {cp['size']}\nroot {cp['root']}\ntime {cp['at']}\n"
            f"key {cp['key_id']}\n").encode()


def key_id(pk):
    return hashlib.sha256(pk).hexdigest()[:16]


_CHECKED = set()


def check_checkpoint(cp, pk, roots):
    """The checkpoint signs the root Python computes for its size, with the daemon's key."""
    assert cp["root"] == roots[cp["size"]].hex(), f"checkpoint {cp['size']} signs the wrong root"
    memo = (cp["size"], cp["root"], cp["at"], cp["key_id"], cp["signature"], pk)
    if memo in _CHECKED:  # pure Python Ed25519 is slow: each distinct checkpoint once
        return
    assert TIME_RE.match(cp["at"]) and HEX64_RE.match(cp["root"]), cp
    assert cp["key_id"] == key_id(pk), cp
    assert cp["root"] == roots[cp["size"]].hex(), f"checkpoint {cp['size']} signs the wrong root"
    assert ed25519_verify(pk, checkpoint_message(cp), bytes.fromhex(cp["signature"])), \
        f"checkpoint {cp['size']}: the Ed25519 signature does not hold"
    # and it covers exactly what it says: another size, root or time breaks it
    for field, value in [("size", cp["size"] + 1), ("root", "0" * 64),
                         ("at", cp["at"][:-2] + ("1Z" if cp["at"][-2] != "1" else "2Z"))]:
        forged = dict(cp, **{field: value})
        assert not ed25519_verify(pk, checkpoint_message(forged), bytes.fromhex(cp["signature"]))
    _CHECKED.add(memo)


def export_lines(client, after=0):
    resp = client.get(f"/v1/audit/export?format=jsonl&after={after}")
    assert resp.status_code == 200, resp.text[:300]
    assert resp.headers["Content-Type"].startswith("application/x-ndjson")
    return [json.loads(line) for line in resp.text.splitlines() if line]


def wait_signed(client, size, timeout=15):
    def signed():
        r = client.get("/v1/audit/checkpoint")
        return r.status_code == 200 and r.json()["size"] >= size and r.json()
    return wait_until(signed, timeout=timeout, interval=0.05, what=f"a checkpoint of size {size}")


def submit_many(bot, n, tag):
    for i in range(n):
        bot.submit(sample_action(resource=f"deploy/{tag}-{i}"), intent=f"{tag} {i}")


AUDIT = {"checkpoint_every": 1, "checkpoint_interval": "1s"}


def audit_cfg(workdir):
    return {"audit": dict(AUDIT, signing_key_file=f"{workdir}/audit.key")}


# --------------------------------------------------------------------------------------------
# Proofs against Python.


def test_roots_proofs_and_signatures_hold_against_python(start_daemon, tmp_path):
    wd = tmp_path / "daemon0"
    d = start_daemon(policy={"default": "allow"}, extra=audit_cfg(wd))
    bot, erin = d.client("deploy-bot"), d.client("erin")
    pub = ok(erin.get("/v1/audit/pubkey"))
    pk = bytes.fromhex(pub["public_key"])
    assert pub["algorithm"] == "ed25519" and pub["key_id"] == key_id(pk)

    # Bursts of submissions, each started right after a checkpoint, so that checkpoints
    # land on (at least) these sizes; the sweeper may sign more in between.
    wait_signed(erin, 1)  # daemon.started
    total = 1
    for burst in [1, 2, 3, 6, 17, 34, 1, 247]:
        submit_many(bot, burst, f"b{total}")
        total += burst
        wait_signed(erin, total)
    assert total == 312

    events = erin.audit_events(limit=1000)
    assert len(events) == 312, "each submission should be one event, after daemon.started"
    leaves = chain_leaves(events)
    roots = all_roots(leaves)
    for n in range(0, 70):
        assert roots[n] == mth(leaves[:n])
    assert roots[312] == mth(leaves)

    # Every checkpoint: the root Python computes, signed by the daemon's key, in the export
    # right after the event it ends at.
    lines = export_lines(erin)
    assert lines[0]["export"]["public_key"] == pub["public_key"]
    cps, seen = [], 0
    for line in lines[1:]:
        if "event" in line:
            seen = line["event"]["seq"]
        else:
            cp = line["checkpoint"]
            assert cp["size"] == seen, "a checkpoint must follow the event it ends at"
            check_checkpoint(cp, pk, roots)
            cps.append(cp["size"])
    sizes = cps
    assert sizes[-1] == 312 and {1, 2, 4, 7, 13, 30, 64, 65} <= set(sizes), sizes

    # Inclusion: every seq at size 64 and 65, every bit of every proof flipped at 64; random
    # seqs at 312; each proof's event and hashes are the log's.
    rng = random.Random(6962)
    checks = [(64, s) for s in range(1, 65)] + [(65, s) for s in range(1, 66)] + \
             [(312, s) for s in rng.sample(range(1, 313), 40)] + [(312, 1), (312, 312), (1, 1),
                                                                  (7, 5), (30, 30)]
    for size, seq in checks:
        p = ok(erin.get(f"/v1/audit/proof?seq={seq}&size={size}"))
        assert p["seq"] == seq and p["checkpoint"]["size"] == size
        assert p["hash"] == events[seq - 1]["hash"] and p["prev_hash"] == events[seq - 1]["prev_hash"]
        assert p["event"] == {k: v for k, v in events[seq - 1].items()
                              if k not in ("hash", "prev_hash")}
        check_checkpoint(p["checkpoint"], pk, roots)
        proof = [bytes.fromhex(h) for h in p["proof"]]
        root, lf = roots[size], leaf_hash(p["hash"])
        assert verify_inclusion(lf, seq - 1, size, proof, root), f"seq {seq} in {size}"
        every_bit = size == 64 or seq in (1, 312) or size < 64
        bits = range(256) if every_bit else rng.sample(range(256), 8)
        for i in range(len(proof)):
            for bit in bits:
                assert not verify_inclusion(lf, seq - 1, size, flipped(proof, i, bit), root), \
                    f"seq {seq} in {size}: proof verified with bit {bit} of hash {i} flipped"
        for bit in bits:
            assert not verify_inclusion(flip1(lf, bit), seq - 1, size, proof, root)
            assert not verify_inclusion(lf, seq - 1, size, proof, flip1(root, bit))
        for other in {seq - 2, seq, seq + 1} - {seq - 1}:
            if other >= 0:
                assert not verify_inclusion(lf, other, size, proof, root)

    # The latest checkpoint is the default; sizes that are not checkpoints are refused.
    latest = ok(erin.get("/v1/audit/proof?seq=3"))
    assert latest["checkpoint"]["size"] == 312
    gaps = [n for n in range(3, 312) if n not in sizes]
    expect_error(erin.get(f"/v1/audit/proof?seq=3&size={gaps[0]}"), 404, "not_found")
    expect_error(erin.get("/v1/audit/proof?seq=66&size=65"), 404, "not_found")
    expect_error(erin.get("/v1/audit/proof?seq=0"), 404, "not_found")

    # Consistency between every pair of checkpoints, every bit flipped.
    for a in sizes:
        for b in sizes:
            if a > b:
                continue
            p = ok(erin.get(f"/v1/audit/proof?from={a}&to={b}"))
            assert p["from"] == a and p["to"] == b
            assert p["from_checkpoint"]["size"] == a and p["to_checkpoint"]["size"] == b
            check_checkpoint(p["from_checkpoint"], pk, roots)
            check_checkpoint(p["to_checkpoint"], pk, roots)
            proof = [bytes.fromhex(h) for h in p["proof"]]
            assert verify_consistency(a, b, roots[a], roots[b], proof), f"{a} -> {b}"
            for i in range(len(proof)):
                for bit in range(256):
                    assert not verify_consistency(a, b, roots[a], roots[b],
                                                  flipped(proof, i, bit)), \
                        f"{a} -> {b}: verified with bit {bit} of hash {i} flipped"
            for bit in range(0, 256, 7):
                assert not verify_consistency(a, b, flip1(roots[a], bit), roots[b], proof)
                assert not verify_consistency(a, b, roots[a], flip1(roots[b], bit), proof)
            if a < b:
                assert not verify_consistency(a, b, roots[a], roots[b], proof[:-1])
                assert not verify_consistency(a, b, roots[a], roots[b], proof + [roots[b]])
    expect_error(erin.get(f"/v1/audit/proof?from={gaps[0]}&to=312"), 404, "not_found")
    expect_error(erin.get("/v1/audit/proof?from=7&to=4"), 400, "bad_request")

    # The daemon's own verification agrees.
    v = ok(erin.get("/v1/audit/verify"))
    assert v["ok"] is True and v["events"] == 312 and v["signed_size"] == 312, v
    assert v["checkpoints"] == len(sizes)
    assert ok(erin.get("/v1/audit/checkpoint"))["size"] == 312

    # Who may ask: the public key is public; the log is for auditors and admins.
    assert ok(d.client("bob").get("/v1/audit/pubkey"))["public_key"] == pub["public_key"]
    for path in ["/v1/audit/checkpoint", "/v1/audit/proof?seq=1", "/v1/audit/verify",
                 "/v1/audit/export"]:
        expect_error(bot.get(path), 403, "forbidden")
        assert d.client("carol").get(path).status_code == 200, path


# --------------------------------------------------------------------------------------------
# Tampering with the store file.

# A log of 12 events with checkpoints over 1, 4, 8 and then every event to 12:
#   1 daemon.started, 2..12 request.submitted.
BASE_CPS = [1, 4, 8, 9, 10, 11, 12]


def build_base(wd):
    d = Daemon(wd, make_config(wd, {"default": "allow"}, None, None, audit_cfg(wd)))
    d.start()
    try:
        bot, erin = d.client("deploy-bot"), d.client("erin")
        wait_signed(erin, 1)
        done = 1
        for size in BASE_CPS[1:]:
            submit_many(bot, size - done, f"base{size}")
            done = size
            wait_signed(erin, size)
        events = erin.audit_events()
        pubkey = ok(erin.get("/v1/audit/pubkey"))["public_key"]
    finally:
        assert d.stop() == 0
    assert [e["seq"] for e in events] == list(range(1, 13))
    cps = [r[0] for r in store_rows(wd, "SELECT size FROM checkpoints ORDER BY size")]
    return {"dir": wd, "events": events, "pubkey": pubkey}, cps


@pytest.fixture(scope="module")
def base_log(tmp_path_factory):
    # The sweeper signs once a second; a tick in the middle of a burst of three submissions
    # would add a checkpoint the expectations below do not allow for: build again then.
    for _ in range(3):
        base, cps = build_base(tmp_path_factory.mktemp("audit-base"))
        if cps == BASE_CPS:
            return base
    pytest.fail(f"could not build a log with checkpoints exactly at {BASE_CPS} (got {cps})")


class Tampered:
    """A copy of the base log (its SQLite files, or under postgres a copy of its database),
    edited with SQL, then served by a fresh daemon."""

    def __init__(self, base, tmp_path, name):
        self.dir = tmp_path / name
        self.dir.mkdir()
        if POSTGRES:
            bind_store_database(self.dir, new_database(template=store_database(base["dir"])))
        for f in base["dir"].iterdir():
            if f.name.startswith("signoff.db") or f.name == "audit.key":
                shutil.copy2(f, self.dir / f.name)
        self.daemon = None

    def sql(self, *statements):
        """One transaction of statements: SQL text, or (SQL with ? placeholders, args)."""
        store_sql(self.dir, *statements)

    def rows(self, query, *args):
        return store_rows(self.dir, query, *args)

    def start(self):
        self.daemon = Daemon(self.dir, make_config(self.dir, {"default": "allow"}, None, None,
                                                   audit_cfg(self.dir)))
        return self.daemon.start()

    def verify(self):
        """(exit code, output) of `signoff audit verify`, and GET /v1/audit/verify."""
        d = self.daemon
        r = run_cli(["audit", "verify"], d.url, CAST["erin"].token, self.dir)
        js = run_cli(["audit", "verify", "--json"], d.url, CAST["erin"].token, self.dir)
        api = ok(d.client("erin").get("/v1/audit/verify"))
        return r.returncode, r.stdout.decode() + r.stderr.decode(), js, api

    def stop(self):
        if self.daemon:
            self.daemon.stop()
            reports = self.daemon.sanitizer_reports()
            assert not reports, f"sanitizer reported {reports}:\n{self.daemon.log_text()[-4000:]}"


@pytest.fixture
def tamper(base_log, tmp_path):
    made = []

    def factory(name):
        t = Tampered(base_log, tmp_path, name)
        made.append(t)
        return t

    yield factory
    for t in made:
        t.stop()


def assert_fails_at(t, seq, words):
    code, out, js, api = t.verify()
    assert code == 1, f"signoff audit verify exited {code} on a tampered log:\n{out}"
    assert f"FAILED at event {seq}:" in out, f"expected the failure at event {seq}:\n{out}"
    assert words in out, f"expected {words!r} in:\n{out}"
    assert js.returncode == 1
    j = json.loads(js.stdout)
    assert j["ok"] is False and j["first_bad_seq"] == seq, j
    assert api["ok"] is False and api["first_bad_seq"] == seq, api
    assert words in api["reason"], api


def forge_event(prev_hash, seq, at_ms, data):
    """A correctly chained event row (seq, at, type, request_id, actor, data, prev, hash)."""
    import time as _t
    at = _t.strftime("%Y-%m-%dT%H:%M:%S", _t.gmtime(at_ms // 1000)) + ".%03dZ" % (at_ms % 1000)
    body = {"seq": seq, "at": at, "type": "request.reviewed", "request_id": None,
            "actor": "mallory", "data": data}
    h = hashlib.sha256(bytes.fromhex(prev_hash) + canonical(body).encode()).hexdigest()
    return (seq, at_ms, "request.reviewed", None, "mallory", canonical(data), prev_hash, h)


INSERT = "INSERT INTO audit_events (seq, at, type, request_id, actor, data, prev_hash, hash) " \
         "VALUES (?, ?, ?, ?, ?, ?, ?, ?)"


def test_untouched_log_verifies(tamper):
    t = tamper("untouched")
    t.start()
    code, out, js, api = t.verify()
    assert code == 0, out
    assert out.startswith("ok: 13 events"), out
    assert api["ok"] is True and api["events"] >= 13 and "first_bad_seq" not in api, api


def test_one_changed_byte_of_an_event_is_named(tamper):
    t = tamper("modified")
    (data,) = t.rows("SELECT data FROM audit_events WHERE seq = 6")[0]
    assert '"base8 ' in data
    t.sql(("UPDATE audit_events SET data = ? WHERE seq = 6", (data.replace('"base8 ', '"base9 ', 1),)))
    t.start()
    assert_fails_at(t, 6, "event 6 was modified")


def test_a_deleted_event_is_named(tamper):
    # Fails today (src bug): with a gap in seq, signoffd refuses to start ("cannot read the
    # audit log to rebuild its tree: store failure", no seq named), so neither
    # `signoff audit verify` nor GET /v1/audit/verify can name event 6.
    t = tamper("deleted")
    t.sql("DELETE FROM audit_events WHERE seq = 6")
    t.start()
    assert_fails_at(t, 6, "expected event 6, found 7")


def test_a_deleted_event_with_the_rest_renumbered_is_named(tamper):
    t = tamper("deleted-renumbered")
    t.sql("DELETE FROM audit_events WHERE seq = 6",
          "UPDATE audit_events SET seq = seq + 1000 WHERE seq > 6",
          "UPDATE audit_events SET seq = seq - 1001 WHERE seq > 1000")
    t.start()
    assert_fails_at(t, 6, "event 6 does not follow event 5")


def test_two_swapped_events_are_named(tamper):
    t = tamper("swapped")
    t.sql("UPDATE audit_events SET seq = -6 WHERE seq = 6",
          "UPDATE audit_events SET seq = 6 WHERE seq = 7",
          "UPDATE audit_events SET seq = 7 WHERE seq = -6")
    t.start()
    assert_fails_at(t, 6, "event 6 does not follow event 5")


def test_an_inserted_event_is_named(tamper, base_log):
    # A forged event 6 chained onto event 5, the real ones moved up: two events claim to follow
    # event 5, and the chain breaks at the second (the first cannot be told from the real one
    # before the checkpoint of 8, which the verifier never reaches).
    t = tamper("inserted")
    ev5 = base_log["events"][4]
    t.sql("UPDATE audit_events SET seq = seq + 1000 WHERE seq >= 6",
          "UPDATE audit_events SET seq = seq - 999 WHERE seq > 1000",
          (INSERT, forge_event(ev5["hash"], 6, 1764000000000, {"decision": "approve"})))
    t.start()
    assert_fails_at(t, 7, "event 7 does not follow event 6")


def test_an_inserted_event_with_the_chain_rewritten_is_named_by_the_checkpoint(tamper, base_log):
    # The forger also recomputes every later hash: the chain holds, checkpoint 8 does not.
    t = tamper("inserted-rechained")
    rows = t.rows("SELECT seq, at, type, request_id, actor, data FROM audit_events "
                  "WHERE seq >= 6 ORDER BY seq")
    prev = base_log["events"][4]["hash"]
    forged = forge_event(prev, 6, 1764000000000, {"decision": "approve"})
    statements = ["DELETE FROM audit_events WHERE seq >= 6", (INSERT, forged)]
    prev = forged[-1]
    import time as _t
    for seq, at, typ, rid, actor, data in rows:
        at_s = _t.strftime("%Y-%m-%dT%H:%M:%S", _t.gmtime(at // 1000)) + ".%03dZ" % (at % 1000)
        body = {"seq": seq + 1, "at": at_s, "type": typ, "request_id": rid, "actor": actor,
                "data": json.loads(data)}
        h = hashlib.sha256(bytes.fromhex(prev) + canonical(body).encode()).hexdigest()
        statements.append((INSERT, (seq + 1, at, typ, rid, actor, data, prev, h)))
        prev = h
    t.sql(*statements)
    t.start()
    assert_fails_at(t, 5, "differ from what checkpoint 8 signed")


def test_a_truncated_tail_is_named(tamper):
    # Events 10..12 deleted, their checkpoints kept. The restarted daemon sees a checkpoint
    # beyond the log's end, appends nothing and refuses changes, so event 10 is named missing.
    t = tamper("truncated")
    t.sql("DELETE FROM audit_events WHERE seq >= 10")
    t.start()
    assert_fails_at(t, 10, "events are missing")


def test_a_truncated_tail_is_named_between_checkpoints(tamper):
    # Events 6..12 deleted; the checkpoints of 8 and later kept. Event 6 is the first missing.
    t = tamper("truncated-sparse")
    t.sql("DELETE FROM audit_events WHERE seq >= 6")
    t.start()
    code, out, js, api = t.verify()
    assert code == 1, out
    assert "FAILED at event 6:" in out, (
        "the log was cut after event 5 (checkpoints of 8..12 remain), so event 6 is the first "
        f"that is not what was signed:\n{out}")


def forged_checkpoint_row(size, root, seed, claimed_key_id=None):
    pk = ed25519_public(seed)
    cp = {"size": size, "root": root, "at": "2025-11-24T16:00:00.000Z",
          "key_id": claimed_key_id or key_id(pk)}
    sig = ed25519_sign(seed, checkpoint_message(cp)).hex()
    return (cp["size"], 1764000000000, cp["key_id"], cp["root"], sig)


def test_a_checkpoint_signed_by_another_key_is_named(tamper):
    t = tamper("forged-checkpoint")
    (root,) = t.rows("SELECT root FROM checkpoints WHERE size = 8")[0]
    row = forged_checkpoint_row(8, root, hashlib.sha256(b"mallory").digest())
    t.sql("DELETE FROM checkpoints WHERE size = 8",
          ("INSERT INTO checkpoints (size, at, key_id, root, signature) VALUES (?, ?, ?, ?, ?)",
           row))
    t.start()
    assert_fails_at(t, 8, "is not trusted")


def test_a_checkpoint_under_the_right_key_id_with_a_forged_signature_is_named(tamper, base_log):
    t = tamper("forged-signature")
    (root,) = t.rows("SELECT root FROM checkpoints WHERE size = 8")[0]
    row = forged_checkpoint_row(8, root, hashlib.sha256(b"mallory").digest(),
                                claimed_key_id=key_id(bytes.fromhex(base_log["pubkey"])))
    t.sql("DELETE FROM checkpoints WHERE size = 8",
          ("INSERT INTO checkpoints (size, at, key_id, root, signature) VALUES (?, ?, ?, ?, ?)",
           row))
    t.start()
    assert_fails_at(t, 8, "bad signature")


# --------------------------------------------------------------------------------------------
# Offline verification of an export.


def test_export_verifies_offline_and_a_flipped_byte_is_named(start_daemon, tmp_path):
    wd = tmp_path / "daemon0"
    d = start_daemon(policy={"default": "allow"}, extra=audit_cfg(wd))
    bot, erin = d.client("deploy-bot"), d.client("erin")
    submit_many(bot, 9, "offline")
    wait_signed(erin, 10)
    tok = CAST["erin"].token
    exp, pkfile = tmp_path / "audit.jsonl", tmp_path / "audit.pub"
    r = run_cli(["audit", "export", "-o", str(exp)], d.url, tok, tmp_path)
    assert r.returncode == 0, r.stderr
    r = run_cli(["audit", "pubkey"], d.url, tok, tmp_path)
    assert r.returncode == 0 and HEX64_RE.match(r.stdout.decode().strip()), r.stdout
    pkfile.write_bytes(r.stdout)
    pkhex = r.stdout.decode().strip()

    # Offline: no daemon address, only the file and the key.
    r = run_cli(["audit", "verify", "--file", str(exp), "--pubkey-file", str(pkfile)], None, None,
                tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.decode().startswith("ok: 10 events, 1 checkpoints verified (signed through 10)")
    r = run_cli(["audit", "verify", "--file", str(exp), "--pubkey", pkhex], None, None, tmp_path)
    assert r.returncode == 0

    # The same check in Python, from the file alone.
    lines = [json.loads(x) for x in exp.read_text().splitlines()]
    events = [dict(x["event"], hash=x["hash"], prev_hash=x["prev_hash"]) for x in lines
              if "event" in x]
    roots = all_roots(chain_leaves(events))
    cps = [x["checkpoint"] for x in lines if "checkpoint" in x]
    assert [c["size"] for c in cps] == [10]
    check_checkpoint(cps[0], bytes.fromhex(pkhex), roots)

    # One byte of event 4 changed: named.
    text = exp.read_bytes()
    lines = text.split(b"\n")
    idx = next(i for i, ln in enumerate(lines) if b'"seq":4,' in ln)
    pos = lines[idx].index(b"offline 2")
    bad = bytearray(lines[idx])
    bad[pos] ^= 0x01
    lines[idx] = bytes(bad)
    bad_file = tmp_path / "bad.jsonl"
    bad_file.write_bytes(b"\n".join(lines))
    r = run_cli(["audit", "verify", "--file", str(bad_file), "--pubkey-file", str(pkfile)],
                None, None, tmp_path)
    assert r.returncode == 1, r.stdout
    assert b"FAILED at event 4:" in r.stdout, r.stdout

    # Another key is not trusted.
    other = ed25519_public(b"\x07" * 32).hex()
    r = run_cli(["audit", "verify", "--file", str(exp), "--pubkey", other], None, None, tmp_path)
    assert r.returncode == 1 and b"FAILED at event 10:" in r.stdout and b"not trusted" in r.stdout

    # A file without its checkpoint lines still chains, but nothing is signed.
    unsigned = tmp_path / "unsigned.jsonl"
    unsigned.write_bytes(b"\n".join(ln for ln in text.split(b"\n") if b'"checkpoint"' not in ln))
    r = run_cli(["audit", "verify", "--file", str(unsigned), "--pubkey", pkhex], None, None,
                tmp_path)
    assert r.returncode == 0 and b"10 newer events are not yet under a checkpoint" in r.stdout

    # An export after a seq starts there; CSV has seq, hash and prev_hash on every line.
    part = export_lines(erin, after=6)
    assert [x["event"]["seq"] for x in part if "event" in x] == [7, 8, 9, 10]
    resp = erin.get("/v1/audit/export?format=csv")
    assert resp.status_code == 200 and resp.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(resp.text)))
    assert rows[0] == ["seq", "at", "type", "request_id", "actor", "hash", "prev_hash", "data"]
    prev = "0" * 64
    for i, row in enumerate(rows[1:]):
        assert len(row) == 8, row
        assert int(row[0]) == i + 1 and HEX64_RE.match(row[5]) and row[6] == prev, row
        assert row[5] == events[i]["hash"]
        assert json.loads(row[7]) == events[i]["data"]
        prev = row[5]
    assert len(rows) == 11
    expect_error(erin.get("/v1/audit/export?format=xml"), 400, "bad_request")


# --------------------------------------------------------------------------------------------
# An audit event that cannot be written: nothing changes.


def fail_audit_inserts(wd):
    """Every insert into the store's audit_events fails from now on, as on a full disk."""
    if POSTGRES:
        store_sql(wd, "CREATE FUNCTION e2e_disk_full() RETURNS trigger LANGUAGE plpgsql "
                      "AS $$ BEGIN RAISE EXCEPTION 'disk full'; END $$",
                  "CREATE TRIGGER e2e_disk_full BEFORE INSERT ON audit_events "
                  "FOR EACH ROW EXECUTE FUNCTION e2e_disk_full()")
    else:
        store_sql(wd, "CREATE TRIGGER full BEFORE INSERT ON audit_events "
                      "BEGIN SELECT RAISE(FAIL, 'disk full'); END")


def allow_audit_inserts(wd):
    if POSTGRES:
        store_sql(wd, "DROP TRIGGER e2e_disk_full ON audit_events",
                  "DROP FUNCTION e2e_disk_full()")
    else:
        store_sql(wd, "DROP TRIGGER full")


def test_audit_write_failure_changes_nothing(start_daemon, tmp_path):
    wd = tmp_path / "daemon0"
    d = start_daemon(policy={"approvers": {"group": "sre", "count": 1}}, extra=audit_cfg(wd))
    bot, bob, carol, erin = (d.client(n) for n in ["deploy-bot", "bob", "carol", "erin"])
    pending = bot.submit(sample_action(resource="deploy/pending"))
    approved = bot.submit(sample_action(resource="deploy/approved"))
    ok(bob.approve(approved["id"]))
    before_events = erin.audit_events()
    before_list = carol.list()["requests"]
    before = {r: bot.show(r) for r in (pending["id"], approved["id"])}

    fail_audit_inserts(wd)
    try:
        expect_error(bot.submit_raw(sample_action(resource="deploy/new")), 503, "unavailable")
        expect_error(bob.approve(pending["id"]), 503, "unavailable")
        expect_error(bot.claim(approved["id"], approved["digest"]), 503, "unavailable")
        expect_error(bot.cancel(pending["id"]), 503, "unavailable")
        # Nothing changed: the requests, the list, the log.
        for rid, snap in before.items():
            assert bot.show(rid) == snap, f"{rid} changed although its audit event failed"
        assert carol.list()["requests"] == before_list, "a refused submission left a row"
        assert erin.audit_events() == before_events
        rows = store_rows(wd, "SELECT count(*) FROM requests")[0][0]
        assert rows == 2
    finally:
        allow_audit_inserts(wd)
    # The same calls now go through, and the log still verifies.
    ok(bot.submit_raw(sample_action(resource="deploy/new")), 201)
    assert ok(bob.approve(pending["id"]))["status"] == "approved"
    assert ok(bot.claim(approved["id"], approved["digest"]))["status"] == "claimed"
    r = run_cli(["audit", "verify"], d.url, CAST["erin"].token, tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert ok(erin.get("/v1/audit/verify"))["ok"] is True
