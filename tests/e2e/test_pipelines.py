"""The pipeline recipes of docs/integrations/pipelines.md, run as shipped: each script in
examples/pipelines/ against a real signoffd, as the pipeline's service principal `ci`.

kubectl, terraform and the deploy command are stand-ins written into the test's directory
(first on PATH): each appends its argv to one log and prints something plausible. The
scripts' own read-only calls (kubectl diff, terraform plan and show) come before the request;
the gated command runs only after approval, once, with exactly the approved argv, and never
when the request is denied or cancelled."""

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from collections import namedtuple

import pytest

from conftest import CAST, REPO, SIGNOFF, expect_error, finish_process, ok, wait_until

EXAMPLES = REPO / "examples" / "pipelines"
DOC = REPO / "docs" / "integrations" / "pipelines.md"
POLICY = {"approvers": {"group": "sre", "count": 1}}  # bob, a human in sre, reviews
RUN_TIMEOUT = 90  # seconds for a script to finish once the outcome is decided

pytestmark = pytest.mark.skipif(
    shutil.which("jq") is None or shutil.which("git") is None,
    reason="the pipeline scripts need jq, and the GitHub one git (Debian packages jq, git)")

SHA = "1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d"
COMMIT_TITLE = "Retry the payment call once on a 503"
COMMIT_MESSAGE = COMMIT_TITLE + "\n\nThe provider answers 503 while it fails over."

DIFF = """diff -u -N /tmp/LIVE-1/apps.v1.Deployment.shop.api /tmp/MERGED-1/apps.v1.Deployment.shop.api
--- /tmp/LIVE-1/apps.v1.Deployment.shop.api
+++ /tmp/MERGED-1/apps.v1.Deployment.shop.api
@@ -30,7 +30,7 @@
       containers:
-      - image: registry.example/shop/api:2.4.0
+      - image: registry.example/shop/api:2.4.1
         name: api
"""

PLAN_JSON = {
    "format_version": "1.2",
    "terraform_version": "1.9.8",
    "resource_changes": [
        {"address": "aws_s3_bucket.logs", "change": {"actions": ["create"]}},
        {"address": "aws_instance.web", "change": {"actions": ["update"]}},
        {"address": "aws_db_instance.main", "change": {"actions": ["delete", "create"]}},
        {"address": "aws_vpc.main", "change": {"actions": ["no-op"]}},
        {"address": "data.aws_ami.base", "change": {"actions": ["read"]}},
        {"address": "aws_iam_user.old", "change": {"actions": ["delete"]}},
    ],
}

# Stand-ins. STANDIN_* variables of the environment steer them; the test sets those.
STANDIN = """#!{python}
import json, os, sys
NAME = {name!r}
args = sys.argv[1:]
with open({log!r}, "a") as log:
    log.write(json.dumps([NAME] + args) + "\\n")
{body}
"""

KUBECTL = """
if args[:1] == ["diff"]:
    status = int(os.environ.get("STANDIN_DIFF_STATUS", "1"))
    if status == 1:
        if "STANDIN_DIFF_FILE" in os.environ:
            sys.stdout.write(open(os.environ["STANDIN_DIFF_FILE"]).read())
        else:
            sys.stdout.write({diff!r})
    elif status > 1:
        sys.stderr.write("error: the server does not allow this method\\n")
    sys.exit(status)
if args[:1] == ["get"]:
    print("NAME   READY   STATUS    RESTARTS   AGE")
    print("api-7d9c5b   1/1     Running   0          3d")
    sys.exit(0)
print("deployment.apps/api configured")
""".format(diff=DIFF)

TERRAFORM = """
if args[:1] == ["plan"]:
    for a in args:
        if a.startswith("-out="):
            with open(a[len("-out="):], "w") as plan:
                plan.write(os.environ.get("STANDIN_PLAN_CONTENT", "the reviewed plan"))
    print("Plan: 2 to add, 1 to change, 2 to destroy.")
    sys.exit(int(os.environ.get("STANDIN_PLAN_STATUS", "2")))
if args[:2] == ["show", "-json"]:
    print({plan!r})
    sys.exit(0)
print("Apply complete! Resources: 2 added, 1 changed, 2 destroyed.")
""".format(plan=json.dumps(PLAN_JSON))

DEPLOY = """
print("deploying", *args)
sys.exit(int(os.environ.get("STANDIN_DEPLOY_STATUS", "0")))
"""


