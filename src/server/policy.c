/* The policy in force: shared by reference, replaced whole on reload (SIGHUP or the API). */
#include <stdlib.h>
#include <string.h>

#include "audit/audit.h"
#include "common/clock.h"
#include "common/error.h"
#include "common/log.h"
#include "server/internal.h"

struct policy_ref *
policy_acquire(so_server_t *srv)
{
	pthread_mutex_lock(&srv->policy_lock);
	struct policy_ref *ref = srv->policy;
	atomic_fetch_add(&ref->refs, 1);
	pthread_mutex_unlock(&srv->policy_lock);
	return ref;
}

void
policy_release(struct policy_ref *ref)
{
	if (atomic_fetch_sub(&ref->refs, 1) == 1) {
		so_policy_free(&ref->policy);
		free(ref);
	}
}

struct reload_audit {
	const char *actor;
	const char *old_version;
	const char *new_version;
	size_t rules;
};

static int
op_reload_audit(so_store_t *s, void *arg)
{
	struct reload_audit *ra = arg;
	return so_audit_append(s, "policy.reloaded", NULL, ra->actor,
	                       json_pack("{s:s, s:s, s:I}", "old_version", ra->old_version,
	                                 "new_version", ra->new_version, "rules",
	                                 (json_int_t)ra->rules),
	                       so_clock_now_ms());
}

int
so_server_reload_policy(so_server_t *srv, const char *actor, char *err, size_t errlen)
{
	if (!srv->loader) {
		snprintf(err, errlen, "this signoffd has no configuration file to reload");
		return SO_EINVAL;
	}
	if (srv->audit_damaged) {
		/* No audit, no change: a reload is recorded in the log, which is damaged. */
		snprintf(err, errlen, "the audit log is damaged; the policy is not reloaded");
		return SO_EBUSY;
	}
	struct policy_ref *fresh = calloc(1, sizeof(*fresh));
	if (!fresh)
		return SO_ENOMEM;
	fresh->refs = 1;
	pthread_mutex_lock(&srv->reload_lock);
	int rc = srv->loader(srv->loader_ctx, &fresh->policy, err, errlen);
	if (rc) {
		pthread_mutex_unlock(&srv->reload_lock);
		free(fresh);
		so_warn("policy reload refused, the old policy stays: %s", err);
		return rc;
	}
	struct policy_ref *old = policy_acquire(srv);
	struct reload_audit ra = {actor, old->policy.version, fresh->policy.version,
	                          fresh->policy.nrules};
	/* Audited first: a reload that cannot be recorded does not happen. */
	rc = so_writer_run(srv->writer, op_reload_audit, &ra);
	if (rc == SO_OK) {
		pthread_mutex_lock(&srv->policy_lock);
		srv->policy = fresh;
		pthread_mutex_unlock(&srv->policy_lock);
		so_info("policy reloaded by %s: %s -> %s (%zu rules)", actor ? actor : "signal",
		        old->policy.version, fresh->policy.version, fresh->policy.nrules);
		policy_release(old); /* the server's reference */
	} else {
		snprintf(err, errlen, "the reload could not be audited; the old policy stays");
		so_policy_free(&fresh->policy);
		free(fresh);
	}
	policy_release(old); /* ours */
	pthread_mutex_unlock(&srv->reload_lock);
	return rc;
}

void
h_policy_reload(struct conn *c, struct MHD_Connection *mc)
{
	char err[1024];
	if (!is_admin(c->srv, c->caller)) {
		reply_error(c, 403, "forbidden", "only members of '%s' may reload the policy",
		            c->srv->cfg->admin_group);
		return;
	}
	int rc = so_server_reload_policy(c->srv, c->caller->id, err, sizeof(err));
	if (rc == SO_EBUSY && c->srv->audit_damaged) {
		reply_error(c, 503, "audit_damaged", "%s", err);
		return;
	}
	if (rc == SO_ESTORE || rc == SO_EBUSY) {
		reply_error(c, 503, "unavailable", "%s", err);
		return;
	}
	if (rc) {
		reply_error(c, 422, "bad_policy", "%s", err);
		return;
	}
	struct policy_ref *pr = policy_acquire(c->srv);
	reply_json(c, 200, json_pack("{s:s, s:I}", "policy_version", pr->policy.version, "rules",
	                             (json_int_t)pr->policy.nrules));
	policy_release(pr);
}
