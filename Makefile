# sharedcalls - singleflight for C. See README.md.
#
#   make            the libraries, demos and tests, into build/
#   make check      every test suite and check
#   make demo       the demos a newcomer should see first
#   make race       every suite and demo under Helgrind, DRD, memcheck,
#                   ThreadSanitizer and AddressSanitizer (race-<tool>: one)
#   make race-zoo   the bug zoo: each classic mistake, and who catches it
#   make bench      what a call costs beside the machine's limits
#                   (QUICK=1: a short run, for CI)
#   make install    PREFIX (/usr/local) and DESTDIR are honoured
#   make lint       clang-format, cppcheck, clang-tidy and shellcheck
#   make clean
#
# Variants build into folders of their own: B=build/tsan SAN=thread builds
# with a sanitizer, MUTANT=<name> with one of src/zoo.h's mistakes.

# The version is the header's; the soname changes with the major number.
version_part = $(shell sed -n 's/^\#define SC_VERSION_$(1) \([0-9]*\)$$/\1/p' src/sharedcalls.h)
VERSION   := $(call version_part,MAJOR).$(call version_part,MINOR).$(call version_part,PATCH)
SOVERSION := $(call version_part,MAJOR)
PREFIX    ?= /usr/local
LIBDIR    ?= $(PREFIX)/lib
INCDIR    ?= $(PREFIX)/include
MANDIR    ?= $(PREFIX)/share/man

CFLAGS    ?= -O2 -g
WERROR    ?= -Werror
SAN       ?=
MUTANT    ?=
SANFLAGS  := $(if $(SAN),-fsanitize=$(SAN) -fno-omit-frame-pointer \
             -fno-sanitize-recover=all)
STD       := -std=c11 -Wall -Wextra -Wpedantic -Wundef $(WERROR) -pthread \
             $(SANFLAGS)
CPPFLAGS  += -Isrc $(if $(MUTANT),-DSC_MUTANT=$(MUTANT)) $(if $(DEBUG),-DSC_DEBUG)
# The library's own code is held to more: no shadowed names, no silent
# narrowing, a prototype for everything. Only the API is exported.
LIB_FLAGS := -Wshadow -Wconversion -Wmissing-prototypes -Wstrict-prototypes \
             -fvisibility=hidden -fexceptions
DEPFLAGS  := -MMD -MP
B         ?= build

# Flags are not tracked as dependencies: a variant built into build/ would
# leave objects a later plain build takes for its own.
ifneq ($(SAN)$(MUTANT)$(DEBUG),)
ifeq ($(B),build)
$(error SAN=, MUTANT= and DEBUG= builds need a folder of their own: add B=build/NAME)
endif
endif

