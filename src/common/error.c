#include "common/error.h"

const char *
so_strerror(int err)
{
	switch (err) {
	case SO_OK: return "success";
	case SO_ENOMEM: return "out of memory";
	case SO_EINVAL: return "invalid value";
	case SO_EBADJSON: return "malformed JSON";
	case SO_ETOODEEP: return "JSON nested too deep";
	case SO_ETOOLONG: return "string or list too long";
	case SO_ETOOLARGE: return "too large";
	case SO_ENOTFOUND: return "not found";
	case SO_ESTORE: return "store failure";
	case SO_EIO: return "input/output error";
	case SO_ECONFIG: return "invalid configuration";
	case SO_ECONFLICT: return "wrong state";
	case SO_EDENIED: return "not allowed";
	case SO_EBUSY: return "busy";
	}
	return "unknown error";
}
