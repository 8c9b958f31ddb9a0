# jobrt: build, set-up and test targets. `make run` and `make test` work on a
# fresh Debian 12 machine as root: `deps` installs whatever is missing first.

CC      ?= cc
PKGS    := lua5.4 libuv yaml-0.1 sqlite3 libpq libssl libcrypto libseccomp lua5.4-luv
DEBS    := liblua5.4-dev lua-luv-dev lua-lpeg lua-cjson libyaml-dev libssl-dev \
           libsqlite3-dev libuv1-dev libhttp-parser-dev libseccomp-dev libwslay-dev zlib1g-dev \
           libzstd-dev zstd libpq-dev postgresql \
           pkg-config curl openssl xxd python3 lua5.4 \
           chromium man-db prometheus luarocks lua-busted busybox-static skopeo docker-registry
BENCH_DEBS := wrk nginx-light libnginx-mod-http-lua bubblewrap
# The Slurm executor's tests and benchmark start a throwaway cluster.
SLURM_DEBS := slurm-wlm munge
SLURM_DIR  ?= /tmp/jobrt-slurm
FUZZ_DEBS  := clang libclang-rt-14-dev

OPT     ?= -O2
CFLAGS  ?= $(OPT) -g
CFLAGS  += -std=c11 -Wall -Wextra -Werror -D_GNU_SOURCE -Iruntime \
           $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
# `make JOBRT_VERSION=x.y.z` stamps the version `jobrt version` and
# /jobrt/version report (runtime/lua/runtime.c; the upgrade test builds one).
ifdef JOBRT_VERSION
CFLAGS  += -DJOBRT_VERSION='"$(JOBRT_VERSION)"'
endif
LDLIBS  += $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lhttp_parser -lwslay \
           -l:liblua5.4-lpeg.so.2 -l:liblua5.4-cjson.so.0 -lz -lzstd -lm

# The slim sandbox helper (build/jobrt-sandbox): the sandbox sources and
# their own main(), linked statically (libc and libseccomp), so a task
# attempt does not pay for loading shared libraries, and a fork of the
# sandbox server has no dynamic linker's pages to copy or lazy bindings to
# resolve (measured: a quarter of the CPU of a sandboxed /bin/true). The
# linker warns that getaddrinfo (the allow-list proxy's) wants the same
# glibc's NSS modules at run time: files and dns are built into libc.a.
SANDBOX_MAIN := runtime/sandbox/helper/main.c
SANDBOX_SRC   = $(filter runtime/sandbox/%,$(CORE_SRC))
SANDBOX_LIBS := -static -lseccomp

