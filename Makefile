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
	@echo '  make run         set up, build, boot the VHE host under QEMU, load vhe_rs, run a guest'
	@echo '  make check       every test: host tests, patch check, upstream KVM selftests without'
	@echo '                   and with the module, the project selftests (what .ci/run runs)'
	@echo
	@echo '  make setup       install the toolchain (tools/setup; idempotent)'
	@echo '  make kernel      unpack linux-source-6.12, apply arch/arm64/patches, build Image'
	@echo '  make module      build vhe_rs.ko against KDIR (default build/linux)'
	@echo '  make selftests   cross-build upstream arm64 KVM selftests and selftests/'
	@echo '  make host-test   cargo test (simulated registers) and the runner tests, on x86'
	@echo '  make vm-test     boot the VM and run selftests/plan/check.plan'
	@echo '                   (TESTS=regex runs only matching tests, e.g. TESTS=hypercalls)'
	@echo '  make patch-check checkpatch.pl on the patch series'
	@echo '  make bench       benchmarks under QEMU -icount: C vs Rust backend in one boot, and the'
	@echo '                   kernel with vs without the patch series (builds build/linux-stock once);'
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

run: module selftests
	@python3 tools/vmrun --kernel $(IMAGE) --busybox $(BUSYBOX) --module $(MODULE) \
		--files $(SELFTESTS) --exclude kheaders --plan selftests/plan/run.plan --out $(BUILD)/vm/run; \
	rc=$$?; echo; echo "--- from the VM's console ($(BUILD)/vm/run/console.log):"; \
	grep -E 'VHE mode initialized|vhe_rs:|vhe_rs_smoke:' $(BUILD)/vm/run/console.log \
		| grep -v 'taints kernel'; exit $$rc

clean:
	-$(KMAKE) M=$(TOP) clean 2>/dev/null
	rm -rf $(BUILD)/vm $(BUILD)/cargo

distclean: clean
	rm -rf $(BUILD)

.PHONY: help setup kernel module selftests host-test patch-check vm-test check bench run clean distclean
endif
