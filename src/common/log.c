#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "common/clock.h"
#include "common/error.h"
#include "common/log.h"

static _Atomic int min_level = SO_LOG_INFO;
static const char *const level_names[] = {"debug", "info", "warn", "error"};

void
so_log_set_level(enum so_log_level lvl)
{
	min_level = (int)lvl;
}

int
so_log_parse_level(const char *s, enum so_log_level *lvl)
{
	for (int i = 0; i < 4; i++) {
		if (strcmp(s, level_names[i]) == 0) {
			*lvl = (enum so_log_level)i;
			return SO_OK;
		}
	}
	return SO_EINVAL;
}

void
so_log(enum so_log_level lvl, const char *fmt, ...)
{
	if ((int)lvl < min_level)
		return;
	char when[32], msg[2048];
	so_clock_format(so_clock_now_ms(), when, sizeof(when));
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* Keep one event on one line whatever the message holds. */
	for (char *p = msg; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	fprintf(stderr, "%s %s %s\n", when, level_names[lvl], msg);
}
