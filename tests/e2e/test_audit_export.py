"""Partial exports (--after SEQ, --since TIME) verify on their own: the header carries the
base (the event's hash and the Merkle frontier there) and the next checkpoint proves it."""
import os
import subprocess
import time

from conftest import CAST, SIGNOFF, ok, sample_action


def cli(d, *args):
    env = dict(os.environ, SIGNOFF_URL=d.url, SIGNOFF_TOKEN=CAST["erin"].token)
    return subprocess.run([str(SIGNOFF)] + list(args), env=env, capture_output=True, text=True,
                          timeout=60)


def wait_signed(d):
    erin = d.client("erin")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        head = erin.audit_events()[-1]["seq"]
        cp = erin.get("/v1/audit/checkpoint")
        if cp.status_code == 200 and cp.json()["size"] >= head:
            return head
        time.sleep(0.2)
    raise AssertionError("no checkpoint covered the log in time")


def test_partial_exports_verify_and_tampering_is_found(start_daemon, tmp_path):
    d = start_daemon(policy={"default": "allow"},
                     extra={"audit": {"signing_key_file": str(tmp_path / "k.key"),
                                      "checkpoint_every": 3, "checkpoint_interval": "1s"}})
    bot = d.client("deploy-bot")
    for i in range(5):
        bot.submit(sample_action(resource=f"a/{i}"))
    middle = wait_signed(d)
    time.sleep(1.1)  # a clear time boundary between the two halves
    cut = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
    time.sleep(0.1)
    for i in range(5):
        bot.submit(sample_action(resource=f"b/{i}"))
    wait_signed(d)
    key = tmp_path / "pub"
    key.write_text(ok(d.client("erin").get("/v1/audit/pubkey"))["public_key"] + "\n")

    for how in (["--after", str(middle - 2)], ["--since", cut]):
        out = tmp_path / ("part" + how[0] + ".jsonl")
        r = cli(d, "audit", "export", *how, "-o", str(out))
        assert r.returncode == 0, r.stderr
        lines = out.read_text().splitlines()
        assert '"base":{' in lines[0], lines[0]
        first = next(l for l in lines if l.startswith('{"event"'))
        assert '"seq":1,' not in first, "a partial export started at the beginning"
        v = cli(d, "audit", "verify", "--file", str(out), "--pubkey-file", str(key))
        assert v.returncode == 0 and "ok:" in v.stdout, v.stdout + v.stderr
        # one changed byte is found
        i = next(n for n, l in enumerate(lines) if l.startswith('{"event"'))
        lines[i] = lines[i].replace('"deploy-bot"', '"deploy-bоt"', 1)
        bad = tmp_path / "bad.jsonl"
        bad.write_text("\n".join(lines) + "\n")
        v = cli(d, "audit", "verify", "--file", str(bad), "--pubkey-file", str(key))
        assert v.returncode == 1 and "FAILED at event" in v.stdout, v.stdout

    # --since picks the first event at or after the time
    r = cli(d, "audit", "export", "--since", cut)
    submitted = [l for l in r.stdout.splitlines() if '"type":"request.submitted"' in l]
    assert len(submitted) == 5, len(submitted)
    assert all('"resource":"b/' in l for l in submitted), submitted[0][:300]
