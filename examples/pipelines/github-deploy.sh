#!/bin/sh
# github-deploy.sh CMD [ARG...]: in a GitHub Actions step, run CMD once a reviewer approves it.
#
# The intent and the context come from what GitHub sets (GITHUB_*) and from the commit;
# SIGNOFF_ENV and SIGNOFF_RESOURCE name what CMD touches. Exits with CMD's status, or 3 when
# denied, 4 when expired, cancelled or timed out, 5 on an error: nothing ran then.
# See docs/integrations/pipelines.md.
set -eu

: "${SIGNOFF_URL:?set SIGNOFF_URL to the address of signoffd}"
[ $# -gt 0 ] || { echo "usage: github-deploy.sh CMD [ARG...]" >&2; exit 2; }

subject=$(git log -1 --format=%s "$GITHUB_SHA" 2>/dev/null || true)
why="Deploy $GITHUB_REPOSITORY@$(printf %.7s "$GITHUB_SHA") ($GITHUB_REF_NAME)${subject:+: $subject}"
context=$(git log -1 --format=%B "$GITHUB_SHA" 2>/dev/null | jq -Rs '{
	ci: "github-actions",
	repository: env.GITHUB_REPOSITORY,
	ref: env.GITHUB_REF_NAME,
	commit: env.GITHUB_SHA,
	commit_message: sub("\\s+$"; ""),
	actor: env.GITHUB_ACTOR,
	workflow: env.GITHUB_WORKFLOW,
	run: "\(env.GITHUB_SERVER_URL)/\(env.GITHUB_REPOSITORY)/actions/runs/\(env.GITHUB_RUN_ID)"
}')

# The context goes in on standard input, so CMD starts with an empty one.
exec signoff run \
	${SIGNOFF_ENV:+--env "$SIGNOFF_ENV"} \
	${SIGNOFF_RESOURCE:+--resource "$SIGNOFF_RESOURCE"} \
	--why "$why" --context-file - -- "$@" <<EOF
$context
EOF
