"""Retention: events older than audit.retention move to an archive file that verifies on its
own, and what stays online still verifies. The daemon runs 100 days in the past under
faketime first, then at the real time."""
import hashlib
import json
import os
import re
import signal
import subprocess
import time

import pytest
import requests

from conftest import CAST, SIGNOFF, SIGNOFFD, make_config, sample_action

LISTEN_RE = re.compile(rb"listening on http://127\.0\.0\.1:(\d+)")


FAKETIME_LIBS = ["/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
                 "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1"]


def start(tmp_path, cfg, fake=None):
    cmd = [str(SIGNOFFD), "-c", str(cfg)]
    env = dict(os.environ)
    if fake:
        # The library itself, not the faketime wrapper, so that signals reach signoffd.
        lib = next((p for p in FAKETIME_LIBS if os.path.exists(p)), None)
        if not lib:
            pytest.fail("libfaketime is needed (scripts/bootstrap installs faketime)")
        env.update(LD_PRELOAD=lib, FAKETIME=fake, FAKETIME_DONT_FAKE_MONOTONIC="1",
                   ASAN_OPTIONS=env.get("ASAN_OPTIONS", "") + ":verify_asan_link_order=0")
    log = open(tmp_path / f"signoffd-{time.monotonic_ns()}.log", "wb+")
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=log)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        log.seek(0)
        m = LISTEN_RE.search(log.read())
        if m:
            return proc, f"http://127.0.0.1:{m.group(1).decode()}", log
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    log.seek(0)
    proc.kill()
    pytest.fail(f"signoffd did not start: {log.read()[-2000:]!r}")


def stop(proc, log):
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(15) == 0
    log.seek(0)
    text = log.read().decode(errors="replace")
    assert "AddressSanitizer" not in text and "runtime error:" not in text, text[-4000:]
    return text


def api(url, who, method="GET", path="/", body=None):
    r = requests.request(method, url + path, json=body, timeout=30,
                         headers={"Authorization": f"Bearer {CAST[who].token}"})
    return r


def wait_signed(url):
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        head = api(url, "erin", path="/v1/audit?limit=1000").json()["events"][-1]["seq"]
        cp = api(url, "erin", path="/v1/audit/checkpoint")
        if cp.status_code == 200 and cp.json()["size"] >= head:
            return head
        time.sleep(0.2)
    pytest.fail("no checkpoint covered the log in time")


def cli(url, *args):
    env = dict(os.environ, SIGNOFF_URL=url, SIGNOFF_TOKEN=CAST["erin"].token)
    return subprocess.run([str(SIGNOFF)] + list(args), env=env, capture_output=True, text=True,
                          timeout=60)


def test_old_events_are_archived_and_both_parts_verify(tmp_path):
    cfg = tmp_path / "signoff.yaml"
    cfg.write_text(make_config(tmp_path, policy={"default": "allow"}, extra={"audit": {
        "signing_key_file": str(tmp_path / "audit.key"), "checkpoint_interval": "1s",
        "retention": "90d", "archive_dir": str(tmp_path / "archive")}}))

    proc, url, log = start(tmp_path, cfg, fake="-100d")
    for i in range(3):
        r = api(url, "deploy-bot", "POST", "/v1/requests",
                {"action": sample_action(resource=f"old/{i}"), "intent": "then"})
        assert r.status_code == 201, r.text
    old_head = wait_signed(url)
    first_key = api(url, "erin", path="/v1/audit/pubkey").json()["public_key"]
    stop(proc, log)

    proc, url, log = start(tmp_path, cfg)
    try:
        deadline = time.monotonic() + 20
        files = []
        while time.monotonic() < deadline and not files:
            files = sorted((tmp_path / "archive").glob("audit-*.jsonl")) \
                if (tmp_path / "archive").exists() else []
            time.sleep(0.2)
        assert files, "nothing was archived"
        archive = files[0]
        r = api(url, "deploy-bot", "POST", "/v1/requests",
                {"action": sample_action(resource="new/1"), "intent": "now"})
        assert r.status_code == 201
        wait_signed(url)

        # What stays online starts after the archive and still verifies, on the server and
        # through the CLI.
        events = api(url, "erin", path="/v1/audit?limit=1000").json()["events"]
        assert events[0]["seq"] > 1, "archived events are still online"
        archived = [e for e in events if e["type"] == "audit.archived"]
        assert archived, "archiving was not audited"
        data = archived[0]["data"]
        assert data["from_seq"] == 1 and data["to_seq"] >= old_head - 1
        assert data["sha256"] == hashlib.sha256(archive.read_bytes()).hexdigest()
        v = api(url, "erin", path="/v1/audit/verify").json()
        assert v["ok"] and v["archived_through"] == data["to_seq"], v
        online = cli(url, "audit", "verify")
        assert online.returncode == 0 and "archived" in online.stdout, online.stdout + online.stderr

        # The archive verifies on its own with the key it was signed with ...
        keyfile = tmp_path / "first.pub"
        keyfile.write_text(first_key + "\n")
        alone = cli(url, "audit", "verify", "--file", str(archive), "--pubkey-file", str(keyfile))
        assert alone.returncode == 0, alone.stdout + alone.stderr
        # ... and so does an export of what remains online.
        export = tmp_path / "online.jsonl"
        assert cli(url, "audit", "export", "-o", str(export)).returncode == 0
        rest = cli(url, "audit", "verify", "--file", str(export), "--pubkey-file", str(keyfile))
        assert rest.returncode == 0, rest.stdout + rest.stderr

        # Proofs still work for what is online, and say so for what is archived.
        new_id = r.json()["id"]
        prove = cli(url, "audit", "prove", new_id)
        assert prove.returncode == 0, prove.stdout + prove.stderr
        gone = api(url, "erin", path="/v1/audit/proof?seq=1")
        assert gone.status_code == 404 and "archived" in gone.json()["error"]["message"]

        # A changed byte in the archive is found.
        lines = archive.read_text().split("\n")
        lines[2] = lines[2].replace('"then"', '"THEN"', 1)
        bad = tmp_path / "bad.jsonl"
        bad.write_text("\n".join(lines))
        broken = cli(url, "audit", "verify", "--file", str(bad), "--pubkey-file", str(keyfile))
        assert broken.returncode == 1 and "FAILED at event" in broken.stdout, broken.stdout
    finally:
        stop(proc, log)


def test_retention_below_90_days_is_refused(tmp_path):
    cfg = tmp_path / "signoff.yaml"
    cfg.write_text(make_config(tmp_path, extra={"audit": {
        "signing_key_file": str(tmp_path / "audit.key"), "retention": "30d"}}))
    r = subprocess.run([str(SIGNOFFD), "-c", str(cfg), "-t"], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode != 0 and "retention" in r.stderr, r.stderr
