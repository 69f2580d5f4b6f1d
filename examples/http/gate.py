#!/usr/bin/python3
"""gate.py: ask signoff before doing something privileged, over the plain HTTP API.

    SIGNOFF_URL=http://127.0.0.1:8700 SIGNOFF_TOKEN=so_... \\
        python3 gate.py TABLE ENVIRONMENT OUTPUT [WHY]

It asks to export TABLE from ENVIRONMENT into the file OUTPUT, waits for the decision, and
only once the request is approved claims the grant with the digest of the action it is
about to perform, "exports" (appends one line to OUTPUT), and reports how that went.
Python's standard library only. The same program in C is examples/c/gate.c, in sh
examples/http/gate.sh; the API is in docs/api.md.

Exit status: 0 exported; 1 approved but the export failed (reported);
2 usage; 3 denied; 4 expired or cancelled, or we stopped waiting; 5 the daemon could not be
reached, refused a call or answered something unexpected; 6 the daemon's digest of the
action is not ours. Nothing is exported on 2 to 6. When the export ran but reporting it
failed, the status is still 0 or 1, with a warning.
"""

import hashlib
import http.client
import json
import os
import re
import sys
import time
import urllib.error
import urllib.request

EXIT_DONE, EXIT_ACTION_FAILED, EXIT_USAGE = 0, 1, 2
EXIT_DENIED, EXIT_EXPIRED, EXIT_ERROR, EXIT_DIGEST = 3, 4, 5, 6

POLL_SECONDS = 25  # one long-poll: the daemon holds the answer up to this long
MAX_WAIT_SECONDS = 3600  # in all, before we cancel and give up
HTTP_TIMEOUT = 30  # seconds for one call, on top of the long-poll's wait
MAX_ANSWER = 8 * 1024 * 1024  # bytes; a longer answer is an error
REQUEST_ID = re.compile(r"^req_[0-9A-Za-z]{1,60}$")


class Refused(Exception):
    """A call that did not give the answer we need; carries the exit status."""

    def __init__(self, message, status=EXIT_ERROR, code=None):
        super().__init__(message)
        self.status = status
        self.code = code


