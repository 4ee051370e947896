# astra: build, run and test. `make run` boots the default image; `make test` runs everything.
SHELL := /bin/bash
CARGO ?= cargo
BUILD := build
VMM := target/release/astra-vmm
KERNEL_ELF := $(BUILD)/guest.elf
# The VMM loads the stripped kernel (a fraction of the bytes to read at every boot);
# debuggers find the full debug info through its .gnu_debuglink.
KERNEL_DEBUG_ELF := $(BUILD)/guest.debug.elf
# binutils' objcopy: present wherever Rust can link host programs (cc needs binutils).
OBJCOPY ?= objcopy
FS_TAR := $(BUILD)/fs.tar
GUEST_TARGET := x86_64-unknown-none
MUSL_TARGET := x86_64-unknown-linux-musl
# The kernel is linked at -2 GiB; guest apps are static ET_EXEC. Each gets its own target
# directory so the different RUSTFLAGS never force rebuilds of each other.
KERNEL_RUSTFLAGS := -C code-model=kernel -C relocation-model=static
APPS_RUSTFLAGS := -C relocation-model=static
APPS := init hello true false fault spin stdio

.PHONY: all vmm kernel apps rootfs run test unit-test integration-test test-hwkvm check bench clean toolchain

all: vmm kernel rootfs

# rustup reads rust-toolchain.toml and installs the pinned toolchain and both targets.
toolchain:
	@command -v rustup >/dev/null || { echo "rustup is required (https://rustup.rs)"; exit 1; }
	rustup show active-toolchain >/dev/null

vmm: toolchain
	$(CARGO) build --release -p astra-vmm --bins

kernel: toolchain
	@mkdir -p $(BUILD)
	RUSTFLAGS="$(KERNEL_RUSTFLAGS)" $(CARGO) build --release -p astra-kernel \
		--target $(GUEST_TARGET) --target-dir target/kernel
	cp target/kernel/$(GUEST_TARGET)/release/astra-kernel $(KERNEL_DEBUG_ELF)
	$(OBJCOPY) --strip-debug --add-gnu-debuglink=$(KERNEL_DEBUG_ELF) \
		$(KERNEL_DEBUG_ELF) $(KERNEL_ELF)

apps: toolchain
	RUSTFLAGS="$(APPS_RUSTFLAGS)" $(CARGO) build --release -p astra-apps \
		--target $(GUEST_TARGET) --target-dir target/apps

rootfs: apps
	@mkdir -p $(BUILD)
	$(CARGO) run --release -q -p mkrootfs -- --manifest images/default.manifest \
		--bin-dir target/apps/$(GUEST_TARGET)/release --out $(FS_TAR)

run: all
	$(VMM) --kernel $(KERNEL_ELF) --rootfs $(FS_TAR)

unit-test: toolchain
	$(CARGO) test --workspace --exclude astra-kernel --exclude guest-std --exclude astra-apps --exclude astra-tests
	$(CARGO) test -p astra-kernel --target x86_64-unknown-linux-gnu --target-dir target/kernel-host
	$(CARGO) test -p guest-std --target x86_64-unknown-linux-gnu --target-dir target/kernel-host

integration-test: all
	$(CARGO) test --release -p astra-tests

test: unit-test integration-test test-hwkvm

test-hwkvm: all
	$(CARGO) build --release -p astra-vmm --bins --target $(MUSL_TARGET)
	tests/hwkvm/run.sh

check: toolchain
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --exclude astra-kernel --exclude guest-std --exclude astra-apps --all-targets -- -D warnings
	RUSTFLAGS="$(KERNEL_RUSTFLAGS)" $(CARGO) clippy -p astra-kernel --target $(GUEST_TARGET) \
		--target-dir target/kernel -- -D warnings
	RUSTFLAGS="$(APPS_RUSTFLAGS)" $(CARGO) clippy -p astra-apps -p guest-std --target $(GUEST_TARGET) \
		--target-dir target/apps -- -D warnings

bench: all
	$(CARGO) run --release -q -p astra-tests --bin astra-bench

clean:
	rm -rf target $(BUILD)
