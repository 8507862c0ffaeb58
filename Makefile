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

.PHONY: all build test run rootfs format tidy fuzz clean

all: build

build:
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build $(BUILD) -j $(JOBS)

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

run: build
ifndef ROOT_FILESYSTEM_ID
	@$(MAKE) --no-print-directory rootfs
	@cid=$$($(CIDRUN) add -r -Q --preserve-mode --preserve-mtime $(ROOT_FILESYSTEM_LOCAL_PATH)) && \
	  echo "root filesystem: $$cid" && \
	  $(CIDRUN) run --rm $$cid -- $(COMMAND)
else
	$(CIDRUN) run --rm $(ROOT_FILESYSTEM_ID) -- $(COMMAND)
endif

format:
	clang-format -i $$(git ls-files '*.cpp' '*.h')

# clang-tidy over every compiled .cpp, or only those under TIDY_PATHS (files or directories);
# exits non-zero on any finding.
TIDY_PATHS ?=
tidy: build
	scripts/clang-tidy.sh -p $(BUILD) -j $(JOBS) $(TIDY_PATHS)

clean:
	rm -rf $(BUILD)
