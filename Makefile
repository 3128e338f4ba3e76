# postern build. `make` builds build/postern; `make check` runs every test;
# `make demo` installs what is missing, builds and runs a demo server.
#
# Variants: BUILD=build-asan SAN=1 builds with AddressSanitizer and
# UndefinedBehaviorSanitizer into build-asan/.

BUILD ?= build
CC ?= cc
PKGS = libevent libevent_openssl libevent_pthreads openssl sqlite3 libxcrypt libunbound libpsl libcurl expat zlib libzip jansson
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

WARN = -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
       -Wformat=2 -Wno-format-nonliteral -Wvla
CFLAGS ?= -O2 -g
ifeq ($(SAN),1)
CFLAGS := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
endif
VERSION = 0.1.0
ALL_CFLAGS = -std=gnu11 $(WARN) $(CFLAGS) -D_GNU_SOURCE -DPOSTERN_VERSION=\"$(VERSION)\" -Isrc $(PKG_CFLAGS) -MMD -MP
LIBS = $(PKG_LIBS) -lpthread -lm

SRC := $(filter-out src/main.c,$(shell find src -name '*.c' | sort))
OBJ := $(SRC:%.c=$(BUILD)/%.o)
UNIT_SRC := $(shell find tests/unit -name '*.c' | sort)
UNIT_OBJ := $(UNIT_SRC:%.c=$(BUILD)/%.o)

.PHONY: all asan check check-unit demo deps clean fuzz bench

all: $(BUILD)/postern $(BUILD)/unit-tests

$(BUILD)/libpostern.a: $(OBJ)
	@rm -f $@
	@ar rcs $@ $^

$(BUILD)/postern: $(BUILD)/src/main.o $(BUILD)/libpostern.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/unit-tests: $(UNIT_OBJ) $(BUILD)/libpostern.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC $(BUILD)/$*.o"
	@$(CC) $(ALL_CFLAGS) -c -o $@ $<

asan:
	$(MAKE) BUILD=build-asan SAN=1 all

# Installs the Debian packages the build and the tests need (as root).
deps:
	sh tools/install-deps.sh

# Every test: unit tests and integration tests, against the normal build and
# the ASan/UBSan build. pytest prints the final summary line.
check:
	sh tools/install-deps.sh
	$(MAKE) all asan fuzz
	/usr/bin/python3 -m pytest -q -p no:cacheprovider tests $(PYTEST_ARGS)

check-unit: all
	$(BUILD)/unit-tests

demo:
	sh tools/install-deps.sh
	$(MAKE) all
	sh tools/demo.sh

# libFuzzer targets (clang): build-fuzz/fuzz_NAME for each NAME below.
FUZZ_TARGETS = cmd data ini spf dnspacket dkim_tags canon dmarc arc selftest mtasts mime dmarc_xml tlsrpt unpack policy_conf sasl smtpreply svg json form tlsa routing
FUZZ_SRC = src/smtp/cmd.c src/smtp/reply.c src/smtp/sasl.c src/policy/conf.c src/smtp/data.c src/lib/ini.c src/lib/util.c src/auth/spf.c src/auth/dmarc.c src/dns/packet.c src/dns/dns.c src/dns/batch.c src/lib/log.c src/auth/msg.c src/auth/dkim.c src/auth/dkim_sign.c src/auth/arc.c src/auth/authres.c src/lib/header.c \
	src/doctor/selftest.c src/lib/json.c src/deliver/mtasts.c src/deliver/tlspolicy.c \
	src/report/mime.c src/report/dmarc_xml.c src/report/tlsrpt.c src/report/unpack.c \
	src/web/svg.c src/web/html.c src/web/form.c src/deliver/reputation.c src/deliver/pacing.c
FUZZ_CFLAGS = -std=gnu11 -g -O1 -D_GNU_SOURCE -Isrc -DPOSTERN_VERSION=\"$(VERSION)\"
FUZZ_LIBS = -lcrypto -levent -lunbound -lpsl -lcurl -lexpat -lz -lzip -ljansson -lm
# The sources are compiled once (instrumented, without libFuzzer's main),
# then each target links its own entry point against them.
FUZZ_OBJ = $(FUZZ_SRC:%.c=build-fuzz/obj/%.o)
fuzz: $(FUZZ_TARGETS:%=build-fuzz/fuzz_%)

build-fuzz/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC(fuzz) $@"
	@clang $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link,address,undefined -MMD -MP -c -o $@ $<

build-fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_OBJ)
	@mkdir -p build-fuzz
	@echo "  LD(fuzz) $@"
	@clang $(FUZZ_CFLAGS) -fsanitize=fuzzer,address,undefined -o $@ $< $(FUZZ_OBJ) $(FUZZ_LIBS)

-include $(FUZZ_OBJ:.o=.d)

bench: all
	bench/run

clean:
	rm -rf build build-asan build-fuzz

-include $(OBJ:.o=.d) $(UNIT_OBJ:.o=.d) $(BUILD)/src/main.d