LIB_SRC   := $(wildcard src/*.c)
LIB_OBJ   := $(LIB_SRC:src/%.c=$(B)/obj/%.o)
LIB_PIC   := $(LIB_SRC:src/%.c=$(B)/pic/%.o)
LIB_A     := $(B)/libsharedcalls.a
LIB_SO    := $(B)/libsharedcalls.so.$(VERSION)

# libsharedcalls-redis: the fleet level, on hiredis; built on the core
# library's public API, which alone links nothing but libc.
RLIB_SRC  := $(wildcard src/redis/*.c)
RLIB_OBJ  := $(RLIB_SRC:src/redis/%.c=$(B)/obj/redis/%.o)
RLIB_PIC  := $(RLIB_SRC:src/redis/%.c=$(B)/pic/redis/%.o)
RLIB_A    := $(B)/libsharedcalls-redis.a
RLIB_SO   := $(B)/libsharedcalls-redis.so.$(VERSION)

DEMOS     := $(B)/demos/once $(B)/demos/timeline $(B)/demos/stampede
TIMELINE  := $(wildcard demos/timeline/*.c)
TL_OBJ    := $(TIMELINE:demos/timeline/%.c=$(B)/obj/timeline/%.o)
TL_CORE   := $(filter-out %/main.o %/ui.o,$(TL_OBJ)) # what tests can link
STAMPEDE  := $(wildcard demos/stampede/*.c)
ST_OBJ    := $(STAMPEDE:demos/stampede/%.c=$(B)/obj/stampede/%.o)
ST_CORE   := $(filter-out %/main.o,$(ST_OBJ))
SUITES    := test_gozero test_semantics test_memory test_stress test_flight \
             test_hooks test_handoff test_async test_shards \
             test_cancel test_trace test_timeline test_stampede test_redis
TESTS     := $(SUITES:%=$(B)/tests/%)
TESTUTIL  := $(B)/obj/testutil.o

# Link-time seams (ld --wrap) let the tests count followers that are parked
# in the kit's condition wait and fail the n-th resource the kit acquires,
# with no test code in the library.
WRAP_WAIT := -Wl,--wrap=pthread_cond_wait,--wrap=pthread_cond_broadcast \
             -Wl,--wrap=syscall
WRAP_MEM  := -Wl,--wrap=malloc,--wrap=calloc,--wrap=free \
             -Wl,--wrap=pthread_mutex_init,--wrap=pthread_cond_init
WRAPS     := $(WRAP_WAIT)

all: $(LIB_A) $(B)/libsharedcalls.so $(RLIB_A) $(B)/libsharedcalls-redis.so \
     $(DEMOS) $(TESTS)
programs: $(DEMOS) $(TESTS)
# tests/window.c measures, it does not check (book chapter 1, exercise 4).
all: $(B)/tests/window
list-programs: # for scripts: every program, relative to the build folder
	@echo $(TESTS:$(B)/%=%) $(DEMOS:$(B)/%=%)
list-suites: # for scripts: every test suite, by name (SUITES is the list)
	@echo $(SUITES)
.PHONY: list-suites

# scripts/deps.sh runs once per make invocation: every step that needs a
# package waits for the phony target deps, which asks for every group the
# goals need. The scripts that run make again get SC_NO_DEPS=1: this run
# has installed what they need.
CLANG       := $(filter clang%,$(notdir $(CC)))
DEPS_GROUPS := $(if $(filter lint,$(MAKECMDGOALS)),lint) \
               $(if $(filter race race-%,$(MAKECMDGOALS)),race) \
               $(if $(filter model,$(MAKECMDGOALS)),model) \
               $(if $(filter book,$(MAKECMDGOALS)),book) $(if $(CLANG),clang)
deps:
	@scripts/deps.sh $(strip $(DEPS_GROUPS))

# -fexceptions: glibc's pthread_cleanup_push then registers its handler
# with the unwinder (the cleanup attribute), at no cost while nothing is
# cancelled, instead of a setjmp on every call.
$(B)/obj/%.o: src/%.c Makefile | deps
	@mkdir -p $(@D)
	$(CC) $(STD) $(LIB_FLAGS) $(CPPFLAGS) $(DEPFLAGS) $(CFLAGS) -c $< -o $@

$(B)/pic/%.o: src/%.c Makefile | deps
	@mkdir -p $(@D)
	$(CC) $(STD) $(LIB_FLAGS) $(CPPFLAGS) $(DEPFLAGS) $(CFLAGS) -fPIC -c $< -o $@

$(LIB_A): $(LIB_OBJ) # anew, so a source file removed leaves no object
	rm -f $@
	$(AR) rcs $@ $^

$(LIB_SO): $(LIB_PIC)
	$(CC) $(STD) $(CFLAGS) $(LDFLAGS) -shared \
	    -Wl,-soname,libsharedcalls.so.$(SOVERSION) $^ -o $@

$(B)/libsharedcalls.so: $(LIB_SO)
	ln -sf libsharedcalls.so.$(VERSION) $(B)/libsharedcalls.so.$(SOVERSION)
	ln -sf libsharedcalls.so.$(VERSION) $@

$(B)/obj/redis/%.o: src/redis/%.c Makefile | deps
	@mkdir -p $(@D)
	$(CC) $(STD) $(LIB_FLAGS) $(CPPFLAGS) -Isrc/redis $(DEPFLAGS) $(CFLAGS) -c $< -o $@

$(B)/pic/redis/%.o: src/redis/%.c Makefile | deps
	@mkdir -p $(@D)
	$(CC) $(STD) $(LIB_FLAGS) $(CPPFLAGS) -Isrc/redis $(DEPFLAGS) $(CFLAGS) -fPIC -c $< -o $@

$(RLIB_A): $(RLIB_OBJ)
	rm -f $@
	$(AR) rcs $@ $^

$(RLIB_SO): $(RLIB_PIC) $(B)/libsharedcalls.so
	$(CC) $(STD) $(CFLAGS) $(LDFLAGS) -shared \
	    -Wl,-soname,libsharedcalls-redis.so.$(SOVERSION) $(RLIB_PIC) \
	    -L$(B) -lsharedcalls -lhiredis -o $@

$(B)/libsharedcalls-redis.so: $(RLIB_SO)
	ln -sf libsharedcalls-redis.so.$(VERSION) $(B)/libsharedcalls-redis.so.$(SOVERSION)
	ln -sf libsharedcalls-redis.so.$(VERSION) $@

$(B)/demos/%: demos/%.c $(LIB_A) Makefile | deps
	@mkdir -p $(@D)
	$(CC) $(STD) $(CPPFLAGS) $(DEPFLAGS) $(CFLAGS) $(LDFLAGS) $< $(LIB_A) $(LDLIBS) -o $@

$(B)/obj/timeline/%.o: demos/timeline/%.c Makefile | deps
	@mkdir -p $(@D)
	$(CC) $(STD) $(CPPFLAGS) $(DEPFLAGS) $(CFLAGS) -c $< -o $@

$(B)/demos/timeline: $(TL_OBJ) $(LIB_A)
	@mkdir -p $(@D)
	$(CC) $(STD) $(CFLAGS) $(LDFLAGS) $^ -lncurses $(LDLIBS) -o $@

# clang, unlike gcc, warns of the fields that the scenario table's actor
# rows leave out on purpose (they start at zero).
$(B)/obj/timeline/scenarios.o: STD += $(if $(CLANG),-Wno-missing-field-initializers)

$(B)/obj/stampede/%.o: demos/stampede/%.c Makefile | deps
	@mkdir -p $(@D)
	$(CC) $(STD) $(CPPFLAGS) -Isrc/redis $(DEPFLAGS) $(CFLAGS) -c $< -o $@

# The redis mode's fleet: libsharedcalls-redis before the core it uses.
ST_LIBS := -lhiredis -lsqlite3 -lm
$(B)/demos/stampede: $(ST_OBJ) $(RLIB_A) $(LIB_A)
	@mkdir -p $(@D)
	$(CC) $(STD) $(CFLAGS) $(LDFLAGS) $^ $(ST_LIBS) $(LDLIBS) -o $@

$(TESTUTIL): tests/testutil.c Makefile | deps
	@mkdir -p $(@D)
	$(CC) $(STD) $(CPPFLAGS) $(DEPFLAGS) $(CFLAGS) -c $< -o $@

$(B)/tests/test_memory: WRAPS += $(WRAP_MEM)
$(B)/tests/test_timeline: EXTRA_OBJ := $(TL_CORE)
$(B)/tests/test_timeline: CPPFLAGS += -Idemos/timeline
$(B)/tests/test_timeline: $(TL_CORE)
REDIS_SERVER := $(B)/obj/redis_server.o
$(REDIS_SERVER): tests/redis_server.c Makefile | deps
	@mkdir -p $(@D)
	$(CC) $(STD) $(CPPFLAGS) $(DEPFLAGS) $(CFLAGS) -c $< -o $@
$(B)/tests/test_redis: EXTRA_OBJ := $(REDIS_SERVER) $(RLIB_A)
$(B)/tests/test_redis: CPPFLAGS += -Isrc/redis
$(B)/tests/test_redis: LDLIBS += -lhiredis
$(B)/tests/test_redis: $(REDIS_SERVER) $(RLIB_A)
$(B)/tests/test_stampede: EXTRA_OBJ := $(ST_CORE) $(RLIB_A)
$(B)/tests/test_stampede: CPPFLAGS += -Idemos/stampede
$(B)/tests/test_stampede: LDLIBS += $(ST_LIBS)
$(B)/tests/test_stampede: $(ST_CORE) $(RLIB_A)
$(B)/tests/%: tests/%.c $(TESTUTIL) $(LIB_A) Makefile
	@mkdir -p $(@D)
	$(CC) $(STD) $(CPPFLAGS) $(DEPFLAGS) $(CFLAGS) $(LDFLAGS) $< $(EXTRA_OBJ) $(TESTUTIL) \
	    $(LIB_A) $(WRAPS) -lcunit $(LDLIBS) -o $@

check: all | deps
	@SC_NO_DEPS=1 MAKE="$(MAKE)" scripts/run-checks $(B)

# On a terminal the timeline is a player (q quits); elsewhere it prints.
# The second stampede is a fleet of 4 processes, each with its own cache,
# in the four modes (it starts and stops a private redis-server).
demo: $(DEMOS)
	$(B)/demos/once
	$(B)/demos/stampede
	$(B)/demos/stampede --procs 4 --seconds 2 --mode all
	$(B)/demos/timeline

RACE_TOOLS := helgrind drd memcheck tsan asan
race: all | deps
	@SC_NO_DEPS=1 MAKE="$(MAKE)" scripts/race.sh $(RACE_TOOLS)
$(RACE_TOOLS:%=race-%): all | deps
	@SC_NO_DEPS=1 MAKE="$(MAKE)" scripts/race.sh $(@:race-%=%)
race-zoo: | deps
	@SC_NO_DEPS=1 MAKE="$(MAKE)" scripts/zoo.sh

# The book as one HTML file, its figures made again (FULL=1: the slow ones too).
book: all | deps
	@scripts/book.sh $(B) $(if $(FULL),full)

# Spin over every interleaving of the port's model, and of each mistake.
model: | deps
	@scripts/model.sh

MAN3 := $(wildcard man/man3/*.3)
INSTALLED := $(foreach l,sharedcalls sharedcalls-redis,$(INCDIR)/$(l).h \
               $(LIBDIR)/lib$(l).a $(LIBDIR)/lib$(l).so.$(VERSION) \
               $(LIBDIR)/lib$(l).so.$(SOVERSION) $(LIBDIR)/lib$(l).so \
               $(LIBDIR)/pkgconfig/$(l).pc) \
             $(MAN3:man/man3/%=$(MANDIR)/man3/%)
PC_SUBST := -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' \
            -e 's|@INCDIR@|$(INCDIR)|' -e 's|@VERSION@|$(VERSION)|'

install: $(LIB_A) $(B)/libsharedcalls.so $(RLIB_A) $(B)/libsharedcalls-redis.so
	install -d $(DESTDIR)$(INCDIR) $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(MANDIR)/man3
	install -m 644 src/sharedcalls.h src/redis/sharedcalls-redis.h $(DESTDIR)$(INCDIR)/
	install -m 644 $(LIB_A) $(RLIB_A) $(DESTDIR)$(LIBDIR)/
	install -m 755 $(LIB_SO) $(RLIB_SO) $(DESTDIR)$(LIBDIR)/
	for l in sharedcalls sharedcalls-redis; do \
	    ln -sf lib$$l.so.$(VERSION) $(DESTDIR)$(LIBDIR)/lib$$l.so.$(SOVERSION) && \
	    ln -sf lib$$l.so.$(VERSION) $(DESTDIR)$(LIBDIR)/lib$$l.so || exit 1; \
	done
	sed $(PC_SUBST) src/sharedcalls.pc.in >$(DESTDIR)$(LIBDIR)/pkgconfig/sharedcalls.pc
	sed $(PC_SUBST) src/redis/sharedcalls-redis.pc.in \
	    >$(DESTDIR)$(LIBDIR)/pkgconfig/sharedcalls-redis.pc
	$(if $(MAN3),install -m 644 $(MAN3) $(DESTDIR)$(MANDIR)/man3/)

# Removes what install put there, and nothing else (folders stay).
uninstall:
	rm -f $(INSTALLED:%=$(DESTDIR)%)

LINT_C := $(wildcard src/*.[ch] src/*/*.[ch] demos/*.[ch] demos/*/*.[ch] tests/*.[ch] \
            tests/*/*.[ch])
