#!/bin/sh
# gate.sh: ask signoff before doing something privileged, with curl over the HTTP API.
#
#     SIGNOFF_URL=http://127.0.0.1:8700 SIGNOFF_TOKEN=so_... \
#         sh gate.sh TABLE ENVIRONMENT OUTPUT [WHY]
#
# It asks to export TABLE from ENVIRONMENT into the file OUTPUT, waits for the decision, and
# only once the request is approved claims the grant with the digest of the action it is
# about to perform, "exports" (appends one line to OUTPUT), and reports how that went.
# Needs curl and python3 (for JSON and SHA-256). The same program in C is examples/c/gate.c,
# in Python examples/http/gate.py; the API is in docs/api.md.
#
# Exit status: 0 exported; 1 approved but the export failed (reported);
# 2 usage; 3 denied; 4 expired or cancelled, or we stopped waiting; 5 the daemon could not
# be reached, refused a call or answered something unexpected; 6 the daemon's digest of the
# action is not ours. Nothing is exported on 2 to 6. When the export ran but reporting it
# failed, the status is still 0 or 1, with a warning.

set -u

POLL_SECONDS=25        # one long-poll: the daemon holds the answer up to this long
MAX_WAIT_SECONDS=3600  # in all, before we cancel and give up
HTTP_TIMEOUT=30        # seconds for one call, on top of the long-poll's wait
MAX_ANSWER=8388608     # bytes; a longer answer is an error

if [ $# -lt 3 ] || [ $# -gt 4 ] || [ -z "${SIGNOFF_URL:-}" ] || [ -z "${SIGNOFF_TOKEN:-}" ]; then
	echo "usage: SIGNOFF_URL=URL SIGNOFF_TOKEN=TOKEN gate.sh TABLE ENVIRONMENT OUTPUT [WHY]" >&2
	exit 2
fi
case $SIGNOFF_TOKEN in
*[![:graph:]]*) echo "gate: SIGNOFF_TOKEN must be printable text without spaces" >&2 && exit 2 ;;
esac
table=$1 environment=$2 output=$3 why=${4:-"export requested by gate.sh"}
url=${SIGNOFF_URL%/}

tmp=$(mktemp -d) || exit 5
trap 'rm -rf "$tmp"' EXIT
trap 'exit 4' INT TERM HUP
# The token reaches curl through a file, not its command line, where ps would show it.
(umask 077 && printf 'Authorization: Bearer %s\n' "$SIGNOFF_TOKEN" >"$tmp/auth") || exit 5

# get FILE KEY...: the string at that path in a JSON file, or "" if there is none.
get() {
	python3 -c 'import json, sys
try:
    v = json.load(open(sys.argv[1], encoding="utf-8"))
    for k in sys.argv[2:]:
        v = v[k]
except Exception:
    v = None
print(v if isinstance(v, str) else "")' "$@"
}

# call METHOD PATH MAX_TIME [CURL OPTIONS...]: the answer goes to $tmp/answer and its HTTP
# status to $http (000 when no usable answer came: refused, unresolvable, timed out, too
# large). No retries.
call() {
	method=$1 path=$2 max_time=$3
	shift 3
	http=$(curl -sS -X "$method" -H @"$tmp/auth" -H 'Content-Type: application/json' \
		--max-time "$max_time" --max-filesize "$MAX_ANSWER" \
		-o "$tmp/answer" -w '%{http_code}' "$@" "$url$path") || http=000
}

# printable TEXT: text someone else wrote, without control characters, for the terminal.
printable() {
	printf '%s' "$1" | tr -d '\000-\037\177'
}

# refuse STATUS MESSAGE: say why nothing was exported, and exit.
refuse() {
	echo "gate: $2; nothing was exported" >&2
	exit "$1"
}

# Stop unless the last call succeeded. Errors are {"error": {"code", "message"}}.
check() {
	case $http in
	2??) return 0 ;;
	000) refuse 5 "$1: no usable answer from the daemon at $url" ;;
	esac
	code=$(get "$tmp/answer" error code)
	[ "$code" = grant_expired ] && refuse 4 "$1: HTTP $http $code"
	refuse 5 "$1: HTTP $http ${code:-?}: $(printable "$(get "$tmp/answer" error message)")"
}

cancel() {
	call POST "/v1/requests/$id/cancel" "$HTTP_TIMEOUT"
}

