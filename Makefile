# moat - anti-spam SMTP filtering proxy
# make            build build/moat
# make run        install missing packages (as root), build, start moat before a demo backend
# make test       install missing packages (as root), then make check
# make check      build and run every test (layers, unit, end to end); installs no package
# make asan       the same tests under AddressSanitizer + UBSan (objects in build/asan)
# make layers     check the include graph between folders (proxy/lib < rules < checks < proxy;
#                 proxy/lib < proxy/report < proxy/main.c)
# make deps       install the missing Debian packages (or print the apt-get line)
# make bench      moat against smtp-source -> smtp-sink, a byte-copying floor and Haraka; with STARTTLS too;
#                 then moat report's MB/s (tests/bench/README.md; BENCH_QUICK=1: a smoke test, BENCH_CASES=...)
# make bench-report  moat report's MB/s alone (a generated log of REPORT_BENCH_MB, default 512)
# make soak       100,000 messages under LeakSanitizer, then RSS with the plain build (SOAK_MESSAGES=N)
# make faults     5000 transactions under random faults, nothing-lost invariant (FAULT_TRANSACTIONS=N)
# make image      the container image moat:VERSION (buildah, offline, as root): from scratch, moat built
#                 with PREFIX=/usr in build/image, its libraries, /etc/moat; no shell (README.md, Container image)
# make install    build/moat, the man pages, rules/*.rules, the example config, the systemd unit,
#                 its sysusers.d file and the logrotate snippet (see below)
# make uninstall  remove what make install put there, but a moat.conf or logrotate snippet that was changed
#
# Variables, on the command line or from the environment:
#   CPPFLAGS CFLAGS LDFLAGS LDLIBS  come after moat's own flags, so they win (an -O level,
#                   dpkg-buildflags' hardening); moat's own: -std=c17 -D_GNU_SOURCE -iquote .
#                   -O2 -g and the warnings (-Wall -Wextra -Wshadow -Wmissing-prototypes ...)
#   WERROR=1        warnings are errors (CI sets it)
#   V=1             print whole command lines instead of "  CC  file"
#   SAN=1           AddressSanitizer + UBSan (make asan uses it with BUILD=build/asan)
#   CC AR PKG_CONFIG PYTHON (default /usr/bin/python3) BUILD (default build)
# What was built with other flags is rebuilt ($(BUILD)/flags holds the last ones).
#
# make install, into $(DESTDIR) (empty, or a package's staging root):
#   PREFIX          /usr/local
#   sbindir         $(PREFIX)/sbin                       moat (mode 755)
#   mandir          $(PREFIX)/share/man                  man8/moat.8, man5/moat.conf.5, man5/moat.rules.5
#   datadir         $(PREFIX)/share                      moat/rules/*.rules, moat/moat.conf.example
#   sysconfdir      /etc if PREFIX is /usr, else $(PREFIX)/etc
#                                                        moat/moat.conf: the example, only if there is none
#   systemdunitdir  $(PREFIX)/lib/systemd/system         moat.service (docs/systemd/, with these paths)
#   sysusersdir     $(PREFIX)/lib/sysusers.d             moat.conf: the user moat (systemd-sysusers makes it)
#   logrotatedir    $(sysconfdir)/logrotate.d            moat: only if there is none (logrotate reads
#                                                        /etc/logrotate.d: with PREFIX=/usr/local give
#                                                        logrotatedir=/etc/logrotate.d)
# $(sysconfdir)/moat/moat.conf is built into moat as the default config and the
# installed man pages name these paths, so give the same ones to make and to
# make install (a different one rebuilds): make PREFIX=/usr && make install PREFIX=/usr DESTDIR=...

BUILD   ?= build
CC      ?= cc
PYTHON  ?= /usr/bin/python3
PKG_CONFIG ?= pkg-config
INSTALL ?= install
PREFIX     ?= /usr/local
sbindir    ?= $(PREFIX)/sbin
mandir     ?= $(PREFIX)/share/man
datadir    ?= $(PREFIX)/share
sysconfdir ?= $(if $(filter /usr,$(PREFIX)),/etc,$(PREFIX)/etc)
systemdunitdir ?= $(PREFIX)/lib/systemd/system
sysusersdir    ?= $(PREFIX)/lib/sysusers.d
logrotatedir   ?= $(sysconfdir)/logrotate.d
MOAT_DATA   = $(datadir)/moat
MOAT_CONF   = $(sysconfdir)/moat/moat.conf
# pkg-config module:Debian package that ships it
PKG_MODULES := libevent:libevent-dev libevent_openssl:libevent-dev libcares:libc-ares-dev \
               libssl:libssl-dev libcrypto:libssl-dev opendkim:libopendkim-dev libidn2:libidn2-dev \
               zlib:zlib1g-dev hiredis:libhiredis-dev
