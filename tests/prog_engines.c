/* SPDX-License-Identifier: MIT */
/* prog_engines - prints the engines this process can use, one line, space
 * separated (tests/run.sh runs the engine tests once per engine). An
 * engine with asynchronous write tracking is listed a second time as
 * NAME-wpsync: the same engine with it turned off (USERFAULT_WP_ASYNC=0). */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "userfault.h"

int main(void)
{
	static unsigned char buf[4096];
	uf_store *s;
	if (uf_store_mem(buf, sizeof(buf), 0, &s))
		return 1;
	const int engines[] = {UF_ENGINE_UFFD, UF_ENGINE_UFFD_THREAD, UF_ENGINE_SIGNAL};
	const char *sep = "";
	for (unsigned i = 0; i < sizeof(engines) / sizeof(engines[0]); i++) {
		struct uf_map_opts o;
		uf_map_opts_init(&o);
		o.engine = engines[i];
		uf_region *r;
		if (uf_map(s, 0, sizeof(buf), PROT_READ | PROT_WRITE, &o, &r) == 0) {
			struct uf_stats st = {.struct_size = sizeof(st)};
			printf("%s%s", sep, uf_engine_name(engines[i]));
			sep = " ";
			/* Asynchronous write tracking is the default where the kernel
			 * has it: test the write-protect fault path too. */
			if (uf_stats(r, &st) == 0 && st.async_writes)
				printf(" %s-wpsync", uf_engine_name(engines[i]));
			uf_unmap(r, UF_UNMAP_DISCARD);
		}
	}
	printf("\n");
	uf_store_close(s);
	return 0;
}
