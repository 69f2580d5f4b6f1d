"""`signoffd -c FILE -t` checks a configuration; errors name the file and the line."""

import re
import subprocess

import pytest

from conftest import CAST, SIGNOFFD, sha256_hex, store_url

TOKEN_HASH = sha256_hex(CAST["alice"].token)


def good_lines(tmp):
    return [
        "server:",                                            # 1
        '  listen: "127.0.0.1:0"',                            # 2
        "store:",                                             # 3
        f'  url: "{store_url(tmp)}"',                         # 4
        "audit:",                                             # 5
        f'  signing_key_file: "{tmp}/audit.key"',             # 6
        "auth:",                                              # 7
        "  admin_group: admins",                              # 8
        "  auditor_group: auditors",                          # 9
        "principals:",                                        # 10
        f'  - {{ id: deploy-bot, kind: agent, owner: alice, token_sha256: "{TOKEN_HASH[::-1]}" }}',  # 11
        f'  - {{ id: alice, kind: human, groups: [sre], token_sha256: "{TOKEN_HASH}" }}',  # 12
        "policy:",                                            # 13
        "  default: review",                                  # 14
        "  approvers: { group: sre, count: 2 }",              # 15
        "  ttl: 30m",                                         # 16
        "  grant_ttl: 10m",                                   # 17
    ]


def check(tmp_path, lines, name="signoff.yaml"):
    if not SIGNOFFD.exists():
        pytest.fail(f"signoffd is not built: {SIGNOFFD}")
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    proc = subprocess.run([str(SIGNOFFD), "-c", str(path), "-t"], cwd=tmp_path,
                          stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
    return proc, (proc.stdout + proc.stderr).decode(errors="replace")


def test_good_config_checks_ok(tmp_path):
    proc, out = check(tmp_path, good_lines(tmp_path))
    assert proc.returncode == 0, out


@pytest.mark.parametrize("durations", [("30s", "10m"), ("2h", "1d"), ("1800", "600")])
def test_duration_forms_are_accepted(tmp_path, durations):
    lines = good_lines(tmp_path)
    lines[15] = f"  ttl: {durations[0]}"
    lines[16] = f"  grant_ttl: {durations[1]}"
    proc, out = check(tmp_path, lines)
    assert proc.returncode == 0, out


def mutate(tmp, line_no, text, insert=False):
    lines = good_lines(tmp)
    if insert:
        lines.insert(line_no - 1, text)
    else:
        lines[line_no - 1] = text
    return lines


BAD_CASES = {
    # name: (line number, replacement text, insert?)
    "unknown top-level key": (13, "polciy_extra: 1", True),
    "unknown server key": (3, "  listn_port: 8700", True),
    "unknown policy key": (16, "  tll: 30m", False),
    "unknown principal key": (12, f'  - {{ id: alice, kind: human, grups: [sre], token_sha256: "{TOKEN_HASH}" }}', False),
    "bad kind": (12, f'  - {{ id: alice, kind: robot, groups: [sre], token_sha256: "{TOKEN_HASH}" }}', False),
    "bad duration": (16, "  ttl: 30 parsecs", False),
    "bad duration unit": (17, "  grant_ttl: 10x", False),
    "negative duration": (16, "  ttl: -5m", False),
    "bad default": (14, "  default: maybe", False),
    "bad token hash": (12, '  - { id: alice, kind: human, groups: [sre], token_sha256: "abc" }', False),
    "bad count": (15, "  approvers: { group: sre, count: zero }", False),
    "bad max_body": (3, "  max_body: lots", True),
    "zero count": (15, "  approvers: { group: sre, count: 0 }", False),
    "unknown owner": (11, f'  - {{ id: deploy-bot, kind: agent, owner: zed, token_sha256: "{TOKEN_HASH[::-1]}" }}', False),
}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_bad_config_names_file_and_line(tmp_path, case):
    line_no, text, insert = BAD_CASES[case]
    proc, out = check(tmp_path, mutate(tmp_path, line_no, text, insert), name="bad-config.yaml")
    assert proc.returncode != 0, f"{case}: -t accepted a bad config:\n{out}"
    assert "bad-config.yaml" in out, f"{case}: error does not name the file:\n{out}"
    assert re.search(rf"(:{line_no}\b|line {line_no}\b)", out), \
        f"{case}: error does not name line {line_no}:\n{out}"


def test_unparseable_yaml_names_line(tmp_path):
    lines = good_lines(tmp_path)
    lines[13] = "  default: [review"
    proc, out = check(tmp_path, lines, name="broken.yaml")
    assert proc.returncode != 0, out
    assert "broken.yaml" in out, out


def test_missing_config_file_fails(tmp_path):
    proc = subprocess.run([str(SIGNOFFD), "-c", str(tmp_path / "nope.yaml"), "-t"],
                          cwd=tmp_path, capture_output=True, timeout=60)
    assert proc.returncode != 0
    assert b"nope.yaml" in proc.stdout + proc.stderr


def test_duplicate_principal_is_refused(tmp_path):
    lines = good_lines(tmp_path)
    lines.insert(12, f'  - {{ id: alice, kind: human, groups: [sre], token_sha256: "{"1" * 64}" }}')
    proc, out = check(tmp_path, lines, name="dup.yaml")
    assert proc.returncode != 0, f"two principals named alice were accepted:\n{out}"
    assert "dup.yaml" in out, out


def test_bad_config_does_not_start_daemon(tmp_path):
    lines = mutate(tmp_path, 14, "  default: maybe")
    path = tmp_path / "bad.yaml"
    path.write_text("\n".join(lines) + "\n")
    proc = subprocess.run([str(SIGNOFFD), "-c", str(path)], cwd=tmp_path,
                          stdin=subprocess.DEVNULL, capture_output=True, timeout=20)
    assert proc.returncode != 0
    assert b"listening on" not in proc.stderr


def test_shared_token_hash_is_refused(tmp_path):
    # Two principals with one token would make the caller's identity ambiguous.
    lines = good_lines(tmp_path)
    lines.insert(12, f'  - {{ id: bob, kind: human, groups: [sre], token_sha256: "{TOKEN_HASH}" }}')
    proc, out = check(tmp_path, lines, name="shared.yaml")
    assert proc.returncode != 0, f"two principals with one token were accepted:\n{out}"
    assert "shared.yaml" in out, out
