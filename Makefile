# Thin wrapper around CMake. `make run` and `make test` install what is missing first.
PKGS := build-essential cmake pkg-config libuv1-dev libldns-dev libyaml-dev libcmocka-dev \
        libsqlite3-dev libcurl4-openssl-dev libsystemd-dev ieee-data python3-pytest \
        python3-dnspython python3-yaml logrotate libmicrohttpd-dev libcrypt-dev \
        python3-prometheus-client chromium chromium-driver python3-selenium \
        libpq-dev postgresql libssl-dev openssl dnsdist
BENCH_PKGS := dnsperf sqlite3 unbound
DEB_PKGS := dpkg-dev file   # dpkg-shlibdeps, and the file(1) CPack runs before it
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
CONFIG ?= conf/veto.yaml
BUILD ?= build
ASAN_BUILD ?= build/asan
DEB_BUILD ?= build/deb
CMAKE_FLAGS ?=

SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)
# `make run` as root stays root (a development run in the source tree, not a deployment)
RUN_USER := $(shell [ "$$(id -u)" -eq 0 ] && echo --user root)

.PHONY: all deps bench-deps build build-asan run test test-fast test-asan bench clean format \
        container-test deb deb-test

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

# unbound is a peer in tests/bench/run.sh, started there with its own configuration. Installing
# the package starts and enables a system unbound (port 53) where systemd runs: when this target
# installed it, that daemon is stopped (systemd stops it by its main PID) and disabled, so none is
# left running and none takes port 53 at the next boot. An unbound installed before is left alone.
bench-deps:
	@had_unbound=$$(dpkg-query -W -f='$${Status}' unbound 2>/dev/null | grep -c "ok installed"); \
	$(MAKE) --no-print-directory deps PKGS="$(BENCH_PKGS)" || exit 1; \
	if [ "$$had_unbound" = 0 ]; then \
	  if [ -d /run/systemd/system ]; then \
	    $(SUDO) systemctl disable --now unbound.service unbound-resolvconf.service 2>/dev/null || true; \
	  elif [ -s /run/unbound.pid ]; then \
	    $(SUDO) kill "$$(cat /run/unbound.pid)" 2>/dev/null || true; \
	  fi; \
	fi

build: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVETO_WERROR=ON $(CMAKE_FLAGS) >/dev/null
	cmake --build $(BUILD) -j $(JOBS)

build-asan: deps
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DENABLE_ASAN=ON -DENABLE_UBSAN=ON \
	  -DVETO_WERROR=ON $(CMAKE_FLAGS) >/dev/null
	cmake --build $(ASAN_BUILD) -j $(JOBS)

run: build
	./$(BUILD)/veto serve -c $(CONFIG) $(RUN_USER)

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

# The Debian package (CPack): a /usr build of its own, then build/deb/veto_VERSION_ARCH.deb.
deb: deps
	@$(MAKE) --no-print-directory deps PKGS="$(DEB_PKGS)"
	cmake -S . -B $(DEB_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVETO_WERROR=ON -DVETO_TESTS=OFF \
	  -DCMAKE_INSTALL_PREFIX=/usr $(CMAKE_FLAGS) >/dev/null
	cmake --build $(DEB_BUILD) -j $(JOBS)
	cd $(DEB_BUILD) && cpack -G DEB >/dev/null
	@ls $(DEB_BUILD)/veto_*.deb

# Installs the package in a clean Debian 12 container (podman), checks, serves, queries and
# purges it. Not part of `make test`: it says so and succeeds when podman or the image is missing.
deb-test: deb
	tests/deb/deb-test.sh $(DEB_BUILD)

bench: build bench-deps
	tests/bench/full.sh $(BUILD)

format:
	clang-format -i resolver/*/*.[ch] policy/*.[ch] policy/base/*.[ch] tests/unit/*.[ch] tests/fuzz/*.c tests/bench/*.c

clean:
	rm -rf $(BUILD)