PKGS    := $(foreach m,$(PKG_MODULES),$(firstword $(subst :, ,$m)))

WARNINGS := -Wall -Wextra -Wshadow -Wmissing-prototypes -Wno-unused-parameter
ifeq ($(WERROR),1)
WARNINGS += -Werror
endif
MOAT_CPPFLAGS := -D_GNU_SOURCE -iquote .
MOAT_CFLAGS   := -std=c17 $(WARNINGS) -O2 -g
MOAT_LDFLAGS  :=
SAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
ifeq ($(SAN),1)
MOAT_CFLAGS  += $(SAN_FLAGS) -O1
MOAT_LDFLAGS += $(SAN_FLAGS)
endif

# pkg-config is asked only when something is compiled or linked (make deps and
# make clean work without the -dev packages), once per make, and a module it
# cannot find stops the build with the Debian package to install.
PKG_MISSING = $(shell for m in $(PKG_MODULES); do $(PKG_CONFIG) --exists $${m%%:*} 2>/dev/null || echo $$m; done)
pkg_fail = $(error $(PKG_CONFIG) cannot find $(foreach m,$1,$(firstword $(subst :, ,$m))): \
  install $(sort $(if $(shell command -v $(PKG_CONFIG) 2>/dev/null),,pkg-config) \
  $(foreach m,$1,$(lastword $(subst :, ,$m)))) (as root, make deps installs every missing package))
pkg_config = $(if $(PKG_MISSING),$(call pkg_fail,$(PKG_MISSING)),$(shell $(PKG_CONFIG) $1 $(PKGS)))
PKG_CFLAGS = $(eval PKG_CFLAGS := $(call pkg_config,--cflags))$(PKG_CFLAGS)
PKG_LIBS   = $(eval PKG_LIBS := $(call pkg_config,--libs) -lspf2 -lopendmarc -pthread)$(PKG_LIBS)

# The user's CPPFLAGS, CFLAGS, LDFLAGS and LDLIBS last.
COMPILE = $(CC) $(MOAT_CPPFLAGS) $(PKG_CFLAGS) $(CPPFLAGS) $(MOAT_CFLAGS) $(CFLAGS)
LINK    = $(CC) $(MOAT_CFLAGS) $(CFLAGS) $(MOAT_LDFLAGS) $(LDFLAGS)

ifeq ($(V),1)
Q    :=
show := @:
else
Q    := @
show := @printf '  %-7s %s\n'
endif

# Debian 12 packages: build, tests (unit + end to end), demo and benchmark.
DEBS := build-essential pkg-config libevent-dev libc-ares-dev libspf2-dev libopendkim-dev \
        libidn2-dev libopendmarc-dev libhiredis-dev redis-server publicsuffix libssl-dev zlib1g-dev libcmocka-dev postfix swaks python3 python3-pytest python3-dnslib \
        python3-aiosmtpd python3-dkim python3-authheaders python3-nacl python3-yaml openssl opendkim-tools nsd haproxy clang \
        chromium dovecot-core libidn12 libgnutls-dane0 systemd logrotate buildah prometheus python3-kubernetes
# kubectl for docs/kubernetes/'s offline checks: Debian's, unless one is installed
# already (another package of kubectl owns /usr/bin/kubectl then)
DEBS += $(if $(shell command -v kubectl),,kubernetes-client)

# Exim for tests/e2e/test_exim_backend.py. Debian's exim4 packages cannot be installed beside
# postfix (both provide mail-transport-agent), so exim4-daemon-light is not in DEBS: `make deps`
# unpacks its .deb into EXIM_ROOT (its libraries are in DEBS), the binary not setuid, and makes
# the Debian-exim user the binary looks up at run time, as the package's postinst would. No
# system Exim is configured or started; the test runs a private daemon.
EXIM_ROOT ?= /opt/moat-e2e/exim4

