# Builds the libFuzzer targets of tests/fuzz/ (run by tests/fuzz/run.sh,
# which passes OUT; not included by the top-level Makefile).
#
# Everything is compiled here with clang, coverage instrumentation and
# AddressSanitizer + UndefinedBehaviorSanitizer, from the sources as they are
# in the tree: common/*.c, the protobuf-c code generated from the .proto, and
# the service files (every .c except main.c and *_test.c) that a target
# drives.  Objects go under $(OUT)/obj with -MMD header dependencies, so a
# second run only rebuilds what changed.
OUT      ?= build/fuzz
FUZZ_CC  ?= clang
SAN      = -fsanitize=address,undefined -fno-sanitize-recover=undefined
CFLAGS_F = -std=c11 -D_GNU_SOURCE -g -O1 -fno-omit-frame-pointer $(SAN) -MMD -MP \
           -Icommon -I$(OUT)/gen
# Our code is built -Werror by gcc in the main build; clang's different set
# of warnings must not stop fuzzing it, so only the targets here are -Werror.
WARN_SRC = -Wall -Wextra -Wno-unused-parameter
WARN_OWN = -Wall -Wextra -Werror -Wno-unused-parameter
LIBS     = -lzmq -lprotobuf-c -llmdb -luv -lsodium -ljansson -lmicrohttpd -lm -lpthread

GEN_C = $(OUT)/gen/canvass.pb-c.c
GEN_H = $(OUT)/gen/canvass.pb-c.h

not_main = $(filter-out %/main.c %_test.c,$(wildcard $(1)/*.c))
# One archive per service, so that two services' same-named functions only
# clash if a target really uses both objects.
SVCS     = tally publish ingest
COMMON_OBJ = $(patsubst %.c,$(OUT)/obj/%.o,$(filter-out %_test.c,$(wildcard common/*.c))) \
             $(OUT)/obj/gen/canvass.pb-c.o

TARGETS  = $(patsubst tests/fuzz/%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
HELPERS  = $(OUT)/obj/tests/fuzz/fz_util.o
# fz_cluster drives publish and tally: only the targets that use them link it.
CLUSTER  = $(OUT)/obj/tests/fuzz/fz_cluster.o

.PHONY: all
all: $(TARGETS:%=$(OUT)/%)

$(GEN_C) $(GEN_H) &: proto/canvass.proto
	@mkdir -p $(OUT)/gen
	protoc-c -Iproto --c_out=$(OUT)/gen $<

$(OUT)/obj/gen/canvass.pb-c.o: $(GEN_C)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(CFLAGS_F) -fsanitize=fuzzer-no-link -w -c $< -o $@

# -iquote, not -I: services/publish/features.h must not stand in for libc's
# <features.h>.
$(OUT)/obj/tests/fuzz/%.o: tests/fuzz/%.c $(GEN_H)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(CFLAGS_F) -fsanitize=fuzzer-no-link $(WARN_OWN) -iquote services/tally \
	    -iquote services/publish -iquote services/ingest -c $< -o $@

$(OUT)/obj/%.o: %.c $(GEN_H)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(CFLAGS_F) -fsanitize=fuzzer-no-link $(WARN_SRC) -c $< -o $@

$(OUT)/libcommon.a: $(COMMON_OBJ)
	@rm -f $@
	ar rcs $@ $^

define svc_lib
$$(OUT)/lib$(1).a: $$(patsubst %.c,$$(OUT)/obj/%.o,$$(call not_main,services/$(1)))
	@rm -f $$@
	ar rcs $$@ $$^
endef
$(foreach s,$(SVCS),$(eval $(call svc_lib,$(s))))

# What each target links beyond common/ (default: every service), so that a
# service in the middle of a change only stops the targets that use it.
USES_fuzz_frame          =
USES_fuzz_tally_request  = tally
USES_fuzz_tally_reply    = publish tally
USES_fuzz_admin_request  = publish tally
USES_fuzz_http           = publish tally
USES_fuzz_ingest_reply   = ingest

uses = $(if $(filter undefined,$(origin USES_$(1))),$(SVCS),$(USES_$(1)))

define target_rule
$$(OUT)/$(1): $$(OUT)/obj/tests/fuzz/$(1).o $$(HELPERS) \
    $$(if $$(filter publish,$$(call uses,$(1))),$$(CLUSTER)) \
    $$(foreach s,$$(call uses,$(1)),$$(OUT)/lib$$(s).a) $$(OUT)/libcommon.a
	$$(FUZZ_CC) $$(SAN) -fsanitize=fuzzer -o $$@ $$^ $$(LIBS)
endef
$(foreach t,$(TARGETS),$(eval $(call target_rule,$(t))))

-include $(shell find $(OUT)/obj -name '*.d' 2>/dev/null)