# 1. The action exactly as it will be performed, and our own digest of it: SHA-256 over the
#    canonical JSON of docs/api.md (sorted keys, no whitespace, UTF-8 as is). json.dumps
#    writes exactly that for everything but reals (3.0 where the canonical form has 3); this
#    action holds strings only. The output file is part of the action: reviewers approve
#    where the data goes, not only what is read.
digest=$(python3 -c 'import hashlib, json, sys
table, environment, output, why, body = sys.argv[1:]
action = {"kind": "db.export", "table": table, "environment": environment,
          "destination": output}
canonical = json.dumps(action, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
with open(body, "w", encoding="utf-8") as f:
    json.dump({"action": action, "intent": why}, f)
print(hashlib.sha256(canonical.encode("utf-8")).hexdigest())' \
	"$table" "$environment" "$output" "$why" "$tmp/submit.json" 2>/dev/null) ||
	refuse 2 "the arguments must be UTF-8 text"

# 2. Ask. The answer says at once approved (by policy), denied, or pending.
call POST /v1/requests "$HTTP_TIMEOUT" --data-binary @"$tmp/submit.json"
check submit
id=$(get "$tmp/answer" id)
case $id in
req_ | req_*[!0-9A-Za-z]*) refuse 5 "the daemon's answer has no usable request id" ;;
req_*) ;;
*) refuse 5 "the daemon's answer has no usable request id" ;;
esac

# 3. The daemon must have hashed the very action we built; if not, what a reviewer would
#    approve is not what we would run. Withdraw the request and stop.
theirs=$(get "$tmp/answer" digest)
if [ "$theirs" != "$digest" ]; then
	[ "$(get "$tmp/answer" status)" = pending ] && cancel
	theirs=$(printable "${theirs:-(none)}")
	refuse 6 "$id: the daemon's digest $theirs is not our $digest; refusing"
fi

# 4. Long-poll until the request leaves "pending".
started=$(date +%s)
status=$(get "$tmp/answer" status)
while [ "$status" = pending ]; do
	if [ $(($(date +%s) - started)) -ge "$MAX_WAIT_SECONDS" ]; then
		cancel
		refuse 4 "$id: no decision within $MAX_WAIT_SECONDS s; cancelled"
	fi
	echo "gate: $id is pending review" >&2
	call GET "/v1/requests/$id?wait=$POLL_SECONDS" $((HTTP_TIMEOUT + POLL_SECONDS))
	check "waiting for the decision"
	status=$(get "$tmp/answer" status)
done

# 5. Decided. Anything but "approved" ends here, with nothing done.
case $status in
approved) ;;
denied)
	why_denied=$(python3 -c 'import json, sys
r = json.load(open(sys.argv[1], encoding="utf-8"))
safe = lambda s: "".join(c for c in str(s) if ord(c) >= 0x20 and ord(c) != 0x7f)
for v in r.get("reviews") or []:
    if v.get("decision") == "deny":
        comment = ": " + safe(v["comment"]) if v.get("comment") else ""
        print(" by " + safe(v.get("reviewer")) + comment)
        sys.exit()
for rule in (r.get("decision") or {}).get("rules") or []:
    if rule.get("decide") == "deny":
        print(" by policy rule " + safe(rule.get("name")) + ": " + safe(rule.get("reason")))
        sys.exit()' "$tmp/answer")
	refuse 3 "$id denied$why_denied" ;;
expired | cancelled) refuse 4 "$id $status" ;;
*) refuse 5 "$id is $(printable "$status"), not approved (a grant is used once)" ;;
esac

# 6. Claim with OUR digest, not the one in the answer. The first claim wins; a refusal
#    (already claimed, grant expired, digest mismatch) means we must not act.
printf '{"digest": "%s"}' "$digest" >"$tmp/claim.json"
call POST "/v1/requests/$id/claim" "$HTTP_TIMEOUT" --data-binary @"$tmp/claim.json"
check claim
if [ "$(get "$tmp/answer" status)" != claimed ] ||
	[ "$(get "$tmp/answer" digest)" != "$digest" ]; then
	refuse 5 "$id: the claim's answer is not a claim of our action"
fi

# 7. Act, exactly once, then report. From here on the action has happened: a failed report
#    must not make us act again.
if printf 'export of table %s from %s, approved as %s\n' "$table" "$environment" "$id" \
	>>"$output" 2>/dev/null; then
	exit_code=0 detail="exported table $table from $environment to $output"
else
	exit_code=1 detail="could not write $output"
fi
echo "$id: $detail"
python3 -c 'import json, sys
with open(sys.argv[3], "w", encoding="utf-8") as f:
    json.dump({"exit_code": int(sys.argv[1]), "detail": sys.argv[2]}, f)' \
	"$exit_code" "$detail" "$tmp/result.json"
call POST "/v1/requests/$id/result" "$HTTP_TIMEOUT" --data-binary @"$tmp/result.json"
case $http in
2??) echo "gate: $id $(get "$tmp/answer" status)" >&2 ;;
*) echo "gate: $id: the export ran ($detail) but reporting it failed (HTTP $http)" >&2 ;;
esac
exit "$exit_code"
