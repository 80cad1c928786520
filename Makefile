# Thin wrapper around CMake. `make run` and `make test` install what is missing first.
PKGS := build-essential cmake pkg-config libuv1-dev libldns-dev libyaml-dev libcmocka-dev \
        libsqlite3-dev libcurl4-openssl-dev ieee-data python3-pytest python3-dnspython python3-yaml
BENCH_PKGS := dnsperf dnsdist
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
CONFIG ?= conf/veto.yaml
BUILD ?= build
ASAN_BUILD ?= build/asan
CMAKE_FLAGS ?=

SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)

.PHONY: all deps bench-deps build build-asan run test test-fast test-asan bench clean format \
        container-test

all: build

deps:
	@missing=""; for p in $(PKGS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi

bench-deps:
	@$(MAKE) --no-print-directory deps PKGS="$(BENCH_PKGS)"

build: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVETO_WERROR=ON $(CMAKE_FLAGS) >/dev/null
	cmake --build $(BUILD) -j $(JOBS)

build-asan: deps
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DENABLE_ASAN=ON -DENABLE_UBSAN=ON \
	  -DVETO_WERROR=ON $(CMAKE_FLAGS) >/dev/null
	cmake --build $(ASAN_BUILD) -j $(JOBS)

run: build
	./$(BUILD)/veto serve -c $(CONFIG)

# Every test, twice: a normal build and an ASan+UBSan build. Warnings are errors.
test: build build-asan
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest --output-on-failure -j $(JOBS)

# The container image, built with podman and tested black-box (tests/container/run.sh); says so
# and succeeds when this machine cannot run containers.
container-test: deps
	tests/container/run.sh

test-fast: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS) -LE system

bench: build bench-deps
	tests/bench/run.sh $(BUILD)/veto

format:
	clang-format -i resolver/*/*.[ch] policy/*.[ch] policy/base/*.[ch] tests/unit/*.[ch] tests/fuzz/*.c tests/bench/*.c

clean:
	rm -rf $(BUILD)