# Every .c under runtime/ except main.c goes into the core library, which the
# binary, the C unit tests and the fuzz target link.
CORE_SRC := $(filter-out runtime/main.c $(SANDBOX_MAIN),$(shell find runtime -name '*.c' | sort))
LUA_SRC  := $(shell find lua api policies -name '*.lua' | sort)
# Files the binary serves as they are: the dashboard and the API document.
ASSET_SRC := $(sort $(wildcard ui/*.html ui/*.css ui/*.js ui/*.svg)) api/native/openapi.json
BUILD    ?= build
CORE_OBJ := $(CORE_SRC:%.c=$(BUILD)/%.o) $(BUILD)/embedded.o
UNIT_SRC := $(sort $(wildcard tests/c/test_*.c))
UNIT_BIN := $(UNIT_SRC:tests/c/%.c=$(BUILD)/tests/%)

.PHONY: all deps run test asan bench fuzz clean node-deps bench-deps fuzz-deps units rock man install \
        pg-up pg-down slurm-deps slurm-up slurm-down

all: jobrt

jobrt: $(BUILD)/runtime/main.o $(BUILD)/libjobrt_core.a | $(BUILD)/jobrt-sandbox
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# The daemon inside BUILD, beside its slim helper (a second build, e.g. the
# upgrade test's, without touching ./jobrt).
$(BUILD)/jobrt: $(BUILD)/runtime/main.o $(BUILD)/libjobrt_core.a | $(BUILD)/jobrt-sandbox
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/jobrt-sandbox: $(BUILD)/$(SANDBOX_MAIN:.c=.o) $(SANDBOX_SRC:%.c=$(BUILD)/%.o)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(SANDBOX_LIBS)

$(BUILD)/libjobrt_core.a: $(CORE_OBJ)
	@mkdir -p $(@D)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/%.o: %.c $(wildcard runtime/*.h runtime/*/*.h)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -c -o $@ $<

# The Lua library, the surfaces, the policies and the served assets are
# compiled into the binary as text under their repository paths.
$(BUILD)/embedded.c: $(BUILD)/embed $(LUA_SRC) $(ASSET_SRC)
	$(BUILD)/embed $(LUA_SRC) $(ASSET_SRC) > $@.tmp && mv $@.tmp $@

$(BUILD)/embedded.o: $(BUILD)/embedded.c
	$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/embed: tools/embed.c
	@mkdir -p $(@D)
	$(CC) -std=c11 -Wall -Wextra -Werror -O1 -o $@ $<

# jobrt(1), from the help text the binary prints.
man: $(BUILD)/jobrt.1
$(BUILD)/jobrt.1: jobrt
	./jobrt help --man > $@.tmp && mv $@.tmp $@

# The binary, the sandbox helper beside it (the daemon looks for it there),
# the manual page, the systemd unit and its user, and a deployment file
# unless one is there. DESTDIR stages the tree for a package.
PREFIX     ?= /usr/local
SYSCONFDIR ?= /etc
install: jobrt $(BUILD)/jobrt-sandbox $(BUILD)/jobrt.1
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1 \
	  $(DESTDIR)$(PREFIX)/lib/systemd/system $(DESTDIR)$(PREFIX)/lib/sysusers.d $(DESTDIR)$(SYSCONFDIR)/jobrt
	install -m 0755 jobrt $(DESTDIR)$(PREFIX)/bin/jobrt
	install -m 0755 $(BUILD)/jobrt-sandbox $(DESTDIR)$(PREFIX)/bin/jobrt-sandbox
	install -m 0644 $(BUILD)/jobrt.1 $(DESTDIR)$(PREFIX)/share/man/man1/jobrt.1
	sed -e 's|/usr/local|$(PREFIX)|g' -e 's|/etc/jobrt|$(SYSCONFDIR)/jobrt|g' deploy/jobrt.service \
	  > $(DESTDIR)$(PREFIX)/lib/systemd/system/jobrt.service
	chmod 0644 $(DESTDIR)$(PREFIX)/lib/systemd/system/jobrt.service
	install -m 0644 deploy/jobrt.sysusers $(DESTDIR)$(PREFIX)/lib/sysusers.d/jobrt.conf
	[ -e $(DESTDIR)$(SYSCONFDIR)/jobrt/jobrt.yaml ] || \
	  install -m 0644 deploy/default.yaml $(DESTDIR)$(SYSCONFDIR)/jobrt/jobrt.yaml

$(BUILD)/tests/%: tests/c/%.c $(wildcard tests/c/*.h) $(BUILD)/libjobrt_core.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -Itests/c -o $@ $< $(BUILD)/libjobrt_core.a $(LDLIBS)

deps:
	@missing=""; for p in $(DEBS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	command -v node >/dev/null 2>&1 || missing="$$missing nodejs"; \
	command -v npm >/dev/null 2>&1 || missing="$$missing npm"; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

bench-deps:
	@missing=""; for p in $(BENCH_DEBS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; fi

slurm-deps:
	@missing=""; for p in $(SLURM_DEBS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; fi

# A one-node Slurm cluster for trying executor.backend slurm by hand; its
# slurm.conf is $(SLURM_DIR)/slurm.conf (executor.conf, or SLURM_CONF).
slurm-up: slurm-deps
	tools/slurm/up.sh $(SLURM_DIR)

slurm-down:
	tools/slurm/down.sh $(SLURM_DIR)

fuzz-deps:
	@missing=""; for p in $(FUZZ_DEBS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; fi

# Installs when node_modules is missing, and again when the lock is newer
# than what npm ci last installed (dash: -nt is false for a missing file).
node-deps: deps
	@if [ -f tests/e2e/package-lock.json ] && { [ ! -f tests/e2e/node_modules/.package-lock.json ] || \
	  [ tests/e2e/package-lock.json -nt tests/e2e/node_modules/.package-lock.json ]; }; then \
	  cd tests/e2e && npm ci --no-audit --no-fund --silent; fi

run: deps
	$(MAKE) jobrt
	./jobrt serve

# A throwaway PostgreSQL server for trying the postgres store by hand
# (tools/pg.sh; the tests start their own): prints its URL.
PG_DIR ?= /tmp/jobrt-pg
pg-up: deps
	@tools/pg.sh up $(PG_DIR)
pg-down:
	@tools/pg.sh down $(PG_DIR)

test: deps slurm-deps
	$(MAKE) jobrt units rock
	$(MAKE) node-deps
	tests/run

units: $(UNIT_BIN)

asan: deps slurm-deps
	$(MAKE) BUILD=build-asan OPT="-O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all" \
	  LDFLAGS="-fsanitize=address,undefined" build-asan/jobrt-asan units
	$(MAKE) rock node-deps
	JOBRT_BIN=build-asan/jobrt-asan JOBRT_UNIT_DIR=build-asan/tests \
	  ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:exitcode=99 UBSAN_OPTIONS=print_stacktrace=1 tests/run

build-asan/jobrt-asan: $(BUILD)/runtime/main.o $(BUILD)/libjobrt_core.a
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# Each target runs FUZZ_SECONDS (default 60); new inputs and crashes go
# under build-fuzz/, the committed seed corpora stay as they are.
FUZZ_TARGETS := fuzz_http fuzz_base64 fuzz_span fuzz_client fuzz_spec fuzz_model fuzz_ws fuzz_bacalhau fuzz_kuscia \
                fuzz_image_docs fuzz_tar fuzz_zstd fuzz_body
fuzz: deps fuzz-deps
	$(MAKE) BUILD=build-fuzz CC=clang OPT="-O1 -fsanitize=fuzzer-no-link,address,undefined" \
	  $(FUZZ_TARGETS:%=build-fuzz/%)
	@mkdir -p build-fuzz/artifacts
	for t in $(FUZZ_TARGETS); do \
	  mkdir -p build-fuzz/corpus-$${t#fuzz_} && \
	  build-fuzz/$$t -max_total_time=$${FUZZ_SECONDS:-60} -max_len=8192 \
	    $$( [ -f fuzz/$${t#fuzz_}.dict ] && echo -dict=fuzz/$${t#fuzz_}.dict ) \
	    -artifact_prefix=build-fuzz/artifacts/ build-fuzz/corpus-$${t#fuzz_} fuzz/corpus-$${t#fuzz_} \
	  || exit 1; \
	done

build-fuzz/fuzz_http: fuzz/fuzz_http.c fuzz/fuzz.h $(BUILD)/libjobrt_core.a
	$(CC) $(CFLAGS) -fsanitize=fuzzer,address,undefined -o $@ $(filter-out %.h,$^) $(LDLIBS)

build-fuzz/fuzz_ws: fuzz/fuzz_ws.c fuzz/fuzz.h $(BUILD)/libjobrt_core.a
	$(CC) $(CFLAGS) -fsanitize=fuzzer,address,undefined -o $@ $(filter-out %.h,$^) $(LDLIBS)

build-fuzz/fuzz_base64: fuzz/fuzz_base64.c runtime/crypto/base64.c
	$(CC) $(CFLAGS) -fsanitize=fuzzer,address,undefined -o $@ $^

build-fuzz/fuzz_client: fuzz/fuzz_client.c fuzz/fuzz.h $(BUILD)/libjobrt_core.a
	$(CC) $(CFLAGS) -fsanitize=fuzzer,address,undefined -o $@ $(filter-out %.h,$^) $(LDLIBS)

build-fuzz/fuzz_spec: fuzz/fuzz_spec.c fuzz/fuzz.h $(BUILD)/libjobrt_core.a
	$(CC) $(CFLAGS) -fsanitize=fuzzer,address,undefined -o $@ $(filter-out %.h,$^) $(LDLIBS)

build-fuzz/fuzz_span: fuzz/fuzz_span.c fuzz/fuzz_lua.h
	$(CC) $(CFLAGS) -fsanitize=fuzzer,address,undefined -o $@ $< $(LDLIBS)

build-fuzz/fuzz_model: fuzz/fuzz_model.c runtime/lua/model_check.c runtime/lua/json.c \
                       runtime/lua/json_decode.c runtime/lua/class.c
	$(CC) $(CFLAGS) -fsanitize=fuzzer,address,undefined -o $@ $^ $(LDLIBS)

build-fuzz/fuzz_body: fuzz/fuzz_body.c fuzz/fuzz_lua.h runtime/lua/body_doc.c runtime/lua/json.c \
                      runtime/lua/json_decode.c runtime/lua/class.c
	$(CC) $(CFLAGS) -fsanitize=fuzzer,address,undefined -o $@ $(filter-out %.h,$^) $(LDLIBS)

build-fuzz/fuzz_bacalhau: fuzz/fuzz_bacalhau.c fuzz/fuzz_lua.h $(BUILD)/libjobrt_core.a
	$(CC) $(CFLAGS) -fsanitize=fuzzer,address,undefined -o $@ $(filter-out %.h,$^) $(LDLIBS)

build-fuzz/fuzz_kuscia: fuzz/fuzz_kuscia.c fuzz/fuzz_lua.h $(BUILD)/libjobrt_core.a
	$(CC) $(CFLAGS) -fsanitize=fuzzer,address,undefined -o $@ $(filter-out %.h,$^) $(LDLIBS)

build-fuzz/fuzz_image_docs: fuzz/fuzz_image_docs.c fuzz/fuzz.h $(BUILD)/libjobrt_core.a
	$(CC) $(CFLAGS) -fsanitize=fuzzer,address,undefined -o $@ $(filter-out %.h,$^) $(LDLIBS)

build-fuzz/fuzz_tar: fuzz/fuzz_tar.c fuzz/fuzz.h $(BUILD)/libjobrt_core.a
	$(CC) $(CFLAGS) -fsanitize=fuzzer,address,undefined -o $@ $(filter-out %.h,$^) $(LDLIBS)

build-fuzz/fuzz_zstd: fuzz/fuzz_zstd.c fuzz/fuzz.h $(BUILD)/libjobrt_core.a
	$(CC) $(CFLAGS) -fsanitize=fuzzer,address,undefined -o $@ $(filter-out %.h,$^) $(LDLIBS)

bench: deps bench-deps slurm-deps node-deps
	$(MAKE) jobrt $(BUILD)/bench/sbs_latency $(BUILD)/bench/pg_claim $(BUILD)/bench/pg_read
	bench/run

# jobrt's claim of free jobs on the PostgreSQL store (bench/pg.sh).
$(BUILD)/bench/pg_claim: bench/pg_claim.c $(BUILD)/libjobrt_core.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# How long a GET's and a list page's reads hold the loop (bench/pg.sh).
$(BUILD)/bench/pg_read: bench/pg_read.c $(BUILD)/libjobrt_core.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# Sandbox start-to-exit through the sandbox server, as the daemon runs tasks.
$(BUILD)/bench/sbs_latency: bench/sbs_latency.c $(BUILD)/libjobrt_core.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# jobrt.core as a Lua C module, for `luarocks make` (rockspec/) and for
# policy authors testing with plain lua5.4. The interpreter provides Lua's
# own symbols, so liblua is not linked.
ROCK_LIBS := $(shell pkg-config --libs libuv yaml-0.1 sqlite3 libpq libssl libcrypto libseccomp 2>/dev/null) \
             -llua5.4-luv -lhttp_parser -lwslay -l:liblua5.4-lpeg.so.2 -l:liblua5.4-cjson.so.0 -lz -lzstd -lm
rock: deps
	$(MAKE) BUILD=build-pic OPT="-O2 -fPIC" build-pic/libjobrt_core.a
	@mkdir -p build/rock/jobrt
	$(CC) -shared -o build/rock/jobrt/core.so -Wl,--whole-archive build-pic/libjobrt_core.a \
	  -Wl,--no-whole-archive $(ROCK_LIBS)

clean:
	rm -rf build build-asan build-fuzz build-pic jobrt
