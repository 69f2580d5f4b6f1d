#!/bin/sh
# terraform-apply.sh [PLAN-OPTION...]: plan, show the reviewer a summary of the plan, and once
# approved apply exactly that saved plan.
#
# Runs in the Terraform root module. PLAN-OPTIONs go to `terraform plan` (-var-file=...).
# SIGNOFF_ENV, SIGNOFF_RESOURCE and SIGNOFF_WHY become the request's environment, resource
# and intent. A plan without changes ends here with 0 and asks nothing; a failed plan, with
# terraform's status. Otherwise the script exits as `signoff run` does: the status of
# `terraform apply`, or 3 denied, 4 expired or cancelled, 5 on an error (nothing applied).
# See docs/integrations/pipelines.md.
set -eu

: "${SIGNOFF_URL:?set SIGNOFF_URL to the address of signoffd}"

status=0
terraform plan -input=false -detailed-exitcode -out=tfplan "$@" || status=$?
case $status in
0) echo "terraform-apply: no changes; nothing to approve" >&2; exit 0 ;;
2) ;;
*) exit "$status" ;;
esac

plan=$(terraform show -json tfplan)
context=$(printf '%s\n' "$plan" | jq '
	def verb: if length == 2 then "replace" else .[0] end;
	[.resource_changes[]? | select(.change.actions - ["no-op", "read"] != [])] as $c
	| ($c | map(select(.change.actions | index("create"))) | length) as $add
	| ($c | map(select(.change.actions == ["update"])) | length) as $change
	| ($c | map(select(.change.actions | index("delete"))) | length) as $destroy
	| {
		plan: "\($add) to add, \($change) to change, \($destroy) to destroy",
		changes: ([$c[:400][] | "\(.change.actions | verb) \(.address)"]
			+ if ($c | length) > 400 then ["and \(($c | length) - 400) more"] else [] end
			| join("\n")),
		terraform_version
	}')

# The context goes in on standard input, so terraform starts with an empty one.
exec signoff run \
	${SIGNOFF_ENV:+--env "$SIGNOFF_ENV"} \
	${SIGNOFF_RESOURCE:+--resource "$SIGNOFF_RESOURCE"} \
	${SIGNOFF_WHY:+--why "$SIGNOFF_WHY"} \
	--bind-file tfplan --context-file - -- terraform apply -input=false tfplan <<EOF
$context
EOF
