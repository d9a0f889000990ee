/* SPDX-License-Identifier: MIT */
/* error.c - uf_strerror and uf_version. */
#define _GNU_SOURCE
#include <limits.h>
#include <string.h>

#include "internal.h"

int uf_version(void)
{
	return UF_VERSION_MAJOR * 10000 + UF_VERSION_MINOR * 100 + UF_VERSION_PATCH;
}

const char *uf_strerror(int err)
{
	if (err == 0)
		return "Success";
	if (err == INT_MIN)
		return "Unknown error";
	if (err > 0)
		err = -err;
	switch (-err) {
	case ENOTSUP: return "Not supported by this kernel, process, engine or build";
	case EFAULT: return "Bad address (not readable/writable, or past the end of the store)";
	default: break;
	}
	const char *s = strerrordesc_np(-err);
	return s ? s : "Unknown error";
}
