/*
 * A policy expression as a policy file gives it: compiled as a condition and as a path
 * (approver group). A failed compile must say where (line and column >= 1, a message); a
 * compiled condition must evaluate to true, false or unknown against a small fixed request,
 * the same way twice, naming an absent field only inside its own text and only when unknown;
 * and `!(X)`, when it compiles, must evaluate to the Kleene negation of X.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/error.h"
#include "core/core.h"
#include "policy/expr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *bot_groups[] = {"bots", "deployers", NULL};
static char *sre_groups[] = {"sre", NULL};
static so_principal_t requester = {.id = "deploy-bot", .kind = SO_KIND_AGENT, .owner = "alice",
                                   .team = "platform", .groups = bot_groups};
static so_principal_t owner = {.id = "alice", .kind = SO_KIND_HUMAN, .team = "sre-team",
                               .groups = sre_groups};

static so_expr_input_t in;

static void
init(void)
{
	static so_request_t r;
	if (in.request)
		return;
	r.requester = "deploy-bot";
	r.on_behalf_of = "alice";
	r.intent = "restart after INC-4411";
	r.action = json_loads("{\"kind\":\"shell\",\"command\":[\"kubectl\",\"rollout\",\"restart\","
	                      "\"deploy/api\"],\"resource\":\"deploy/api\",\"environment\":"
	                      "\"production\",\"arguments\":{\"n\":3}}",
	                      0, NULL);
	r.context = json_loads("{\"ticket\":\"INC-4411\",\"tags\":[\"prod\",\"urgent\"],\"n\":1,"
	                       "\"neg\":-1,\"ratio\":0.5,\"flag\":true,\"nothing\":null,"
	                       "\"nested\":{\"a\":{\"b\":\"deep\"}},\"outer\":[[\"a\",\"deep\"],"
	                       "[\"b\"]],\"items\":[{\"name\":\"x\"},{\"name\":1}],\"s\":"
	                       "\"aaaaaaaaaaaaaaaaaaaaaaaaab\"}",
	                       0, NULL);
	static json_t *reasons;
	reasons = json_loads("[\"new-command\",\"off-hours\"]", 0, NULL);
	if (!r.action || !r.context || !reasons)
		abort();
	in = (so_expr_input_t){.request = &r, .requester = &requester, .owner = &owner, .hour = 2,
	                       .minute = 10, .weekday = 2, .anomaly_score = 0.25,
	                       .anomaly_reasons = reasons};
}

static void
check_compile_error(int rc, so_expr_t *e, int line, int col, const char *err)
{
	if (rc != SO_EINVAL || e || line < 1 || col < 1 || !err[0])
		abort();
}

static enum so_tri
eval_checked(const so_expr_t *e)
{
	const char *absent = (const char *)1;
	size_t absent_len = 7;
	enum so_tri t = so_expr_eval(e, &in, &absent, &absent_len);
	if (t != SO_TRUE && t != SO_FALSE && t != SO_UNKNOWN)
		abort();
	if (t != SO_UNKNOWN && (absent || absent_len))
		abort();
	if (absent) {
		const char *text = so_expr_text(e);
		if (absent < text || absent + absent_len > text + strlen(text) || !absent_len)
			abort();
	}
	if (so_expr_eval(e, &in, NULL, NULL) != t)
		abort();
	return t;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	init();
	char *text = malloc(size + 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	size_t len = strlen(text);

	so_expr_t *e = NULL;
	int line = 0, col = 0;
	char err[256] = "";
	int rc = so_expr_compile(text, SO_EXPR_CONDITION, &e, &line, &col, err, sizeof(err));
	if (rc == SO_OK) {
		if (!e || strcmp(so_expr_text(e), text))
			abort();
		enum so_tri t = eval_checked(e);
		so_expr_free(e);
		/* The negation, when it still fits the limits. */
		char *neg = malloc(len + 4);
		if (neg) {
			memcpy(neg, "!(", 2);
			memcpy(neg + 2, text, len);
			memcpy(neg + 2 + len, ")", 2);
			if (so_expr_compile(neg, SO_EXPR_CONDITION, &e, &line, &col, err, sizeof(err)) ==
			    SO_OK) {
				enum so_tri nt = eval_checked(e);
				if (nt != (t == SO_UNKNOWN ? SO_UNKNOWN : t == SO_TRUE ? SO_FALSE : SO_TRUE))
					abort();
				so_expr_free(e);
			}
			free(neg);
		}
	} else {
		check_compile_error(rc, e, line, col, err);
	}

	e = NULL;
	err[0] = '\0';
	rc = so_expr_compile(text, SO_EXPR_PATH, &e, &line, &col, err, sizeof(err));
	if (rc == SO_OK) {
		const char *s = NULL;
		size_t slen = 0;
		if (so_expr_eval_string(e, &in, &s, &slen)) {
			if (!s || memchr(s, '\0', slen))
				abort();
		}
		so_expr_free(e);
	} else {
		check_compile_error(rc, e, line, col, err);
	}
	free(text);
	return 0;
}