SRCS_LIB := $(filter-out proxy/main.c,$(wildcard proxy/*.c)) $(wildcard proxy/lib/*.c) $(wildcard checks/*.c) \
            $(wildcard rules/*.c) $(wildcard proxy/report/*.c)
HDRS     := $(wildcard proxy/*.h proxy/lib/*.h proxy/report/*.h checks/*.h rules/*.h)
OBJS_LIB := $(SRCS_LIB:%.c=$(BUILD)/%.o) $(BUILD)/gen/rules_default.o
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)

.PHONY: all deps exim run test check unit e2e layers asan bench bench-report faults soak fuzz fuzz-build clean FORCE \
        install uninstall image
all: $(BUILD)/moat

# The compile and link lines as last used: rewritten, and so newer than
# everything built with the old ones, only when they change.
FLAGS_STAMP := $(BUILD)/flags
$(FLAGS_STAMP): FORCE
	@mkdir -p $(dir $@)
	@printf '%s\n' '$(subst ','\'',$(COMPILE) | $(LINK) | $(LDLIBS) | $(MOAT_CONF) $(MOAT_DATA))' > $@.new; \
	if cmp -s $@.new $@; then rm -f $@.new; else mv -f $@.new $@; fi

$(BUILD)/%.o: %.c $(HDRS) $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	$(show) CC $<
	$(Q)$(COMPILE) -c -o $@ $<

$(BUILD)/proxy/main.o: private MOAT_CPPFLAGS += -DDEFAULT_CONFIG='"$(MOAT_CONF)"'

# The built-in policy is rules/default.rules itself, compiled in as a C string
# (escaped: backslash, quote, and '?' against trigraphs).
GEN_DEFAULT = { echo 'const char rules_default_text[] ='; \
	sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/?/\\?/g' -e 's/^/\t"/' -e 's/$$/\\n"/' rules/default.rules; \
	echo '	"";'; } > $@

$(BUILD)/gen/rules_default.c: rules/default.rules
	@mkdir -p $(dir $@)
	$(show) GEN $@
	$(Q)$(GEN_DEFAULT)

$(BUILD)/gen/rules_default.o: $(BUILD)/gen/rules_default.c $(FLAGS_STAMP)
	$(show) CC $<
	$(Q)$(COMPILE) -c -o $@ $<

$(BUILD)/libmoat.a: $(OBJS_LIB)
	@rm -f $@
	$(show) AR $@
	$(Q)$(AR) rcs $@ $^

$(BUILD)/moat: $(BUILD)/proxy/main.o $(BUILD)/libmoat.a $(FLAGS_STAMP)
	$(show) LD $@
	$(Q)$(LINK) -o $@ $(filter-out $(FLAGS_STAMP),$^) $(PKG_LIBS) $(LDLIBS)

$(BUILD)/tests/%: tests/unit/%.c $(wildcard tests/unit/*.h) $(BUILD)/libmoat.a $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	$(show) LD $@
	$(Q)$(COMPILE) $(MOAT_LDFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libmoat.a -lcmocka $(PKG_LIBS) $(LDLIBS)

# Tools the end-to-end tests run beside moat (tests/tools: store_drive drives the store against a real Redis).
TEST_TOOLS := $(patsubst tests/tools/%.c,$(BUILD)/tests/%,$(wildcard tests/tools/*.c))
$(TEST_TOOLS): $(BUILD)/tests/%: tests/tools/%.c $(BUILD)/libmoat.a $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	$(show) LD $@
	$(Q)$(COMPILE) $(MOAT_LDFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libmoat.a $(PKG_LIBS) $(LDLIBS)

deps:
	@missing=$$(for p in $(DEBS); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -z "$$missing" ]; then echo "deps: all packages present"; \
	elif [ "$$(id -u)" = 0 ]; then \
	  echo "deps: installing $$missing"; \
	  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	else echo "deps: run as root: apt-get install -y $$missing"; exit 1; fi
	@$(MAKE) --no-print-directory exim

exim:
	@if [ -x $(EXIM_ROOT)/usr/sbin/exim4 ] && getent passwd Debian-exim >/dev/null; then echo "exim: $(EXIM_ROOT) present"; \
	elif [ "$$(id -u)" != 0 ]; then echo "exim: not root: exim4-daemon-light not unpacked (test_exim_backend.py skips)"; \
	else set -e; d=$$(mktemp -d); chown _apt $$d 2>/dev/null || true; \
	  (cd $$d && { apt-get download -qq exim4-daemon-light 2>/dev/null || \
	    { apt-get update -qq && apt-get download -qq exim4-daemon-light; }; }); \
	  mkdir -p $(EXIM_ROOT); dpkg-deb -x $$d/exim4-daemon-light_*.deb $(EXIM_ROOT); rm -rf $$d; \
	  chmod u-s $(EXIM_ROOT)/usr/sbin/exim4; \
	  getent passwd Debian-exim >/dev/null || useradd --system --user-group --no-create-home \
	    --home-dir /var/spool/exim4 --shell /usr/sbin/nologin Debian-exim; \
	  echo "exim: $$($(EXIM_ROOT)/usr/sbin/exim4 -C /dev/null -bV 2>/dev/null | head -1) in $(EXIM_ROOT)"; fi

unit: $(UNIT_BINS) $(TEST_TOOLS)
	@fail=0; for t in $(UNIT_BINS); do echo "== $$t"; $$t || fail=1; done; exit $$fail

e2e: $(BUILD)/moat $(TEST_TOOLS)
	MOAT_BIN=$(abspath $(BUILD)/moat) $(PYTHON) -m pytest -q -p no:cacheprovider tests/e2e

# The include graph between folders: no upward include, no cycle (docs/design.md).
layers:
	@$(PYTHON) tests/layers.py

check:
	$(MAKE) layers all unit
	$(MAKE) e2e

test: deps
	$(MAKE) check

asan: deps
	$(MAKE) SAN=1 BUILD=build/asan all unit
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 $(MAKE) SAN=1 BUILD=build/asan e2e

run: deps all
	@bash tests/demo/run.sh $(abspath $(BUILD)/moat)

FAULT_TRANSACTIONS ?= 5000
faults: deps all
	FAULT_TRANSACTIONS=$(FAULT_TRANSACTIONS) MOAT_BIN=$(abspath $(BUILD)/moat) $(PYTHON) -m pytest -q -s \
	  -p no:cacheprovider tests/e2e/test_faults.py

# 100,000 DKIM-signed messages through the ASan/LSan build, then the plain one for RSS.
SOAK_MESSAGES ?= 100000
soak: deps
	$(MAKE) SAN=1 BUILD=build/asan all
	ASAN_OPTIONS=detect_leaks=1 $(PYTHON) tests/bench/bench.py --moat $(abspath build/asan/moat) \
	  --soak $(SOAK_MESSAGES) --out $(abspath build/bench/soak-asan.json)
	$(MAKE) all
	$(PYTHON) tests/bench/bench.py --moat $(abspath $(BUILD)/moat) --soak $(SOAK_MESSAGES) \
	  --out $(abspath build/bench/soak.json)

$(BUILD)/bench/floor: tests/bench/floor.c tests/bench/floorlisten.h $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	$(show) CC $<
	$(Q)$(CC) $(CPPFLAGS) -std=c17 $(WARNINGS) -O2 $(CFLAGS) $(LDFLAGS) -o $@ $<

# The bench's TLS tools: a load generator (plain, STARTTLS, implicit TLS) and the
# floor relay with STARTTLS; OpenSSL only.
$(BUILD)/bench/tlsgen $(BUILD)/bench/floortls: $(BUILD)/bench/%: tests/bench/%.c tests/bench/floorlisten.h $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	$(show) CC $<
	$(Q)$(CC) $(CPPFLAGS) -std=c17 $(WARNINGS) -O2 $(shell $(PKG_CONFIG) --cflags openssl) $(CFLAGS) $(LDFLAGS) \
	  -o $@ $< $(shell $(PKG_CONFIG) --libs openssl)

# Haraka (npm) goes into build/bench/haraka; BENCH_HARAKA=0 leaves it out.
BENCH_HARAKA ?= 1
bench: deps all $(BUILD)/bench/floor $(BUILD)/bench/floortls $(BUILD)/bench/tlsgen
	@if [ "$(BENCH_HARAKA)" = 1 ]; then bash tests/bench/haraka.sh install $(abspath build/bench/haraka); fi
	$(PYTHON) tests/bench/bench.py --moat $(abspath $(BUILD)/moat) --floor $(abspath $(BUILD)/bench/floor) \
	  --floortls $(abspath $(BUILD)/bench/floortls) --tlsgen $(abspath $(BUILD)/bench/tlsgen) \
	  $(if $(filter 1,$(BENCH_HARAKA)),--haraka $(abspath build/bench/haraka)) \
	  $(if $(BENCH_MOAT_BASE),--moat-base $(abspath $(BENCH_MOAT_BASE)))
	$(MAKE) --no-print-directory bench-report

# moat report over a generated log in a temp dir: MB/s plain and gzip (build/bench/report.json).
bench-report: all
	$(PYTHON) tests/bench/report_bench.py --moat $(abspath $(BUILD)/moat) --out $(abspath build/bench/report.json)

# libFuzzer harnesses (tests/fuzz/fuzz_NAME.c, seeds in tests/fuzz/corpus/NAME/):
# every source compiled once with clang and the sanitizers; each harness runs
# FUZZ_SECONDS on a scratch copy of its seeds, so the committed corpus stays small.
FUZZ_SECONDS ?= 60
FUZZ_DIR   := build/fuzz
FUZZ_FLAGS := -g -O1 -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all \
              -std=c17 -D_GNU_SOURCE -iquote .
FUZZ_OBJS  := $(SRCS_LIB:%.c=$(FUZZ_DIR)/obj/%.o) $(FUZZ_DIR)/obj/gen/rules_default.o
FUZZ_BINS  := $(patsubst tests/fuzz/%.c,$(FUZZ_DIR)/%,$(wildcard tests/fuzz/fuzz_*.c))

$(FUZZ_DIR)/obj/%.o: %.c $(HDRS)
	@mkdir -p $(dir $@)
	$(show) CLANG $<
	$(Q)clang $(FUZZ_FLAGS) $(PKG_CFLAGS) -c -o $@ $<

$(FUZZ_DIR)/obj/gen/rules_default.c: rules/default.rules
	@mkdir -p $(dir $@)
	$(Q)$(GEN_DEFAULT)

$(FUZZ_DIR)/obj/gen/rules_default.o: $(FUZZ_DIR)/obj/gen/rules_default.c
	$(Q)clang $(FUZZ_FLAGS) $(PKG_CFLAGS) -c -o $@ $<

$(FUZZ_DIR)/libmoat.a: $(FUZZ_OBJS)
	@rm -f $@
	$(Q)$(AR) rcs $@ $^

$(FUZZ_DIR)/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_DIR)/libmoat.a
	$(show) FUZZ $@
	$(Q)clang $(FUZZ_FLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_DIR)/libmoat.a $(PKG_LIBS)

fuzz-build: $(FUZZ_BINS)

fuzz: deps
	@$(MAKE) --no-print-directory fuzz-build
	@fail=0; for b in $(FUZZ_BINS); do n=$${b##*/fuzz_}; \
	  rm -rf $(FUZZ_DIR)/work/$$n; mkdir -p $(FUZZ_DIR)/work/$$n; \
	  cp tests/fuzz/corpus/$$n/* $(FUZZ_DIR)/work/$$n/ 2>/dev/null || true; \
	  echo "== fuzz $$n ($(FUZZ_SECONDS) s)"; \
	  ( cd $(FUZZ_DIR) && ./fuzz_$$n -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	      -artifact_prefix=$$n- work/$$n ) > $(FUZZ_DIR)/$$n.log 2>&1 || { fail=1; tail -40 $(FUZZ_DIR)/$$n.log; }; \
	  grep -E "stat::number_of_executed_units|cov:" $(FUZZ_DIR)/$$n.log | tail -2; \
	done; exit $$fail

clean:
	rm -rf build

# The man pages in docs/ name the paths of a PREFIX=/usr install; the
# installed ones name those of this install.
$(BUILD)/man/%: docs/% $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	$(show) GEN $@
	$(Q)sed -e 's|/etc/moat/|$(sysconfdir)/moat/|g' -e 's|/usr/share/moat/|$(MOAT_DATA)/|g' $< > $@

RULE_FILES := $(notdir $(wildcard rules/*.rules))

# The image's moat is built with PREFIX=/usr (its default config
# /etc/moat/moat.conf) in a build dir of its own. BUILDAH may carry options
# (--root DIR --runroot DIR: a store of its own).
IMAGE_BUILD ?= build/image
IMAGE_NAME  ?= moat
BUILDAH     ?= buildah
MOAT_VERSION = $(shell sed -n 's/^\#define MOAT_VERSION "\(.*\)"/\1/p' proxy/version.h)
image:
	@$(MAKE) --no-print-directory BUILD=$(IMAGE_BUILD) PREFIX=/usr all
	BUILDAH="$(BUILDAH)" sh docs/image/build.sh $(IMAGE_BUILD)/moat $(IMAGE_NAME):$(MOAT_VERSION)

# The unit names the paths of a PREFIX=/usr install too.
$(BUILD)/systemd/moat.service: docs/systemd/moat.service $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	$(show) GEN $@
	$(Q)sed -e 's|/usr/sbin/moat|$(sbindir)/moat|g' -e 's|/etc/moat/|$(sysconfdir)/moat/|g' $< > $@

install: $(BUILD)/moat $(BUILD)/man/moat.8 $(BUILD)/man/moat.conf.5 $(BUILD)/man/moat.rules.5 \
         $(BUILD)/systemd/moat.service
	$(INSTALL) -D -m 755 $(BUILD)/moat $(DESTDIR)$(sbindir)/moat
	$(INSTALL) -D -m 644 $(BUILD)/man/moat.8 $(DESTDIR)$(mandir)/man8/moat.8
	$(INSTALL) -D -m 644 -t $(DESTDIR)$(mandir)/man5 $(BUILD)/man/moat.conf.5 $(BUILD)/man/moat.rules.5
	$(INSTALL) -D -m 644 -t $(DESTDIR)$(MOAT_DATA)/rules $(RULE_FILES:%=rules/%)
	$(INSTALL) -D -m 644 docs/moat.conf.example $(DESTDIR)$(MOAT_DATA)/moat.conf.example
	$(INSTALL) -D -m 644 $(BUILD)/systemd/moat.service $(DESTDIR)$(systemdunitdir)/moat.service
	$(INSTALL) -D -m 644 docs/systemd/moat.sysusers $(DESTDIR)$(sysusersdir)/moat.conf
	@for f in docs/moat.conf.example:$(MOAT_CONF) docs/logrotate/moat:$(logrotatedir)/moat; do \
	  src=$${f%%:*}; dst=$(DESTDIR)$${f#*:}; \
	  if [ -e $$dst ]; then echo "install: $$dst exists: left as it is"; \
	  else echo "$(INSTALL) -D -m 644 $$src $$dst"; $(INSTALL) -D -m 644 $$src $$dst; fi; done

uninstall:
	rm -f $(DESTDIR)$(sbindir)/moat $(DESTDIR)$(mandir)/man8/moat.8 \
	  $(DESTDIR)$(mandir)/man5/moat.conf.5 $(DESTDIR)$(mandir)/man5/moat.rules.5 \
	  $(RULE_FILES:%=$(DESTDIR)$(MOAT_DATA)/rules/%) $(DESTDIR)$(MOAT_DATA)/moat.conf.example \
	  $(DESTDIR)$(systemdunitdir)/moat.service $(DESTDIR)$(sysusersdir)/moat.conf
	@for f in docs/moat.conf.example:$(MOAT_CONF) docs/logrotate/moat:$(logrotatedir)/moat; do \
	  src=$${f%%:*}; dst=$(DESTDIR)$${f#*:}; \
	  if cmp -s $$src $$dst; then echo "rm -f $$dst"; rm -f $$dst; \
	  elif [ -e $$dst ]; then echo "uninstall: $$dst differs from $$src: left as it is"; fi; done
	@rmdir $(DESTDIR)$(MOAT_DATA)/rules $(DESTDIR)$(MOAT_DATA) $(DESTDIR)$(sysconfdir)/moat $(DESTDIR)$(logrotatedir) \
	  2>/dev/null || true