# Every shell script: those of scripts/ whose #! line runs sh, bash or dash,
# or that name their shell for shellcheck (race-lib.sh, which is sourced),
# the tests' and CI's. -x follows race-lib.sh into the scripts that source it.
LINT_SH = $(shell grep -lsE '^.!/.*[/ ](ba|da)?sh( |$$)|^. shellcheck shell=' scripts/* tests/*.sh .ci/run)
lint: | deps
	clang-format --dry-run -Werror $(LINT_C)
	shellcheck -x $(LINT_SH)
	cppcheck --quiet --error-exitcode=1 --enable=warning,style,performance,portability \
	    --std=c11 --inline-suppr -Isrc -Isrc/redis -Idemos/timeline -Idemos/stampede \
	    $(LINT_C)
	clang-tidy --quiet $(filter %.c,$(LINT_C)) -- $(STD) $(CPPFLAGS) -Isrc/redis -Idemos/timeline \
	    -Idemos/stampede \
	    -D_GNU_SOURCE

BENCH := $(B)/bench/bench
BENCH_SRC := tests/bench/bench.c tests/bench/limits.c tests/bench/figure.c
$(BENCH): $(BENCH_SRC) tests/bench/bench.h $(LIB_A) Makefile | deps
	@mkdir -p $(@D)
	$(CC) $(STD) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) $(BENCH_SRC) $(LIB_A) \
	    -Wl,--wrap=malloc,--wrap=calloc,--wrap=free $(LDLIBS) -o $@

# The fleet's section, a program of its own: only it needs Redis. ld's
# --wrap puts tests/bench/trips.c between the library and hiredis, to count
# each round trip where it is sent.
FLEET_BENCH := $(B)/bench/fleet
FLEET_SRC := tests/bench/fleet.c tests/bench/report.c tests/bench/flights.c \
             tests/bench/trips.c tests/bench/figure.c
FLEET_WRAP := -Wl,--wrap=redisCommandArgv,--wrap=redisConnectUnixWithTimeout \
              -Wl,--wrap=redisGetReplyFromReader
$(FLEET_BENCH): $(FLEET_SRC) tests/bench/bench.h tests/bench/fleet.h $(REDIS_SERVER) \
                $(RLIB_A) $(LIB_A) Makefile | deps
	@mkdir -p $(@D)
	$(CC) $(STD) $(CPPFLAGS) -Isrc/redis $(CFLAGS) $(LDFLAGS) $(FLEET_SRC) $(REDIS_SERVER) \
	    $(RLIB_A) $(LIB_A) $(FLEET_WRAP) -lhiredis -lm $(LDLIBS) -o $@

bench: $(BENCH) $(FLEET_BENCH)
	@scripts/bench.sh $(B) $(if $(QUICK),quick)

clean:
	rm -rf $(B)

.PHONY: all programs list-programs deps check demo race $(RACE_TOOLS:%=race-%) race-zoo bench \
        model book install uninstall lint clean
.DELETE_ON_ERROR:
-include $(wildcard $(B)/obj/*.d $(B)/obj/*/*.d $(B)/pic/*.d $(B)/pic/*/*.d $(B)/demos/*.d \
           $(B)/tests/*.d)
