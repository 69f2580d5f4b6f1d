/*
 * bench/audit/gen: write a valid, signed signoff audit export of N synthetic events, with the
 * project's own encoders (src/audit/log.c, src/audit/merkle.c, src/common/json.c), so that
 * `signoff audit verify --file` can be timed on a log of realistic size.
 *
 *   gen N EXPORT PUBKEY_FILE [CHECKPOINT_EVERY]
 *
 * Events follow request lifecycles (submitted, reviewed, claimed, result, some cancelled,
 * expired or escalated, with token.issued, policy.reloaded and daemon.started mixed in), with
 * varied strings from a fixed-seed generator, so two runs write the same events; the
 * Ed25519 key is fresh on every run. A checkpoint is signed every CHECKPOINT_EVERY events
 * (default 1000) and after the last one, and placed right after the event it ends at, as
 * GET /v1/audit/export does. The public key (hex) goes to PUBKEY_FILE.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "audit/log.h"
#include "audit/merkle.h"
#include "common/buf.h"
#include "common/clock.h"
#include "common/error.h"
#include "common/json.h"

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t
rnd(void)
{
	/* xorshift64*: fast and reproducible, not for secrets */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dULL;
}

static const char *
pick(const char *const *list, size_t n)
{
	return list[rnd() % n];
}
#define PICK(a) pick(a, sizeof(a) / sizeof(a[0]))

static const char *const agents[] = {"deploy-bot", "report-bot", "payments-copilot",
                                     "infra-agent", "release-bot", "data-sync"};
static const char *const humans[] = {"alice", "bob", "carol", "dave", "erin", "frank",
                                     "grace", "heidi", "ivan"};
static const char *const envs[] = {"production", "staging", "sandbox"};
static const char *const verbs[] = {"rollout restart", "scale", "apply -f", "delete pod",
                                    "set image", "annotate"};
static const char *const deploys[] = {"api", "web", "billing", "search", "auth", "ingest",
                                      "worker", "gateway"};
static const char *const tools[] = {"github.create_pr", "aws.iam.attach_policy",
                                    "snowflake.export", "vault.rotate", "pagerduty.ack"};
static const char *const reasons[] = {
	"restart after the config change in INC-%u",
	"scale for the traffic spike in INC-%u",
	"export the quarterly figures asked for in DATA-%u",
	"rotate the credential flagged in SEC-%u",
	"roll back the release that broke checkout (INC-%u)",
};
static const char *const comments[] = {"", "looks right", "checked the diff",
                                       "ok, in the change window", "not during the freeze",
                                       "please add the ticket next time"};
static const char *const groups[] = {"sre", "security", "dba", "payments", "sre-leads"};

static void
random_hex(char *out, size_t nbytes)
{
	static const char hex[] = "0123456789abcdef";
	for (size_t i = 0; i < nbytes; i++) {
		uint64_t r = rnd();
		out[2 * i] = hex[r & 15];
		out[2 * i + 1] = hex[(r >> 4) & 15];
	}
	out[2 * nbytes] = '\0';
}

