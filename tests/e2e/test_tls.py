"""TLS: with server.tls_cert_file and tls_key_file, signoffd serves HTTPS only."""
import requests

from conftest import CAST, https_daemon


def test_https_only_when_tls_is_configured(tmp_path):
    with https_daemon(tmp_path) as (base, cert):
        assert requests.get(base + "/healthz", verify=str(cert), timeout=10).status_code == 200
        me = requests.get(base + "/v1/whoami", verify=str(cert), timeout=10,
                          headers={"Authorization": f"Bearer {CAST['bob'].token}"})
        assert me.status_code == 200 and me.json()["id"] == "bob"
        # Plain HTTP on the same port gets no API answer.
        try:
            r = requests.get(base.replace("https://", "http://") + "/healthz", timeout=5)
            assert r.status_code != 200, "plain HTTP was served on the TLS port"
        except requests.exceptions.ConnectionError:
            pass
