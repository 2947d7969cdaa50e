# SPDX-License-Identifier: GPL-2.0
# vhe-rs top-level targets. `make help` lists them.
#
# Kbuild entry: when the kernel's build system includes this directory
# (make -C $KDIR M=$PWD), only the Kbuild file matters.
ifneq ($(KERNELRELEASE),)
include $(src)/Kbuild
else

TOP     := $(CURDIR)
BUILD   := $(TOP)/build
# KDIR: the kernel tree to build the module against. Default: the project's own
# tree, built by `make kernel`. Set KDIR=/path to use another built tree.
OWN_KDIR := $(BUILD)/linux
KDIR    ?= $(OWN_KDIR)
KMAKE   := $(MAKE) -C $(KDIR) ARCH=arm64 LLVM=-19
IMAGE   := $(KDIR)/arch/arm64/boot/Image
BUSYBOX := $(BUILD)/busybox/bin/busybox
MODULE  := $(TOP)/vhe_rs.ko
SELFTESTS := $(BUILD)/selftests
SETUP_STAMP := $(BUILD)/.setup-done
export KDIR

.DEFAULT_GOAL := help

help:
	@echo 'vhe-rs: the KVM/arm64 VHE world switch in Rust'
	@echo
	@echo '  make run         set up, build, boot the VHE host under QEMU, load vhe_rs, run the selftest'
	@echo '                   smoke guest, then a Linux guest under QEMU -accel kvm on the Rust backend'
	@echo '                   (GUEST_KERNEL=, GUEST_INITRD=, GUEST_APPEND=, GUEST_SMP=: your own guest)'
	@echo '  make check       every test (what .ci/run runs; tools/check all), after building the kernel,'
	@echo '                   the module and the selftests, in phases: lint (clippy, rustfmt); host tests'
	@echo '                   (cargo test, tools/tests); contracts (tools/layer-check, contract-check,'
	@echo '                   noinstr-check on vhe_rs.ko, instrumented-build); patches (checkpatch.pl);'
	@echo '                   VM selftests (make vm-test: upstream KVM and vhe-rs selftests without,'
	@echo '                   then with the module; tools/hyp-panic-test: a broken run path must end'
	@echo '                   in hyp_panic()); a Linux guest under QEMU -accel kvm on C, on Rust,'
	@echo '                   migrated (make vmm-test); a quick bench (tools/bench --quick).'
	@echo '                   Last line: N passed, N failed, N skipped'
	@echo
	@echo '  make setup       install the toolchain (tools/setup; idempotent)'
	@echo '  make kernel      unpack linux-source-6.12, apply arch/arm64/patches, build Image'
	@echo '  make module      build vhe_rs.ko against KDIR (default build/linux)'
	@echo '  make selftests   cross-build upstream arm64 KVM selftests and selftests/'
	@echo '  make host-test   cargo test (simulated registers) and the tools'"'"' tests (tools/tests), on x86'
	@echo '  make vm-test     write the test plan build/vm/check.plan (tools/mkplan.py, from'
	@echo '                   selftests/upstream.list and the built selftests) and run it in one boot:'
	@echo '                   upstream KVM and vhe-rs selftests on the built-in C, then with vhe_rs loaded;'
	@echo '                   then tools/hyp-panic-test, one more short boot (TESTS=regex runs only'
	@echo '                   matching tests, e.g. TESTS=hypercalls, and not the hyp-panic test)'
	@echo '  make vmm-test    the Linux guest under QEMU -accel kvm on C, on Rust, migrated C -> Rust -> C'
	@echo '  make patch-check checkpatch.pl on the patch series'
	@echo '  make soak        the FP, SVE and sysreg state tests SOAK_RUNS times each (default 200)'
	@echo '                   in a row on vhe_rs, stopping at the first failure (not in make check)'
	@echo '  make stress      the reliability suite (tools/stress): state fuzzer, KVM-ioctl fuzzer (C and'
	@echo '                   Rust digests compared), module lifecycle under load; DURATION per backend'
	@echo '                   (default 30m), SEED=; then broken modules the fuzzer must catch; a table'
	@echo '  make lint        clippy (the kernel'"'"'s CLIPPY=1 module build; cargo clippy on rust/hosttest)'
	@echo '                   and rustfmt --check (the kernel'"'"'s .rustfmt.toml): no warning passes'
	@echo '  make rustfmt     reformat the Rust sources (what `make lint` checks) with rustfmt'
	@echo '  make rust-analyzer  write rust-project.json (the kernel'"'"'s generator, M=, plus rust/vhe.rs)'
	@echo '                   for rust-analyzer; `make module` first makes rust/generated/ it reads'
	@echo '  make bench       benchmarks under QEMU -icount: C vs Rust backend in one boot, and the'
	@echo '                   kernel with vs without the patch series (builds build/linux-stock once);'
	@echo '                   then the macro benchmark: a Linux guest'"'"'s boot and workload under QEMU'
	@echo '                   -accel kvm inside the VHE host, C vs Rust;'
	@echo '                   table on stdout, build/bench/report.{md,json}, rust_over_c.png'
	@echo '  make clean       remove the module build; make distclean: all of build/'

