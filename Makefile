# signoff — the two commands a new user runs are `make run` and `make test`.
BUILD ?= build
ASAN_BUILD ?= build-asan
PYTHON ?= /usr/bin/python3

.PHONY: all build run test test-fast asan bench fuzz clean format

all: build

$(BUILD)/build.ninja:
	scripts/bootstrap build
	meson setup $(BUILD) --buildtype=debugoptimized

build: $(BUILD)/build.ninja
	ninja -C $(BUILD)

# Start signoffd on the embedded demo configuration (SQLite under ./var).
run:
	scripts/bootstrap build
	@test -f $(BUILD)/build.ninja || meson setup $(BUILD) --buildtype=debugoptimized
	ninja -C $(BUILD)
	exec $(BUILD)/src/daemon/signoffd

# Unit tests, black-box tests, then both again under ASan+UBSan. Ends with "N passed, N failed".
test:
	scripts/bootstrap test
	@test -f $(BUILD)/build.ninja || meson setup $(BUILD) --buildtype=debugoptimized
	ninja -C $(BUILD)
	PYTHON=$(PYTHON) scripts/run-tests $(BUILD) $(ASAN_BUILD)

# The same without the sanitizer pass, for quick iterations.
test-fast:
	scripts/bootstrap test
	@test -f $(BUILD)/build.ninja || meson setup $(BUILD) --buildtype=debugoptimized
	ninja -C $(BUILD)
	PYTHON=$(PYTHON) scripts/run-tests $(BUILD)

bench:
	scripts/bootstrap bench
	@test -f $(BUILD)/build.ninja || meson setup $(BUILD) --buildtype=debugoptimized
	ninja -C $(BUILD)
	bench/run $(BUILD)

fuzz:
	scripts/bootstrap test
	tests/fuzz/run

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) build-fuzz

format:
	clang-format -i $$(git ls-files '*.c' '*.h')