class Pipeline:
    """A runner's view: a workspace, stand-ins first on PATH, the `ci` token, one daemon."""

    def __init__(self, daemon, tmp_path):
        self.daemon = daemon
        self.workspace = tmp_path / "workspace"
        self.bin = tmp_path / "bin"
        self.log = tmp_path / "calls.log"
        self.procs = []
        self.workspace.mkdir()
        self.bin.mkdir()
        self.standin(self.bin / "kubectl", "kubectl", KUBECTL)
        self.standin(self.bin / "terraform", "terraform", TERRAFORM)
        self.standin(self.workspace / "deploy", "./deploy", DEPLOY)

    def standin(self, path, name, body):
        path.write_text(STANDIN.format(python=sys.executable, name=name, log=str(self.log),
                                       body=body))
        path.chmod(0o755)

    def calls(self):
        """Every stand-in call so far, in order, as [name, arg...]."""
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    def env(self, extra):
        """The runner's environment: ours without CI or signoff variables, then `extra`
        (a value of None removes the variable)."""
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("GITHUB_", "CI_", "GITLAB_", "SIGNOFF_", "STANDIN_"))}
        env.update(SIGNOFF_URL=self.daemon.url, SIGNOFF_TOKEN=CAST["ci"].token,
                   PATH=os.pathsep.join([str(self.bin), str(SIGNOFF.parent), env.get("PATH", "")]))
        env.update(extra)
        return {k: v for k, v in env.items() if v is not None}

    def spawn(self, script, args, extra_env):
        return self.spawn_argv([str(EXAMPLES / script), *args], extra_env)

    def spawn_argv(self, argv, extra_env):
        if not SIGNOFF.exists():
            pytest.fail(f"signoff CLI is not built: {SIGNOFF} (set SIGNOFF_BUILD)")
        proc = subprocess.Popen(argv, cwd=self.workspace, env=self.env(extra_env),
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        self.procs.append(proc)
        return proc

    def run(self, script, args, extra_env):
        return finish(self.spawn(script, args, extra_env))

    def requests(self):
        """Every request, as the auditor erin sees them."""
        return self.daemon.client("erin").list()["requests"]

    def pending(self, proc):
        """The one pending request the script made (fails if the script ends first)."""
        bob = self.daemon.client("bob")

        def find():
            if proc.poll() is not None:
                rc, out, err = finish(proc)
                raise AssertionError(f"the script exited {rc} before its request was pending:"
                                     f"\n{err[-2000:]}")
            found = bob.list(status="pending")["requests"]
            assert len(found) <= 1, f"more than one request: {found}"
            return found[0] if found else None

        return wait_until(find, timeout=30, what="the script's request to be pending")


def finish(proc, timeout=RUN_TIMEOUT):
    return finish_process(proc, timeout, "the script")


@pytest.fixture
def pipeline(start_daemon, tmp_path):
    p = Pipeline(start_daemon(policy=POLICY), tmp_path)
    yield p
    for proc in p.procs:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=30)


# The four recipes as the doc shows them ------------------------------------------------------

# script and args: what the pipeline runs; env: what the CI sets; before: the read-only calls
# the script makes before asking; command: the gated argv; intent, environment, resource,
# context: what the reviewer sees.
Recipe = namedtuple("Recipe", "script args env before command intent environment resource context "
                   "files", defaults=[None])


def git_commit(workspace):
    """A repository with one commit, as actions/checkout leaves it; returns its sha."""
    env = dict(os.environ, GIT_CONFIG_GLOBAL=os.devnull, GIT_CONFIG_NOSYSTEM="1")

    def git(*args):
        return subprocess.run(["git", "-c", "user.name=Octo Cat", "-c", "user.email=octo@example.com",
                               *args], cwd=workspace, env=env, check=True, capture_output=True,
                              text=True).stdout.strip()

    git("init", "-q")
    git("add", "deploy")
    git("commit", "-q", "-m", COMMIT_MESSAGE)
    return git("rev-parse", "HEAD")


def github(p):
    sha = git_commit(p.workspace)
    env = {
        "GITHUB_SHA": sha, "GITHUB_REPOSITORY": "acme/shop", "GITHUB_REF_NAME": "main",
        "GITHUB_ACTOR": "octocat", "GITHUB_WORKFLOW": "deploy",
        "GITHUB_SERVER_URL": "https://github.example.com", "GITHUB_RUN_ID": "9876543210",
        "SIGNOFF_ENV": "production", "SIGNOFF_RESOURCE": "deploy/shop",
    }
    return Recipe(
        "github-deploy.sh", ["./deploy", "shop", sha], env, [], ["./deploy", "shop", sha],
        f"Deploy acme/shop@{sha[:7]} (main): {COMMIT_TITLE}", "production", "deploy/shop",
        {"ci": "github-actions", "repository": "acme/shop", "ref": "main", "commit": sha,
         "commit_message": COMMIT_MESSAGE, "actor": "octocat", "workflow": "deploy",
         "run": "https://github.example.com/acme/shop/actions/runs/9876543210"})