def call(method, path, body=None, wait=0):
    """One API call; the answer's JSON object, or Refused. Never retries."""
    try:
        req = urllib.request.Request(
            os.environ["SIGNOFF_URL"].rstrip("/") + path,
            method=method,
            data=None if body is None else json.dumps(body).encode("utf-8"),
            headers={"Authorization": "Bearer " + os.environ["SIGNOFF_TOKEN"],
                     "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=HTTP_TIMEOUT + wait) as resp:
            raw = resp.read(MAX_ANSWER + 1)
    except urllib.error.HTTPError as e:
        # Errors are {"error": {"code", "message"}}; programs match on the code.
        try:
            err = json.loads(e.read(MAX_ANSWER))["error"]
            code, message = str(err["code"]), str(err["message"])
        except (ValueError, KeyError, TypeError):
            code, message = "?", "an error answer that is not the documented JSON"
        raise Refused(f"{method} {path}: HTTP {e.code} {code}: {message}", code=code)
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as e:
        # Refused, unresolvable, timed out, reset, cut short, or a malformed URL or token.
        raise Refused(f"{method} {path}: no usable answer from the daemon: {e}")
    # Fail closed: a success we cannot read is not a success.
    try:
        if len(raw) > MAX_ANSWER:
            raise ValueError("too large")
        answer = json.loads(raw)
        if not isinstance(answer, dict):
            raise ValueError("not an object")
    except ValueError:
        raise Refused(f"{method} {path}: the answer is not the JSON object the API promises")
    return answer


def cancel(rid):
    """Withdraw a pending request; whether that works changes nothing for us."""
    try:
        call("POST", f"/v1/requests/{rid}/cancel", {})
    except Refused:
        pass


def canonical_json(value):
    """The canonical JSON of docs/api.md (rules in docs/audit-format.md): sorted keys, no
    whitespace, UTF-8 as is. json.dumps writes exactly that for everything except reals
    (it writes 3.0 and 0.1 where the canonical form has 3 and 0.10000000000000001); the
    action here holds strings only."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def digest_of(action):
    return hashlib.sha256(canonical_json(action)).hexdigest()


def safe(text):
    """Text someone else wrote (a reviewer's comment), without control characters."""
    return "".join("?" if ord(c) < 0x20 or 0x7f <= ord(c) < 0xa0 else c for c in str(text))


def denial(request):
    for review in request.get("reviews") or []:
        if review.get("decision") == "deny":
            comment = review.get("comment") or ""
            return f" by {safe(review.get('reviewer'))}" + (f": {safe(comment)}" if comment else "")
    for rule in (request.get("decision") or {}).get("rules") or []:
        if rule.get("decide") == "deny":
            return f" by policy rule {safe(rule.get('name'))}: {safe(rule.get('reason'))}"
    return ""


def export_table(table, environment, output, rid):
    """The privileged action, done only after a successful claim: (exit code, detail)."""
    try:
        with open(output, "a", encoding="utf-8") as f:
            f.write(f"export of table {table} from {environment}, approved as {rid}\n")
    except OSError as e:
        return 1, f"could not write {output}: {e.strerror}"
    return 0, f"exported table {table} from {environment} to {output}"


def gate(table, environment, output, why):
    # 1. The action exactly as it will be performed, and our own digest of it. The output
    #    file is part of it: reviewers approve where the data goes, not only what is read.
    action = {"kind": "db.export", "table": table, "environment": environment,
              "destination": output}
    digest = digest_of(action)

    # 2. Ask. The answer says at once approved (by policy), denied, or pending.
    request = call("POST", "/v1/requests", {"action": action, "intent": why})
    rid = request.get("id")
    if not isinstance(rid, str) or not REQUEST_ID.match(rid):
        raise Refused("the daemon's answer has no usable request id")

    # 3. The daemon must have hashed the very action we built; if not, what a reviewer would
    #    approve is not what we would run. Withdraw the request and stop.
    if request.get("digest") != digest:
        if request.get("status") == "pending":
            cancel(rid)
        raise Refused(f"{rid}: the daemon's digest {safe(request.get('digest'))} is not our "
                      f"{digest}; refusing", EXIT_DIGEST)

    # 4. Long-poll until the request leaves "pending".
    deadline = time.monotonic() + MAX_WAIT_SECONDS
    while request.get("status") == "pending":
        if time.monotonic() > deadline:
            cancel(rid)
            raise Refused(f"{rid}: no decision within {MAX_WAIT_SECONDS} s; cancelled",
                          EXIT_EXPIRED)
        print(f"gate: {rid} is pending review", file=sys.stderr)
        request = call("GET", f"/v1/requests/{rid}?wait={POLL_SECONDS}", wait=POLL_SECONDS)

    # 5. Decided. Anything but "approved" ends here, with nothing done.
    status = request.get("status")
    if status == "denied":
        raise Refused(f"{rid} denied{denial(request)}", EXIT_DENIED)
    if status in ("expired", "cancelled"):
        raise Refused(f"{rid} {status}", EXIT_EXPIRED)
    if status != "approved":
        raise Refused(f"{rid} is {safe(status)}, not approved (a grant is used once)")

    # 6. Claim with OUR digest, not the one in the answer. The first claim wins; a refusal
    #    (already claimed, grant expired, digest mismatch) means we must not act.
    try:
        claimed = call("POST", f"/v1/requests/{rid}/claim", {"digest": digest})
    except Refused as e:
        if e.code == "grant_expired":
            e.status = EXIT_EXPIRED
        raise
    if claimed.get("status") != "claimed" or claimed.get("digest") != digest:
        raise Refused(f"{rid}: the claim's answer is not a claim of our action")

    # 7. Act, exactly once, then report. From here on the action has happened: a failed
    #    report must not make us act again.
    code, detail = export_table(table, environment, output, rid)
    print(f"{rid}: {detail}")
    try:
        finished = call("POST", f"/v1/requests/{rid}/result",
                        {"exit_code": code, "detail": detail})
    except Refused as e:
        # The exit status still says how the export went, as with `signoff run`.
        print(f"gate: {rid}: the export ran ({detail}) but reporting it failed: {e}",
              file=sys.stderr)
    else:
        print(f"gate: {rid} {safe(finished.get('status'))}", file=sys.stderr)
    return EXIT_DONE if code == 0 else EXIT_ACTION_FAILED


def main(argv):
    if not 4 <= len(argv) <= 5 or "SIGNOFF_URL" not in os.environ \
            or "SIGNOFF_TOKEN" not in os.environ:
        print("usage: SIGNOFF_URL=URL SIGNOFF_TOKEN=TOKEN gate.py TABLE ENVIRONMENT OUTPUT [WHY]",
              file=sys.stderr)
        return EXIT_USAGE
    try:
        # Arguments that are not UTF-8 arrive as lone surrogates; the daemon needs UTF-8.
        for arg in argv[1:]:
            arg.encode("utf-8")
    except UnicodeEncodeError:
        print("gate: the arguments must be UTF-8 text", file=sys.stderr)
        return EXIT_USAGE
    why = argv[4] if len(argv) == 5 else "export requested by gate.py"
    try:
        return gate(argv[1], argv[2], argv[3], why)
    except Refused as e:
        print(f"gate: {e}; nothing was exported", file=sys.stderr)
        return e.status


if __name__ == "__main__":
    sys.exit(main(sys.argv))
