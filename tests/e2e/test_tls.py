"""TLS: with server.tls_cert_file and tls_key_file, signoffd serves HTTPS only."""
import re
import shutil
import subprocess
import time

import pytest
import requests

from conftest import CAST, SIGNOFFD, make_config

HTTPS_RE = re.compile(rb"listening on https://127\.0\.0\.1:(\d+)")


def make_cert(tmp_path):
    if not shutil.which("openssl"):
        pytest.fail("openssl is needed to make a test certificate")
    key, cert = tmp_path / "tls.key", tmp_path / "tls.crt"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=60)
    return cert, key


def test_https_only_when_tls_is_configured(tmp_path):
    cert, key = make_cert(tmp_path)
    cfg = tmp_path / "signoff.yaml"
    cfg.write_text(make_config(tmp_path, server={"tls_cert_file": str(cert),
                                                 "tls_key_file": str(key)}))
    proc = subprocess.Popen([str(SIGNOFFD), "-c", str(cfg)], cwd=tmp_path,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        port, seen, deadline = None, b"", time.monotonic() + 20
        while port is None and time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line:
                break
            seen += line
            m = HTTPS_RE.search(line)
            if m:
                port = int(m.group(1))
        assert port, f"no https listening line: {seen!r}"
        base = f"https://127.0.0.1:{port}"
        assert requests.get(base + "/healthz", verify=str(cert), timeout=10).status_code == 200
        me = requests.get(base + "/v1/whoami", verify=str(cert), timeout=10,
                          headers={"Authorization": f"Bearer {CAST['bob'].token}"})
        assert me.status_code == 200 and me.json()["id"] == "bob"
        # Plain HTTP on the same port gets no API answer.
        try:
            r = requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
            assert r.status_code != 200, "plain HTTP was served on the TLS port"
        except requests.exceptions.ConnectionError:
            pass
    finally:
        proc.terminate()
        proc.wait(15)
