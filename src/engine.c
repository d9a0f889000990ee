/* SPDX-License-Identifier: MIT */
/* engine.c - the list of engines and the choice among them. */
#include <string.h>

#include "diag.h"
#include "region.h"

/* In order of preference for UF_ENGINE_AUTO. */
static const struct uf__engine_ops *const g_engines[] = {
	&uf__engine_uffd,
	&uf__engine_uffd_thread,
	&uf__engine_signal,
};

static const struct uf__engine_ops *by_id(int id)
{
	for (size_t i = 0; i < UF__ARRAY_SIZE(g_engines); i++)
		if (g_engines[i]->id == id)
			return g_engines[i];
	return NULL;
}

const char *uf_engine_name(int engine)
{
	switch (engine) {
	case UF_ENGINE_AUTO: return "auto";
	case UF_ENGINE_UFFD: return "uffd";
	case UF_ENGINE_UFFD_THREAD: return "uffd-thread";
	case UF_ENGINE_SIGNAL: return "signal";
	default: return "unknown";
	}
}

/* USERFAULT_ENGINE=auto|uffd|uffd-thread|signal; -1 if set to nonsense. */
static int env_engine(void)
{
	const char *e = uf__getenv("USERFAULT_ENGINE");
	if (!e || !*e)
		return UF_ENGINE_AUTO;
	for (int id = UF_ENGINE_AUTO; id <= UF_ENGINE_SIGNAL; id++)
		if (!strcmp(e, uf_engine_name(id)))
			return id;
	return -1;
}

/* The engine to try first for a region that asked for want, and whether
 * falling back to the next one is allowed. */
const struct uf__engine_ops *uf__engine_pick(int want, int *err)
{
	if (want == UF_ENGINE_AUTO)
		want = env_engine();
	if (want < 0) {
		*err = -EINVAL;
		return NULL;
	}
	if (want != UF_ENGINE_AUTO) {
		const struct uf__engine_ops *e = by_id(want);
		if (!e) {
			*err = -ENOTSUP;
			return NULL;
		}
		int p = e->probe();
		*err = p;
		return p ? NULL : e;
	}
	*err = -ENOTSUP;
	for (size_t i = 0; i < UF__ARRAY_SIZE(g_engines); i++) {
		int p = g_engines[i]->probe();
		if (p == 0) {
			*err = 0;
			return g_engines[i];
		}
		uf__diag_refused(g_engines[i]->id, p, "probe");
		*err = p;
	}
	return NULL;
}

/* The next engine after e in preference order (for AUTO fallback when
 * attach fails), or NULL. */
const struct uf__engine_ops *uf__engine_next(const struct uf__engine_ops *e)
{
	for (size_t i = 0; i + 1 < UF__ARRAY_SIZE(g_engines); i++)
		if (g_engines[i] == e)
			for (size_t j = i + 1; j < UF__ARRAY_SIZE(g_engines); j++)
				if (g_engines[j]->probe() == 0)
					return g_engines[j];
	return NULL;
}
