# Canvass build.  `make` builds every binary into bin/; `make test` installs
# what is missing, builds and runs every test; `make run` starts a local
# cluster.  BUILD and BIN may be overridden (e.g. a helper's private tree).
BUILD    ?= build
BIN      ?= bin
CC       ?= cc
SANITIZE ?=
PYTHON   ?= /usr/bin/python3

CFLAGS_BASE = -std=c11 -D_GNU_SOURCE -g -O2 -fno-omit-frame-pointer -MMD -MP
WARN        = -Wall -Wextra -Werror -Wno-unused-parameter
INCLUDES    = -Icommon -I$(BUILD)/gen
LDLIBS      = -lzmq -lprotobuf-c -llmdb -luv -lsodium -ljansson -lmicrohttpd -lm -lpthread
ifneq ($(SANITIZE),)
CFLAGS_BASE += -fsanitize=$(SANITIZE) -fno-sanitize-recover=all
LDFLAGS     += -fsanitize=$(SANITIZE)
endif
CFLAGS ?=
ALL_CFLAGS = $(CFLAGS_BASE) $(INCLUDES) $(CFLAGS)

# Debian packages the build, the tests and `make run` need.
DEB_PKGS = build-essential pkg-config libzmq3-dev libprotobuf-c-dev protobuf-c-compiler \
           protobuf-compiler liblmdb-dev lmdb-utils libuv1-dev libsodium-dev libcmocka-dev \
           libmicrohttpd-dev libjansson-dev uthash-dev libhiredis-dev libpq-dev clang libclang-rt-14-dev \
           python3 python3-protobuf python3-zmq

GEN_C   = $(BUILD)/gen/canvass.pb-c.c
GEN_H   = $(BUILD)/gen/canvass.pb-c.h
GEN_PY  = $(BUILD)/gen/canvass_pb2.py

