# SPDX-License-Identifier: MIT
# mk/redis.mk - the Redis / Redis Cluster store (src/store_redis.c,
# src/redis_cluster.c), an optional component: built with hiredis when
# `pkg-config hiredis` finds it (Debian: libhiredis-dev). Without it the
# library still has uf_store_redis, which returns -ENOTSUP, and the Redis
# tests skip saying so. HAVE_HIREDIS=0 turns it off; cross builds leave it
# off (the host's hiredis is not the target's).
ifeq ($(origin HAVE_HIREDIS),undefined)
HAVE_HIREDIS := $(if $(CROSS),0,$(shell pkg-config --exists hiredis 2>/dev/null && echo 1 || echo 0))
endif

ifeq ($(HAVE_HIREDIS),1)
HIREDIS_CFLAGS := $(shell pkg-config --cflags hiredis) -DUF_HAVE_HIREDIS=1
HIREDIS_LIBS := $(shell pkg-config --libs hiredis)
$(BUILD)/obj/src/store_redis.c.o $(BUILD)/obj/src/redis_cluster.c.o: LIB_CFLAGS += $(HIREDIS_CFLAGS)
# The shared library's link line reads LDLIBS when it runs.
LDLIBS += $(HIREDIS_LIBS)
# The routing unit test compiles src/redis_cluster.c into itself.
$(BUILD)/tests/test_redis_cluster: ALL_CFLAGS += $(HIREDIS_CFLAGS)
$(BUILD)/tests/test_redis_cluster: src/redis_cluster.c src/redis_cluster.h
else ifeq ($(origin HAVE_HIREDIS),command line)
$(info redis: HAVE_HIREDIS=$(HAVE_HIREDIS): the Redis store is not built, uf_store_redis returns -ENOTSUP, Redis tests skip)
else ifneq ($(CROSS),)
$(info redis: cross build: the Redis store is not built (the host's hiredis is not the target's), uf_store_redis returns -ENOTSUP, Redis tests skip)
else
$(info redis: hiredis not found (pkg-config hiredis; Debian: libhiredis-dev): the Redis store is not built, uf_store_redis returns -ENOTSUP, Redis tests skip)
endif

ifeq ($(HAVE_HIREDIS),1)
# bench/redisbench: the store against pipelined hiredis and redis-benchmark
# (see docs/PERFORMANCE.md). Not part of `make bench`: it starts servers.
REDISBENCH := $(BUILD)/bench/redisbench
all: $(REDISBENCH)
# The demo maps a cluster it starts: only with the Redis store (without
# hiredis it could only fail), so neither `all` nor `make demo` needs it.
all: $(BUILD)/examples/redis_demo
redis-demo: $(BUILD)/examples/redis_demo
	$(BUILD)/examples/redis_demo
.PHONY: redis-demo
$(REDISBENCH): bench/redisbench.c tests/redis_servers.h tests/harness.h src/redis_cluster.c src/redis_cluster.h $(SHLIB)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(HIREDIS_CFLAGS) -Itests -Isrc $< -o $@ $(LINK_UF) $(HIREDIS_LIBS)
endif