$(SETUP_STAMP): tools/setup
	tools/setup
	@touch $@

setup:
	tools/setup
	@touch $(SETUP_STAMP)

kernel: $(SETUP_STAMP)
ifeq ($(KDIR),$(OWN_KDIR))
	tools/kernel-build
else
	@echo "kernel: KDIR=$(KDIR) is not the project's tree: not building it"
endif

module: kernel
	$(KMAKE) M=$(TOP) modules
	@echo "module: $(MODULE) built against $$(cat $(KDIR)/include/config/kernel.release)"

selftests: kernel
	tools/selftests-build

host-test: module
	tools/check host

patch-check: kernel
	tools/check patches

vm-test: module selftests
	tools/check vm

check: $(SETUP_STAMP)
	tools/check all

bench: $(SETUP_STAMP)
	tools/bench

soak: module selftests
	tools/check soak

# The reliability suite: DURATION per backend (default 30m), SEED (default 1);
# then the deliberately broken modules the state fuzzer must catch.
stress: module selftests
	DURATION=$(or $(DURATION),30m) SEED=$(or $(SEED),1) tools/check stress-long

# Lint. Three checks; `make lint` runs each even if one before failed, and fails
# if any did. Each is a target of its own (tools/check lint runs them one by one).
#  lint-clippy:   the kernel's CLIPPY=1 build of the module, so with the kernel's
#                 lints (rust_common_flags in $(KDIR)/Makefile, .clippy.toml).
#                 Kbuild rebuilds only what changed: rust/vhe.o goes first, so
#                 clippy-driver always runs. Any `warning:` in the output fails.
#                 Clippy changes code generation (the kernel's general-information.rst:
#                 not for production builds), so vhe.o is then built once more with
#                 rustc: after `make lint`, vhe_rs.ko is what `make module` makes.
#  lint-hosttest: cargo clippy on the host test crate, warnings denied.
#  lint-rustfmt:  rustfmt --check, as the kernel's `make rustfmtcheck` runs it
#                 (every .rs file but generated ones, one rustfmt call), with the
#                 kernel's .rustfmt.toml named (these files are outside its tree).
#                 `make rustfmt` reformats the same files.
LINT_LOG := $(BUILD)/lint
RUSTFMT ?= rustfmt
RUSTFMT_FLAGS = --config-path $(KDIR)/.rustfmt.toml --edition 2021
RUST_SOURCES = $(shell find $(TOP)/rust -path $(TOP)/rust/generated -prune \
	-o -name target -prune -o -type f -name '*.rs' -print | sort)

