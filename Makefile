# The demo's Makefile, grown up. `make run` adds a busybox root and runs a command in a container
# started from its CID; the original variables still work:
#   make run ROOT_FILESYSTEM_ID=Qm... COMMAND='/bin/busybox sh'
#   make run ROOT_FILESYSTEM_LOCAL_PATH=/path/to/rootfs
BUILD ?= build
CIDRUN := $(BUILD)/cidrun
export CIDRUN_PATH ?= $(CURDIR)/demo/repo
ROOT_FILESYSTEM_LOCAL_PATH ?= $(CURDIR)/demo/rootfs
COMMAND ?= /bin/busybox echo 'hello from your container!'
JOBS ?= $(shell nproc)

PREFIX ?= /usr/local

.PHONY: all configure build cidrun test run rootfs install install-debug format tidy fuzz clean

all: build

configure:
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null

# Everything: the binary, every test program and the benchmarks' helper.
build: configure
	cmake --build $(BUILD) -j $(JOBS)

# The binary alone, what `run` and `install` need: 178 of the 262 build steps, none of the tests'
# compiles and links.
cidrun: configure
	cmake --build $(BUILD) -j $(JOBS) --target cidrun

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS) --timeout 900

# The libFuzzer targets (tests/fuzz) in a clang ASan+UBSan build of their own, each run for
# FUZZ_SECONDS on its committed corpus; fails on any finding (scripts/fuzz.sh). `make test` runs
# them too, as the CTest tests fuzz.* (20 s each), from the same build directory.
FUZZ_BUILD ?= $(BUILD)/fuzz-build
FUZZ_SECONDS ?= 20
fuzz:
	scripts/fuzz.sh -B -b $(FUZZ_BUILD) -t $(FUZZ_SECONDS) -j $(JOBS)

$(ROOT_FILESYSTEM_LOCAL_PATH)/bin/busybox:
	scripts/make-busybox-root.sh $(ROOT_FILESYSTEM_LOCAL_PATH)

rootfs: $(ROOT_FILESYSTEM_LOCAL_PATH)/bin/busybox

run: cidrun
ifndef ROOT_FILESYSTEM_ID
	@$(MAKE) --no-print-directory rootfs
	@cid=$$($(CIDRUN) add -r -Q --preserve-mode --preserve-mtime $(ROOT_FILESYSTEM_LOCAL_PATH)) && \
	  echo "root filesystem: $$cid" && \
	  $(CIDRUN) run --rm $$cid -- $(COMMAND)
else
	$(CIDRUN) run --rm $(ROOT_FILESYSTEM_ID) -- $(COMMAND)
endif

# $(DESTDIR)$(PREFIX)/bin/cidrun without its debug information (a tenth of the build's file);
# install-debug adds that information under $(PREFIX)/lib/debug/.build-id/, where gdb finds it
# (by itself when PREFIX is /usr; else `gdb -iex 'set debug-file-directory PREFIX/lib/debug'`).
install: cidrun
	DESTDIR=$(DESTDIR) cmake --install $(BUILD) --prefix $(PREFIX)

install-debug: install
	DESTDIR=$(DESTDIR) cmake --install $(BUILD) --prefix $(PREFIX) --component debug

format:
	clang-format -i $$(git ls-files '*.cpp' '*.h')

# clang-tidy over every compiled .cpp, or only those under TIDY_PATHS (files or directories);
# exits non-zero on any finding.
TIDY_PATHS ?=
tidy: build
	scripts/clang-tidy.sh -p $(BUILD) -j $(JOBS) $(TIDY_PATHS)

clean:
	rm -rf $(BUILD)
