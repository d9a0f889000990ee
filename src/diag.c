/* diag.c - what the library tells its user about itself: uf_stats_init. */
#include <string.h>

#include "internal.h"

void uf_stats_init(struct uf_stats *st)
{
	if (!st)
		return;
	memset(st, 0, sizeof(*st));
	st->struct_size = sizeof(*st);
}