def gitlab(p):
    env = {
        "CI_COMMIT_SHA": SHA, "CI_COMMIT_SHORT_SHA": SHA[:8], "CI_COMMIT_REF_NAME": "main",
        "CI_COMMIT_TITLE": COMMIT_TITLE, "CI_COMMIT_MESSAGE": COMMIT_MESSAGE + "\n",
        "CI_PROJECT_PATH": "acme/shop", "GITLAB_USER_LOGIN": "octocat",
        "CI_PIPELINE_URL": "https://gitlab.example.com/acme/shop/-/pipelines/4242",
        "CI_JOB_URL": "https://gitlab.example.com/acme/shop/-/jobs/77",
        "CI_ENVIRONMENT_NAME": "production", "SIGNOFF_RESOURCE": "deploy/shop",
    }
    return Recipe(
        "gitlab-deploy.sh", ["./deploy", "shop", SHA], env, [], ["./deploy", "shop", SHA],
        f"Deploy acme/shop@{SHA[:8]} (main): {COMMIT_TITLE}", "production", "deploy/shop",
        {"ci": "gitlab", "project": "acme/shop", "ref": "main", "commit": SHA,
         "commit_message": COMMIT_MESSAGE, "user": "octocat",
         "pipeline": "https://gitlab.example.com/acme/shop/-/pipelines/4242",
         "job": "https://gitlab.example.com/acme/shop/-/jobs/77"})


def kubectl(p):
    env = {"SIGNOFF_ENV": "production", "SIGNOFF_RESOURCE": "deploy/api",
           "SIGNOFF_WHY": "Roll out api 2.4.1 (acme/shop!42)"}
    args = ["apply", "-f", "k8s/api.yaml"]
    return Recipe(
        "kubectl-gated", args, env, [["kubectl", "diff", "-f", "k8s/api.yaml"]],
        ["kubectl", *args], "Roll out api 2.4.1 (acme/shop!42)", "production", "deploy/api",
        {"diff": DIFF})


def terraform(p):
    env = {"SIGNOFF_ENV": "production", "SIGNOFF_RESOURCE": "terraform/shop-prod",
           "SIGNOFF_WHY": f"Apply {SHA[:8]} (main): {COMMIT_TITLE}"}
    return Recipe(
        "terraform-apply.sh", ["-var-file=prod.tfvars"], env,
        [["terraform", "plan", "-input=false", "-detailed-exitcode", "-out=tfplan",
          "-var-file=prod.tfvars"],
         ["terraform", "show", "-json", "tfplan"]],
        ["terraform", "apply", "-input=false", "tfplan"],
        f"Apply {SHA[:8]} (main): {COMMIT_TITLE}", "production", "terraform/shop-prod",
        {"plan": "2 to add, 1 to change, 2 to destroy",
         "changes": "create aws_s3_bucket.logs\nupdate aws_instance.web\n"
                    "replace aws_db_instance.main\ndelete aws_iam_user.old",
         "terraform_version": "1.9.8"},
        [{"path": "tfplan", "sha256": hashlib.sha256(b"the reviewed plan").hexdigest()}])


RECIPES = {"github": github, "gitlab": gitlab, "kubectl": kubectl, "terraform": terraform}


def assert_request_shows(req, recipe):
    assert req["requester"] == "ci"
    action = {"kind": "shell", "command": recipe.command, "environment": recipe.environment,
              "resource": recipe.resource}
    if recipe.files is not None:
        action["files"] = recipe.files
    assert req["action"] == action
    assert req["intent"] == recipe.intent
    assert req["context"] == recipe.context


@pytest.mark.parametrize("name", RECIPES)
def test_approved_runs_exactly_the_approved_command_once(pipeline, name):
    recipe = RECIPES[name](pipeline)
    proc = pipeline.spawn(recipe.script, recipe.args, recipe.env)
    req = pipeline.pending(proc)
    assert_request_shows(req, recipe)
    assert pipeline.calls() == recipe.before, "something ran while the request was pending"

    ok(pipeline.daemon.client("bob").approve(req["id"], "looks right"))
    rc, out, err = finish(proc)
    assert rc == 0, err
    assert pipeline.calls() == recipe.before + [req["action"]["command"]]
    final = pipeline.daemon.client("erin").show(req["id"])
    assert final["status"] == "succeeded"
    assert final["result"]["exit_code"] == 0