lint: kernel
	@rc=0; for t in lint-clippy lint-hosttest lint-rustfmt; do \
		$(MAKE) --no-print-directory $$t || rc=1; done; \
	[ $$rc = 0 ] && echo 'lint: clean' || echo 'lint: FAILED (see above)' >&2; exit $$rc

lint-clippy:
	@mkdir -p $(LINT_LOG)
	rm -f $(TOP)/rust/vhe.o
	@echo '$(KMAKE) M=$(TOP) CLIPPY=1 modules'
	@$(KMAKE) M=$(TOP) CLIPPY=1 modules > $(LINT_LOG)/clippy.log 2>&1; rc=$$?; \
	cat $(LINT_LOG)/clippy.log; \
	if [ $$rc != 0 ]; then rm -f $(TOP)/rust/vhe.o; \
		echo 'lint: clippy (module): the build failed' >&2; exit 1; fi; \
	echo 'lint: building vhe.o again with rustc, so that vhe_rs.ko is the usual one'; \
	echo 'lint: (clippy-driver runs rustc with MIR optimisations off: other code)'; \
	rm -f $(TOP)/rust/vhe.o; \
	$(KMAKE) M=$(TOP) modules > $(LINT_LOG)/rebuild.log 2>&1 || { cat $(LINT_LOG)/rebuild.log; exit 1; }; \
	if grep -q 'warning:' $(LINT_LOG)/clippy.log; then \
		echo 'lint: clippy (module): warnings (none allowed)' >&2; exit 1; fi

lint-hosttest:
	CARGO_TARGET_DIR=$(BUILD)/cargo cargo clippy --manifest-path $(TOP)/rust/hosttest/Cargo.toml \
		--all-targets -- -D warnings

# (rustfmt colours its diff whenever TERM allows, even into a log file: not there.)
lint-rustfmt:
	@echo '$(RUSTFMT) $(RUSTFMT_FLAGS) --check $(patsubst $(TOP)/%,%,$(RUST_SOURCES))'
	@[ -t 1 ] || color='--color never'; \
	$(RUSTFMT) $(RUSTFMT_FLAGS) $$color --check $(RUST_SOURCES) \
		|| { echo 'lint: rustfmt: the diff above is what `make rustfmt` would change' >&2; exit 1; }
	@echo 'rustfmt: $(words $(RUST_SOURCES)) files, all formatted'

rustfmt:
	$(RUSTFMT) $(RUSTFMT_FLAGS) $(RUST_SOURCES)

# rust-project.json for rust-analyzer: the kernel's generator with this directory
# as its external tree, then tools/rust-project.py adds the crate root it does not
# find (rust/vhe.rs: the generator looks for a Kbuild in the root's own directory).
rust-analyzer: kernel
	$(KMAKE) M=$(TOP) rust-analyzer
	tools/rust-project.py $(TOP)

# make run: the Linux guest under QEMU -accel kvm on the Rust backend (tools/linux-guest
# run), after the selftest smoke guest. GUEST_KERNEL, GUEST_INITRD, GUEST_APPEND: boot
# your own guest instead (it passes if it powers off by itself).
run: module selftests
	@python3 tools/linux-guest run $(if $(GUEST_KERNEL),--kernel $(GUEST_KERNEL)) \
		$(if $(GUEST_INITRD),--initrd $(GUEST_INITRD)) \
		$(if $(GUEST_APPEND),--append "$(GUEST_APPEND)") $(if $(GUEST_SMP),--smp $(GUEST_SMP))

vmm-test: module selftests
	tools/check vmm

clean:
	-$(KMAKE) M=$(TOP) clean 2>/dev/null
	rm -rf $(BUILD)/vm $(BUILD)/cargo $(BUILD)/lint

distclean: clean
	rm -rf $(BUILD)

.PHONY: help setup kernel module selftests host-test patch-check vm-test vmm-test check bench stress run clean distclean \
	lint lint-clippy lint-hosttest lint-rustfmt rustfmt rust-analyzer
endif