COMMON_SRC  = $(filter-out %_test.c,$(wildcard common/*.c))
COMMON_OBJ  = $(COMMON_SRC:%.c=$(BUILD)/%.o) $(BUILD)/gen/canvass.pb-c.o
COMMON_LIB  = $(BUILD)/libcanvass.a
UNIT_SRC    = $(wildcard common/*_test.c)
UNIT_BIN    = $(patsubst %.c,$(BUILD)/unit/%,$(notdir $(UNIT_SRC)))
# A service's own tests, services/<svc>/X_test.c, are linked with that
# service's objects other than main.o into $(BUILD)/unit/<svc>_X_test.
SVC_UNIT_SRC = $(wildcard services/*/*_test.c)
UNIT_BIN    += $(foreach t,$(SVC_UNIT_SRC),$(BUILD)/unit/$(word 2,$(subst /, ,$(t)))_$(basename $(notdir $(t))))

SERVICES = ingest tally publish
BINARIES = $(SERVICES:%=$(BIN)/canvass-%) $(BIN)/canvass
ifneq ($(wildcard services/loadgen/*.c),)
BINARIES += $(BIN)/canvass-loadgen
endif

# Keep test objects: they are intermediates of pattern rules.
.SECONDARY:

.PHONY: all deps test check unit integration run bench chaos fuzz memcheck clean FORCE
all: $(BINARIES) $(GEN_PY)

# ---- dependencies --------------------------------------------------------
deps: $(BUILD)/.deps
$(BUILD)/.deps:
	@missing=""; for p in $(DEB_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; SUDO=; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi
	@mkdir -p $(BUILD) && touch $@

# ---- generated code ------------------------------------------------------
$(GEN_C) $(GEN_H) &: proto/canvass.proto | $(BUILD)/.deps
	@mkdir -p $(BUILD)/gen
	protoc-c -Iproto --c_out=$(BUILD)/gen $<
$(GEN_PY): proto/canvass.proto | $(BUILD)/.deps
	@mkdir -p $(BUILD)/gen
	protoc -Iproto --python_out=$(BUILD)/gen $<
$(BUILD)/gen/canvass.pb-c.o: $(GEN_C) $(BUILD)/.flags
	$(CC) $(CFLAGS_BASE) $(INCLUDES) $(CFLAGS) -w -c $< -o $@

# The compiler and flags a tree was built with: when they change (a
# SANITIZE= build into the same BUILD, say) every object is rebuilt rather
# than mixed with objects built another way.
$(BUILD)/.flags: FORCE | $(BUILD)/.deps
	@echo '$(CC) $(CFLAGS_BASE) $(CFLAGS) $(LDFLAGS)' | cmp -s - $@ || \
	    echo '$(CC) $(CFLAGS_BASE) $(CFLAGS) $(LDFLAGS)' > $@

# ---- our code ------------------------------------------------------------
$(BUILD)/%.o: %.c $(GEN_H) $(BUILD)/.flags
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(WARN) -c $< -o $@

$(COMMON_LIB): $(COMMON_OBJ)
	@rm -f $@
	ar rcs $@ $^

define service_rule
$(1)_SRC = $$(filter-out %_test.c,$$(wildcard services/$(1)/*.c))
$(1)_OBJ = $$($(1)_SRC:%.c=$$(BUILD)/%.o)
$(2): $$($(1)_OBJ) $$(COMMON_LIB)
	@mkdir -p $$(dir $$@)
	$$(CC) $$(LDFLAGS) -o $$@ $$^ $$(LDLIBS)
endef
$(foreach s,$(SERVICES),$(eval $(call service_rule,$(s),$(BIN)/canvass-$(s))))
$(eval $(call service_rule,cli,$(BIN)/canvass))
$(eval $(call service_rule,loadgen,$(BIN)/canvass-loadgen))
# The load generator also drives the peers it is compared with (bench/).
LOADGEN_LIBS = -lhiredis -lpq
$(BIN)/canvass-loadgen: LDLIBS += $(LOADGEN_LIBS)
$(BUILD)/unit/loadgen_%_test: LDLIBS += $(LOADGEN_LIBS)

# Unit tests: one cmocka binary per *_test.c, linked with the common library
# (and, for a service's test, that service's objects other than main.c).
$(BUILD)/unit/%_test: $(BUILD)/unit/%_test.o $(COMMON_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $< $(COMMON_LIB) $(LDLIBS) -lcmocka
$(BUILD)/unit/%_test.o: common/%_test.c $(GEN_H) $(BUILD)/.flags
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(WARN) -c $< -o $@

define service_unit_rule
$(BUILD)/unit/$(1)_%_test: $(BUILD)/services/$(1)/%_test.o $$(filter-out %/main.o,$$($(1)_OBJ)) $$(COMMON_LIB)
	@mkdir -p $$(dir $$@)
	$$(CC) $$(LDFLAGS) -o $$@ $$^ $$(LDLIBS) -lcmocka
endef
$(foreach s,$(SERVICES) cli loadgen,$(eval $(call service_unit_rule,$(s))))

# ---- tests ---------------------------------------------------------------
unit: $(UNIT_BIN)
check test: deps all unit
	@BUILD=$(BUILD) BIN=$(BIN) PYTHON=$(PYTHON) bash tests/run.sh $(T)

run: deps all
	$(BIN)/canvass up --data ./var

bench: deps all
	@BIN=$(BIN) BUILD=$(BUILD) PYTHON=$(PYTHON) bash bench/run.sh

# Fault injection under load (tests/chaos/chaos.py, docs/RELIABILITY.md) for
# CHAOS_SECONDS; the last line is "acked N, lost 0, double-counted 0, faults K".
CHAOS_SECONDS ?= 300
chaos: deps all
	@BIN=$(BIN) BUILD=$(BUILD) PYTHONPATH=$(BUILD)/gen:tests $(PYTHON) tests/chaos/chaos.py \
	    --duration $(CHAOS_SECONDS) $(if $(CHAOS_SEED),--seed $(CHAOS_SEED))

# libFuzzer targets (tests/fuzz/README.md): each runs FUZZ_SECONDS after
# replaying its seeds and regressions; `make test` runs a brief form.
FUZZ_SECONDS ?= 60
fuzz: deps
	@BUILD=$(BUILD) FUZZ_SECONDS=$(FUZZ_SECONDS) bash tests/fuzz/run.sh

# Every test against a build with AddressSanitizer, LeakSanitizer and
# UndefinedBehaviorSanitizer in build-memcheck/ and bin-memcheck/: a report
# from any process fails the test that caused it (tests/harness.py reads the
# process logs; a unit test exits non-zero).  `make SANITIZE=address,undefined
# test` does the same in build/ and bin/.
memcheck: deps
	@$(MAKE) --no-print-directory BUILD=build-memcheck BIN=bin-memcheck \
	    SANITIZE=address,undefined all unit
	@ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 BUILD=build-memcheck \
	    BIN=bin-memcheck PYTHON=$(PYTHON) bash tests/run.sh $(T)

clean:
	rm -rf $(BUILD) $(BIN) build-memcheck bin-memcheck

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
