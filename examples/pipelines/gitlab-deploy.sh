#!/bin/sh
# gitlab-deploy.sh CMD [ARG...]: in a GitLab CI job, run CMD once a reviewer approves it.
#
# The intent and the context come from what GitLab sets (CI_*). The environment is
# SIGNOFF_ENV, else the job's environment (CI_ENVIRONMENT_NAME); SIGNOFF_RESOURCE names what
# CMD touches. Exits with CMD's status, or 3 when denied, 4 when expired, cancelled or timed
# out, 5 on an error: nothing ran then. See docs/integrations/pipelines.md.
set -eu

: "${SIGNOFF_URL:?set SIGNOFF_URL to the address of signoffd}"
[ $# -gt 0 ] || { echo "usage: gitlab-deploy.sh CMD [ARG...]" >&2; exit 2; }

environment=${SIGNOFF_ENV:-${CI_ENVIRONMENT_NAME:-}}
why="Deploy $CI_PROJECT_PATH@$CI_COMMIT_SHORT_SHA ($CI_COMMIT_REF_NAME): $CI_COMMIT_TITLE"
context=$(jq -n '{
	ci: "gitlab",
	project: env.CI_PROJECT_PATH,
	ref: env.CI_COMMIT_REF_NAME,
	commit: env.CI_COMMIT_SHA,
	commit_message: (env.CI_COMMIT_MESSAGE // "" | sub("\\s+$"; "")),
	user: env.GITLAB_USER_LOGIN,
	pipeline: env.CI_PIPELINE_URL,
	job: env.CI_JOB_URL
}')

# The context goes in on standard input, so CMD starts with an empty one.
exec signoff run \
	${environment:+--env "$environment"} \
	${SIGNOFF_RESOURCE:+--resource "$SIGNOFF_RESOURCE"} \
	--why "$why" --context-file - -- "$@" <<EOF
$context
EOF