static void
request_id(uint64_t n, char out[31])
{
	static const char b32[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
	memcpy(out, "req_", 4);
	uint64_t a = n * 0x9e3779b97f4a7c15ULL + 0x1234567;
	for (int i = 0; i < 26; i++) {
		out[4 + i] = b32[a & 31];
		a = (a >> 5) | ((rnd() & 31) << 59);
	}
	out[30] = '\0';
}

struct event {
	const char *type;
	char request_id[31];
	int has_request;
	const char *actor;
	json_t *data;
};

/* The request.submitted data, kept short (a real snapshot is longer: this aims at the
 * 300-500 byte events of the benchmark's brief). */
static json_t *
submitted(const char *rid, const char *agent, const char *env, char digest[65])
{
	char cmd[96], intent[128];
	json_t *action;
	if (rnd() % 3) {
		snprintf(cmd, sizeof(cmd), "deploy/%s", PICK(deploys));
		action = json_pack("{s:s, s:[s, s, s], s:s, s:s}", "kind", "shell", "command", "kubectl",
		                   PICK(verbs), cmd, "resource", cmd, "environment", env);
	} else {
		action = json_pack("{s:s, s:s, s:{s:s, s:i}, s:s}", "kind", "tool", "tool", PICK(tools),
		                   "arguments", "target", PICK(deploys), "limit",
		                   (int)(rnd() % 100000), "environment", env);
	}
	snprintf(intent, sizeof(intent), PICK(reasons), (unsigned)(1000 + rnd() % 9000));
	so_json_digest(action, digest);
	return json_pack("{s:s, s:s, s:s, s:o, s:s, s:s, s:{s:s, s:s, s:[{s:s, s:s}]}}", "id", rid,
	                 "status", "pending", "requester", agent, "action", action, "intent", intent,
	                 "digest", digest, "decision", "outcome", "review", "policy_version",
	                 "sha256:5e30fa1158cd0fb3ffedae5f09039c1619379a5f977ead54066dc597d5290544",
	                 "rules", "name", env, "decide", "review");
}

/* The next event of the synthetic workload, into `ev` (data owned by ev). */
static void
next_event(uint64_t seq, struct event *ev)
{
	static uint64_t req_no;
	static int step; /* where the current request is in its life */
	static char rid[31], digest[65];
	static const char *agent, *env;

	memset(ev, 0, sizeof(*ev));
	if (seq == 1 || seq % 100000 == 0) {
		ev->type = "daemon.started";
		ev->data = json_pack("{s:s, s:s, s:s, s:i}", "version", "0.1.0", "config",
		                     "/etc/signoff/signoff.yaml", "policy_version",
		                     "sha256:5e30fa1158cd0fb3ffedae5f09039c1619379a5f977ead54066dc597d5290544",
		                     "principals", 42);
		return;
	}
	if (seq % 997 == 0) {
		char h[65];
		random_hex(h, 32);
		ev->type = "token.issued";
		ev->actor = "carol";
		ev->data = json_pack("{s:s, s:s}", "principal", PICK(agents), "token_sha256", h);
		return;
	}
	if (seq % 4999 == 0) {
		char a[65], b[65];
		random_hex(a, 32);
		random_hex(b, 32);
		ev->type = "policy.reloaded";
		ev->actor = rnd() % 2 ? "carol" : NULL;
		ev->data = json_pack("{s:s+, s:s+, s:i}", "old_version", "sha256:", a, "new_version",
		                     "sha256:", b, "rules", (int)(20 + rnd() % 20));
		return;
	}
	if (step == 0) {
		request_id(++req_no, rid);
		agent = PICK(agents);
		env = PICK(envs);
		ev->type = "request.submitted";
		ev->actor = agent;
		ev->data = submitted(rid, agent, env, digest);
		step = 1;
	} else if (step == 1) {
		uint64_t r = rnd() % 100;
		if (r < 80) {
			int approve = rnd() % 10 != 0;
			ev->type = "request.reviewed";
			ev->actor = PICK(humans);
			ev->data = json_pack("{s:s, s:s, s:s, s:s}", "decision", approve ? "approve" : "deny",
			                     "comment", PICK(comments), "channel", "api", "status",
			                     approve ? "approved" : "denied");
			step = approve ? 2 : 0;
		} else if (r < 88) {
			ev->type = "request.cancelled";
			ev->actor = agent;
			ev->data = json_pack("{s:s}", "reason", rnd() % 2 ? "" : "superseded by a newer request");
			step = 0;
		} else if (r < 94) {
			ev->type = "request.escalated";
			ev->data = json_pack("{s:[s]}", "groups", PICK(groups));
			step = 1;
		} else {
			ev->type = "request.expired";
			ev->data = json_pack("{s:s}", "from", "pending");
			step = 0;
		}
	} else if (step == 2) {
		ev->type = "request.claimed";
		ev->actor = agent;
		ev->data = json_pack("{s:s}", "digest", digest);
		step = 3;
	} else {
		int code = rnd() % 8 ? 0 : (int)(1 + rnd() % 2);
		ev->type = "request.result";
		ev->actor = agent;
		ev->data = json_pack("{s:i, s:s, s:s}", "exit_code", code, "detail",
		                     code ? "error: the rollout did not become ready within 300s"
		                          : "deployment restarted; 12/12 pods ready",
		                     "status", code ? "failed" : "succeeded");
		step = 0;
	}
	memcpy(ev->request_id, rid, sizeof(rid));
	ev->has_request = 1;
}

int
main(int argc, char **argv)
{
	if (argc < 4 || argc > 5) {
		fprintf(stderr, "usage: gen N EXPORT PUBKEY_FILE [CHECKPOINT_EVERY]\n");
		return 2;
	}
	char *end;
	uint64_t n = strtoull(argv[1], &end, 10);
	uint64_t every = argc == 5 ? strtoull(argv[4], NULL, 10) : 1000;
	if (*end || n == 0 || every == 0) {
		fprintf(stderr, "gen: N and CHECKPOINT_EVERY must be positive integers\n");
		return 2;
	}
	if (sodium_init() < 0)
		return 1;
	unsigned char pk[32], sk[64];
	crypto_sign_keypair(pk, sk);
	char pkhex[65], key_id[SO_KEY_ID_LEN + 1];
	sodium_bin2hex(pkhex, sizeof(pkhex), pk, sizeof(pk));
	so_audit_key_id(pk, key_id);

	FILE *kf = fopen(argv[3], "w");
	if (!kf || fprintf(kf, "%s\n", pkhex) < 0 || fclose(kf)) {
		perror(argv[3]);
		return 1;
	}
	FILE *out = fopen(argv[2], "w");
	if (!out) {
		perror(argv[2]);
		return 1;
	}
	static char iobuf[1 << 20];
	setvbuf(out, iobuf, _IOFBF, sizeof(iobuf));

	int64_t t0 = 1795000000000; /* 2026-11-18, then about 40 ms between events */
	char when[40];
	so_clock_format(t0 + (int64_t)n * 40, when, sizeof(when));
	fprintf(out,
	        "{\"export\":{\"after\":0,\"exported_at\":\"%s\",\"format\":\"signoff-audit-jsonl/1\","
	        "\"key_id\":\"%s\",\"public_key\":\"%s\",\"through\":%" PRIu64 "}}\n",
	        when, key_id, pkhex, n);

	so_merkle_frontier_t tree;
	so_merkle_frontier_init(&tree);
	so_buf_t ev_buf, line;
	so_buf_init(&ev_buf, (size_t)1 << 20);
	so_buf_init(&line, (size_t)1 << 20);
	char prev[65], hash[65];
	memset(prev, '0', 64);
	prev[64] = '\0';
	int64_t at = t0;
	uint64_t bytes = 0;

	for (uint64_t seq = 1; seq <= n; seq++) {
		struct event ev;
		next_event(seq, &ev);
		at += 1 + (int64_t)(rnd() % 80);
		char *data = so_json_canonical_str(ev.data);
		json_decref(ev.data);
		so_buf_reset(&ev_buf);
		so_buf_reset(&line);
		unsigned char prev_bin[SO_HASH_LEN];
		so_hash_t chain, leaf;
		sodium_hex2bin(prev_bin, sizeof(prev_bin), prev, 64, NULL, NULL, NULL);
		/* chain hash = SHA-256(prev bytes || canonical event), as src/audit/chain.c does */
		if (!data || so_buf_add(&ev_buf, prev_bin, sizeof(prev_bin)) ||
		    so_audit_event_canonical((int64_t)seq, at, ev.type,
		                             ev.has_request ? ev.request_id : NULL, ev.actor, data,
		                             &ev_buf)) {
			fprintf(stderr, "gen: cannot encode event %" PRIu64 "\n", seq);
			return 1;
		}
		free(data);
		so_sha256(so_buf_cstr(&ev_buf), ev_buf.len, chain);
		sodium_bin2hex(hash, sizeof(hash), chain, sizeof(chain));
		so_audit_event_line(ev_buf.data + SO_HASH_LEN, ev_buf.len - SO_HASH_LEN, hash, prev,
		                    &line);
		so_buf_add(&line, "\n", 1);
		so_merkle_leaf_hash(chain, SO_HASH_LEN, leaf);
		so_merkle_append(&tree, leaf);
		memcpy(prev, hash, sizeof(prev));
		if (seq % every == 0 || seq == n) {
			so_checkpoint_t cp = {.size = seq, .at = at + 500};
			so_merkle_frontier_root(&tree, cp.root);
			if (so_checkpoint_sign(&cp, sk, pk) || so_checkpoint_line(&cp, &line) ||
			    so_buf_add(&line, "\n", 1)) {
				fprintf(stderr, "gen: cannot sign checkpoint %" PRIu64 "\n", seq);
				return 1;
			}
		}
		if (fwrite(line.data, 1, line.len, out) != line.len) {
			perror(argv[2]);
			return 1;
		}
		bytes += line.len;
	}
	so_buf_free(&ev_buf);
	so_buf_free(&line);
	sodium_memzero(sk, sizeof(sk));
	if (fclose(out)) {
		perror(argv[2]);
		return 1;
	}
	fprintf(stderr, "gen: %" PRIu64 " events, %" PRIu64 " checkpoints, %" PRIu64 " bytes\n", n,
	        (n + every - 1) / every, bytes);
	return 0;
}