@pytest.mark.parametrize("name", RECIPES)
def test_denied_exits_3_and_runs_nothing(pipeline, name):
    recipe = RECIPES[name](pipeline)
    proc = pipeline.spawn(recipe.script, recipe.args, recipe.env)
    req = pipeline.pending(proc)
    ok(pipeline.daemon.client("bob").deny(req["id"], "not during the sale"))
    rc, out, err = finish(proc)
    assert rc == 3, f"denied: expected exit 3, got {rc}: {err}"
    assert "not during the sale" in err, "the job log should say who denied it and why"
    assert pipeline.calls() == recipe.before, "the denied command ran"


@pytest.mark.parametrize("signo", [signal.SIGINT, signal.SIGTERM])
def test_cancelled_step_withdraws_the_request_and_runs_nothing(pipeline, tmp_path, signo):
    # GitHub cancels a step by sending SIGINT, then SIGTERM, to the shell that runs `run:`.
    # The doc's `run: exec ...` makes that shell become the script, and the script becomes
    # signoff run, so the signal reaches the process that can withdraw the request.
    recipe = github(pipeline)
    step = tmp_path / "step.sh"
    step.write_text(f'exec {EXAMPLES / recipe.script} ./deploy shop "$GITHUB_SHA"\n')
    proc = pipeline.spawn_argv(["bash", "--noprofile", "--norc", "-eo", "pipefail", str(step)],
                               recipe.env)
    req = pipeline.pending(proc)
    proc.send_signal(signo)
    rc, out, err = finish(proc)
    assert rc == 4, f"cancelled: expected exit 4, got {rc}: {err}"
    assert pipeline.daemon.client("erin").show(req["id"])["status"] == "cancelled"
    expect_error(pipeline.daemon.client("bob").approve(req["id"]), 409, "not_pending")
    assert pipeline.calls() == []


def test_the_commands_exit_status_is_the_jobs(pipeline):
    recipe = gitlab(pipeline)
    proc = pipeline.spawn(recipe.script, recipe.args, {**recipe.env, "STANDIN_DEPLOY_STATUS": "7"})
    req = pipeline.pending(proc)
    ok(pipeline.daemon.client("bob").approve(req["id"]))
    rc, out, err = finish(proc)
    assert rc == 7, err
    assert "deploying shop" in out, "the command's output goes to the job log"
    final = pipeline.daemon.client("erin").show(req["id"])
    assert (final["status"], final["result"]["exit_code"]) == ("failed", 7)


def test_without_signoff_url_nothing_is_asked_and_nothing_runs(pipeline):
    recipe = github(pipeline)
    rc, out, err = pipeline.run(recipe.script, recipe.args, {**recipe.env, "SIGNOFF_URL": None})
    assert rc != 0
    assert "SIGNOFF_URL" in err
    assert pipeline.calls() == []
    assert pipeline.requests() == []


# kubectl-gated -------------------------------------------------------------------------------


@pytest.mark.parametrize("args", [["get", "pods", "-n", "shop"], ["describe", "deploy/api"],
                                  ["logs", "deploy/api", "--tail=20"], ["diff", "-f", "k8s/"]])
def test_kubectl_gated_reads_pass_straight_through(pipeline, args):
    rc, out, err = pipeline.run("kubectl-gated", args, {})
    expected_rc = 1 if args[0] == "diff" else 0  # the stand-in's diff finds differences
    assert rc == expected_rc, err
    assert pipeline.calls() == [["kubectl", *args]]
    assert pipeline.requests() == [], "a read must not create a request"
    if args[0] == "get":
        assert "api-7d9c5b" in out


def test_kubectl_gated_holds_flags_before_the_verb(pipeline):
    # Without the verb first the wrapper cannot tell a read from a change: it asks.
    proc = pipeline.spawn("kubectl-gated", ["-n", "shop", "get", "pods"], {})
    req = pipeline.pending(proc)
    assert req["action"]["command"] == ["kubectl", "-n", "shop", "get", "pods"]
    ok(pipeline.daemon.client("bob").deny(req["id"]))
    rc, out, err = finish(proc)
    assert rc == 3, err
    assert pipeline.calls() == []


def test_kubectl_gated_change_other_than_apply_has_no_diff(pipeline):
    args = ["rollout", "restart", "deploy/api", "-n", "shop"]
    proc = pipeline.spawn("kubectl-gated", args, {"SIGNOFF_ENV": "staging"})
    req = pipeline.pending(proc)
    assert req["action"] == {"kind": "shell", "command": ["kubectl", *args],
                             "environment": "staging"}
    assert req["intent"] is None and req["context"] == {}
    assert pipeline.calls() == []
    ok(pipeline.daemon.client("bob").approve(req["id"]))
    rc, out, err = finish(proc)
    assert rc == 0, err
    assert pipeline.calls() == [["kubectl", *args]]


@pytest.mark.parametrize("status, context", [
    ("0", {"diff": "kubectl diff: no differences"}),
    ("2", {"diff_error": "error: the server does not allow this method\n"}),
])
def test_kubectl_gated_says_when_there_is_no_diff_to_show(pipeline, status, context):
    proc = pipeline.spawn("kubectl-gated", ["apply", "-f", "k8s/"], {"STANDIN_DIFF_STATUS": status})
    req = pipeline.pending(proc)
    assert req["context"] == context
    ok(pipeline.daemon.client("bob").deny(req["id"]))
    rc, out, err = finish(proc)
    assert rc == 3, err
    assert pipeline.calls() == [["kubectl", "diff", "-f", "k8s/"]]


def test_kubectl_gated_cuts_a_long_diff_to_fit(pipeline, tmp_path):
    # The daemon refuses strings over server.max_string (64 KiB by default); a longer diff
    # is cut, and says so, rather than making the request fail.
    long_diff = "".join(f"+  line {i:06d} of a very long manifest change\n" for i in range(4000))
    diff_file = tmp_path / "long.diff"
    diff_file.write_text(long_diff)
    proc = pipeline.spawn("kubectl-gated", ["apply", "-f", "k8s/"],
                          {"STANDIN_DIFF_FILE": str(diff_file)})
    req = pipeline.pending(proc)
    shown = req["context"]["diff"]
    assert len(long_diff) > 65536 > len(shown.encode())
    assert long_diff.startswith(shown[:60000 - 100])
    assert shown.endswith("[cut: the diff is longer]")
    ok(pipeline.daemon.client("bob").deny(req["id"]))
    assert finish(proc)[0] == 3


@pytest.mark.parametrize("args", [["apply", "-f", "-"], ["apply", "--filename=-"],
                                  ["create", "-f-"]])
def test_kubectl_gated_refuses_manifests_on_stdin(pipeline, args):
    rc, out, err = pipeline.run("kubectl-gated", args, {})
    assert rc == 2
    assert "standard input" in err
    assert pipeline.calls() == []
    assert pipeline.requests() == []


# terraform-apply.sh --------------------------------------------------------------------------


@pytest.mark.parametrize("plan_status", ["0", "1"])
def test_terraform_without_changes_or_with_a_failed_plan_asks_nothing(pipeline, plan_status):
    # plan -detailed-exitcode: 0 is "no changes", 1 an error, 2 "changes to apply".
    rc, out, err = pipeline.run("terraform-apply.sh", [], {"STANDIN_PLAN_STATUS": plan_status})
    assert rc == int(plan_status), err
    assert pipeline.calls() == [["terraform", "plan", "-input=false", "-detailed-exitcode",
                                 "-out=tfplan"]]
    assert pipeline.requests() == []


# The doc and the scripts ---------------------------------------------------------------------


def test_the_doc_runs_the_tested_scripts():
    text = DOC.read_text()
    named = set(re.findall(r"examples/pipelines/([\w.-]+)", text))
    shipped = {f.name for f in EXAMPLES.iterdir()}
    assert named == shipped, f"the doc names {sorted(named)}, the folder has {sorted(shipped)}"
    for f in EXAMPLES.iterdir():
        assert os.access(f, os.X_OK), f"{f} is not executable"
        assert f.read_text().startswith("#!/bin/sh\n"), f"{f} is not a POSIX sh script"
        assert "\nset -eu\n" in f.read_text(), f"{f} does not set -eu"


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck is not installed")
def test_the_scripts_are_shellcheck_clean():
    scripts = sorted(str(f) for f in EXAMPLES.iterdir())
    p = subprocess.run(["shellcheck", "--shell=sh", *scripts], capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr


def test_terraform_plan_swapped_after_review_is_never_applied(pipeline):
    """The plan file is bound to the request (--bind-file): a different tfplan in the
    workspace when the approval arrives stops the apply."""
    recipe = terraform(pipeline)
    proc = pipeline.spawn(recipe.script, recipe.args, recipe.env)
    req = pipeline.pending(proc)
    assert_request_shows(req, recipe)
    (pipeline.workspace / "tfplan").write_text("a plan nobody reviewed")
    ok(pipeline.daemon.client("bob").approve(req["id"], "looks right"))
    rc, out, err = finish(proc)
    assert rc == 5, f"expected 5 (refused), got {rc}: {err}"
    assert "changed since it was approved" in err
    assert pipeline.calls() == recipe.before, "terraform apply ran with a swapped plan"
