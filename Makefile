# ember — build, test and run. See README.md.
VERSION := 0.1.0
BUILD ?= build
CC ?= gcc
CFLAGS_BASE := -std=gnu11 -Wall -Wextra -Werror -Wshadow -Wformat=2 \
               -Wno-format-nonliteral -Wno-format-truncation -Isrc -D_GNU_SOURCE -DEMBER_VERSION='"$(VERSION)"' \
               -MMD -MP
CFLAGS ?= -O2 -g
# Hardening of the release build (ember runs untrusted guests): canaries on
# functions with arrays or address-taken locals, glibc's checked string and
# memory calls (they need optimization, so only with -O), a position-
# independent executable, and the GOT read-only after start (full RELRO with
# every symbol bound at load). First on the command line so that the CPU
# engine's -fno-stack-protector (src/cpu/engine.mk: its interpreter relies on
# tail calls, which canaries prevent) still wins for its files.
# tests/integration/test_hardening.py checks the binary.
HARDEN_CFLAGS := -fstack-protector-strong -fPIE
ifneq ($(filter -O1 -O2 -O3 -Os -Og,$(CFLAGS)),)
HARDEN_CFLAGS += -U_FORTIFY_SOURCE -D_FORTIFY_SOURCE=2
endif
HARDEN_LDFLAGS := -pie -Wl,-z,relro,-z,now
LDLIBS := -luring -ljson-c -lhttp_parser -lz -lseccomp -lpthread

SAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

# ember-jailer (src/jailer/ and its main) is a program of its own.
JAILER_SRCS := $(shell find src/jailer -name '*.c' | LC_ALL=C sort) src/jailer_main.c
LIB_SRCS := $(filter-out src/main.c $(JAILER_SRCS),$(shell find src -name '*.c' | LC_ALL=C sort))
UNIT_SRCS := $(shell find tests/unit -name 'test_*.c' | LC_ALL=C sort)
# The layers, lowest first (src/LAYERS); each is a folder of src/ and an archive.
LAYERS := $(shell sed -e 's/\#.*//' src/LAYERS)
layer_srcs = $(shell find src/$(1) -name '*.c' | LC_ALL=C sort)

# Quiet by default; 'make V=1' shows the commands.
ifeq ($(V),1)
Q :=
say = @true
else
Q := @
say = @echo "  $(1)	$(2)"
endif

define objs
$(patsubst %.c,$(1)/obj/%.o,$(2))
endef

.PHONY: all asan guest guest-kernel guest-distro guest-selftests unit unit-asan test run run-nested bench tools clean deps help check-layers fuzz fuzz-targets
all: $(BUILD)/ember $(BUILD)/ember-jailer

help:
	@echo "make            build $(BUILD)/ember"
	@echo "make deps       install build and test dependencies (apt-get, needs root)"
	@echo "make guest      build the default guest (Debian kernel + busybox initramfs)"
	@echo "make guest-kernel  build the minimal guest kernel into $(BUILD)/guest-min (guest/kernel)"
	@echo "make guest-distro  build a full Debian 12 system on a disk image into $(BUILD)/distro (debootstrap)"
	@echo "make run        boot the default guest (KVM if the host has it, else ember's engine)"
	@echo "make run-nested boot it with KVM inside the nested harness's L1 host"
	@echo "make test       run unit and integration tests"
	@echo "make asan       ember and unit tests with AddressSanitizer/UBSan"
	@echo "make bench      ember's figures next to QEMU's (see bench/)"
	@echo "make fuzz       libFuzzer targets (clang) under build/fuzz/"
	@echo "make check-layers  check that includes follow src/LAYERS"

# --- layers: every build checks that includes only go down ----------------
check-layers:
	@tests/check-layers

$(BUILD)/.layers-ok: src/LAYERS tests/check-layers $(shell find src tests/unit -name '*.[ch]')
	@mkdir -p $(dir $@)
	$(call say,LAYERS,src/LAYERS)
	$(Q)$(PYTHON) tests/check-layers
	@touch $@

# --- ember ---------------------------------------------------------------
$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(call say,CC,$<)
	$(Q)$(CC) $(HARDEN_CFLAGS) $(CFLAGS_BASE) $(CFLAGS) -c $< -o $@

$(BUILD)/ember: $(call objs,$(BUILD),$(LIB_SRCS) src/main.c) $(BUILD)/.layers-ok
	$(call say,LD,$@)
	$(Q)$(CC) $(CFLAGS) $(HARDEN_LDFLAGS) -o $@ $(filter %.o,$^) $(LDLIBS)

# The jailer needs only util; it links nothing ember's libraries need.
$(BUILD)/ember-jailer: $(call objs,$(BUILD),$(JAILER_SRCS)) $(BUILD)/lib/libutil.a $(BUILD)/.layers-ok
	$(call say,LD,$@)
	$(Q)$(CC) $(CFLAGS) $(HARDEN_LDFLAGS) -o $@ $(filter %.o %.a,$^)

# --- sanitizer build ------------------------------------------------------
$(BUILD)/asan/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(call say,CC-SAN,$<)
	$(Q)$(CC) $(CFLAGS_BASE) -O1 -g $(SAN_FLAGS) -c $< -o $@

$(BUILD)/asan/ember: $(call objs,$(BUILD)/asan,$(LIB_SRCS) src/main.c) $(BUILD)/.layers-ok
	$(call say,LD-SAN,$@)
	$(Q)$(CC) $(SAN_FLAGS) -o $@ $(filter %.o,$^) $(LDLIBS)

asan: $(BUILD)/asan/ember unit-asan

# --- unit tests (cmocka) --------------------------------------------------
# A test in tests/unit/LAYER/ links the archives of LAYER and the layers below
# it, nothing else: a test that needs a higher layer does not link.
define layer_archive
$(1)/lib/lib$(2).a: $(call objs,$(1),$(call layer_srcs,$(2)))
	@mkdir -p $$(dir $$@)
	@rm -f $$@
	$(Q)ar rcs $$@ $$^
endef
$(foreach l,$(LAYERS),$(eval $(call layer_archive,$(BUILD),$(l))))
$(foreach l,$(LAYERS),$(eval $(call layer_archive,$(BUILD)/asan,$(l))))

# The archives for a test in layer $(2), highest layer first (link order).
# The system's python3 directly: a version manager's shim (pyenv) costs over
# a second per call, and this runs once per unit test as make reads rules.
PYTHON := $(firstword $(wildcard /usr/bin/python3) python3)
test_archives = $(foreach l,$(shell $(PYTHON) tests/check-layers --below $(2)),$(1)/lib/lib$(l).a)

define unit_test
$(BUILD)/unit/$(notdir $(basename $(1))): $(1) $(wildcard tests/unit/*.h) $(call test_archives,$(BUILD),$(2)) $(BUILD)/.layers-ok
	@mkdir -p $$(dir $$@)
	$$(call say,TEST,$$@)
	$(Q)$(CC) $(filter-out -MMD -MP,$(CFLAGS_BASE)) $(CFLAGS) -Itests/unit $$< -o $$@ \
		$(call test_archives,$(BUILD),$(2)) -lcmocka $(LDLIBS)
$(BUILD)/asan/unit/$(notdir $(basename $(1))): $(1) $(wildcard tests/unit/*.h) $(call test_archives,$(BUILD)/asan,$(2)) $(BUILD)/.layers-ok
	@mkdir -p $$(dir $$@)
	$$(call say,TEST-SAN,$$@)
	$(Q)$(CC) $(filter-out -MMD -MP,$(CFLAGS_BASE)) -O1 -g $(SAN_FLAGS) -Itests/unit $$< -o $$@ \
		$(call test_archives,$(BUILD)/asan,$(2)) -lcmocka $(LDLIBS)
endef
$(foreach t,$(UNIT_SRCS),$(eval $(call unit_test,$(t),$(word 3,$(subst /, ,$(t))))))

UNIT_BINS := $(foreach t,$(UNIT_SRCS),$(BUILD)/unit/$(notdir $(basename $(t))))
UNIT_ASAN_BINS := $(foreach t,$(UNIT_SRCS),$(BUILD)/asan/unit/$(notdir $(basename $(t))))

unit: $(UNIT_BINS)
unit-asan: $(UNIT_ASAN_BINS)

# --- test tools (not part of ember) ---------------------------------------------
$(BUILD)/tools/runwatch: tests/tools/runwatch.c
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 -O2 -Wall -Wextra -Werror -o $@ $< -lutil

$(BUILD)/tools/ioperf: tests/tools/ioperf.c
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 -static -O2 -Wall -Wextra -Werror -o $@ $<

$(BUILD)/tools/tcpperf: tests/tools/tcpperf.c
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 -static -O2 -Wall -Wextra -Werror -o $@ $<

$(BUILD)/tools/cpuid: tests/tools/cpuid.c
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 -static -O2 -Wall -Wextra -Werror -o $@ $<

# POSIX file-system semantics checked in the guest, on a virtio-fs share.
$(BUILD)/tools/fsexercise: tests/tools/fsexercise.c
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 -static -O2 -Wall -Wextra -Werror -o $@ $<

# The fs bench suite's measurements in the guest.
$(BUILD)/tools/fsperf: tests/tools/fsperf.c
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 -static -O2 -Wall -Wextra -Werror -o $@ $<

# Hardware breakpoints through ptrace (what gdb's 'watch' does), in the guest.
$(BUILD)/tools/hwwatch: tests/tools/hwwatch.c
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 -static -O1 -Wall -Wextra -Werror -o $@ $<

# What several CPUs must get right together, checked in the guest.
$(BUILD)/tools/smpstress: tests/tools/smpstress.c
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 -static -O2 -Wall -Wextra -Werror -pthread -o $@ $<

$(BUILD)/tools/vsockperf: tests/tools/vsockperf.c
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 -static -O2 -Wall -Wextra -Werror -o $@ $<

# The example page-fault handler of the Uffd snapshot-memory backend.
$(BUILD)/tools/uffd_handler: tests/tools/uffd_handler.c
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 -O2 -Wall -Wextra -Werror -o $@ $< -ljson-c

$(BUILD)/tools/kvmexit: tests/tools/kvmexit.c
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 -static -O2 -Wall -Wextra -Werror -o $@ $<

# PVH ELF guests, assembled with binutils (no libc, no C).
$(BUILD)/tools/exitguest $(BUILD)/tools/postguest: $(BUILD)/tools/%: tests/tools/%.S \
		tests/tools/pvh_entry.h
	@mkdir -p $(dir $@)
	$(CC) -c -o $@.o $<
	ld -m elf_x86_64 -static -nostdlib -N --no-warn-rwx-segments -Ttext=0x100000 -e _start \
		-o $@ $@.o

# A 64-bit ELF guest (no PVH note: entered in long mode) doing what hostile
# guests do: undefined opcodes, a fault mid-REP, a bad IDT.
$(BUILD)/tools/hostile64: tests/tools/hostile64.S
	@mkdir -p $(dir $@)
	$(CC) -c -o $@.o $<
	ld -m elf_x86_64 -static -nostdlib -N --no-warn-rwx-segments -Ttext=0x100000 -e _start \
		-o $@ $@.o

# i386 programs under the 64-bit guest kernel (binutils only, no libc).
$(BUILD)/tools/hello32 $(BUILD)/tools/legacy32: $(BUILD)/tools/%: tests/tools/%.S
	@mkdir -p $(dir $@)
	$(CC) -m32 -c -o $@.o $<
	ld -m elf_i386 -static -nostdlib -e _start -o $@ $@.o

# ... and one in C against i386 glibc (gcc-multilib), static and dynamic.
$(BUILD)/tools/hello32c: tests/tools/hello32c.c
	@mkdir -p $(dir $@)
	$(CC) -m32 -std=gnu11 -static -O2 -Wall -Wextra -Werror -o $@ $<
$(BUILD)/tools/hello32d: tests/tools/hello32c.c
	@mkdir -p $(dir $@)
	$(CC) -m32 -std=gnu11 -O2 -Wall -Wextra -Werror -o $@ $<

TOOLS := $(BUILD)/tools/runwatch $(BUILD)/tools/ioperf $(BUILD)/tools/tcpperf \
	$(BUILD)/tools/kvmexit $(BUILD)/tools/exitguest $(BUILD)/tools/postguest $(BUILD)/tools/hostile64 $(BUILD)/tools/vsockperf \
	$(BUILD)/tools/uffd_handler $(BUILD)/tools/cpuid $(BUILD)/tools/fsexercise $(BUILD)/tools/fsperf \
	$(BUILD)/tools/smpstress $(BUILD)/tools/hello32 $(BUILD)/tools/hello32c \
	$(BUILD)/tools/hello32d $(BUILD)/tools/legacy32 $(BUILD)/tools/hwwatch
tools: $(TOOLS)

# --- fuzzing (clang's libFuzzer with ASan/UBSan; separate from 'make test') -----
# The target and the sources it exercises are built together by clang, with
# tests/fuzz/ubsan_options.c: undefined behaviour stops a target as a crash
# does.
FUZZ_CC = clang -std=gnu11 -g -O1 -Wall -Wextra -Werror -Wno-unused-command-line-argument \
	-Isrc -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined $(FUZZ_EXTRA)
# FUZZ_EXTRA: flags for a campaign's own build, e.g. BUILD=build/campaign
# FUZZ_EXTRA=-fno-sanitize-coverage=trace-cmp (README, fuzz_engine).
# $(call fuzz_target,NAME,SOURCES,LIBRARIES): build/fuzz/fuzz_NAME from
# tests/fuzz/fuzz_NAME.c and the sources it exercises (headers among them
# are dependencies only).
define fuzz_target
$(BUILD)/fuzz/fuzz_$(1): tests/fuzz/fuzz_$(1).c tests/fuzz/ubsan_options.c $(2)
	@mkdir -p $$(dir $$@)
	$$(call say,FUZZ,$$@)
	$$(Q)$$(FUZZ_CC) -o $$@ $$(filter-out %.h,$$^) $(3)
endef
FUZZ_VSOCK_SRCS := src/virtio/vsock.c src/virtio/vsock_conn.c src/virtio/backends/vsock_uds.c \
	src/virtio/virtio.c src/virtio/virtq.c src/mem/guest_mem.c src/snapshot/record.c \
	$(wildcard src/util/*.c)

$(eval $(call fuzz_target,vsock,$(FUZZ_VSOCK_SRCS),-ljson-c -lseccomp -lpthread))

# The snapshot loader: container, records, machine configuration.
FUZZ_SNAPSHOT_SRCS := $(wildcard src/snapshot/*.c) $(wildcard src/config/*.c) $(wildcard src/util/*.c)

$(eval $(call fuzz_target,snapshot,$(FUZZ_SNAPSHOT_SRCS),-ljson-c -lz -lseccomp -lpthread))

# virtio-balloon: page numbers, reported ranges and statistics from a guest.
FUZZ_BALLOON_SRCS := src/virtio/balloon.c src/virtio/virtio.c src/virtio/virtq.c \
	src/mem/guest_mem.c src/snapshot/record.c $(wildcard src/config/*.c) $(wildcard src/util/*.c) \
	tests/fuzz/fake_msi.h

$(eval $(call fuzz_target,balloon,$(FUZZ_BALLOON_SRCS),-ljson-c -lseccomp -lpthread))

# The control API's request bodies (and a config file's items): the resource
# model's setters, the balloon, snapshot and rate-limiter parsers.
FUZZ_API_JSON_SRCS := src/api/resources.c src/api/resources_json.c src/api/pmem.c \
	src/api/balloon_json.c src/api/fs.c src/api/mmds.c src/api/cpu_config.c \
	src/api/snapshot_requests.c src/api/http_server.c src/api/mmds_http.c src/api/mmds_store.c \
	src/arch/x86_64/cpu_template.c src/arch/x86_64/cpuid.c $(wildcard src/config/*.c) \
	$(wildcard src/util/*.c)

$(eval $(call fuzz_target,api_json,$(FUZZ_API_JSON_SRCS),-ljson-c -lseccomp -lhttp_parser -lpthread))

# A GDB client: the packet receiver and the stub's protocol handlers.
FUZZ_GDB_SRCS := $(wildcard src/debug/*.c) src/arch/x86_64/gdb_regs.c $(wildcard src/util/*.c)

$(eval $(call fuzz_target,gdb_packet,$(FUZZ_GDB_SRCS),-ljson-c -lseccomp -lpthread))

# Custom CPU templates: the /cpu-config body, its strings, the application.
FUZZ_CPU_CONFIG_SRCS := src/arch/x86_64/cpu_template.c src/arch/x86_64/cpuid.c \
	$(wildcard src/config/*.c) $(wildcard src/util/*.c)

$(eval $(call fuzz_target,cpu_config,$(FUZZ_CPU_CONFIG_SRCS),-ljson-c -lseccomp -lpthread))

# The metadata service: a guest's HTTP on one connection, and its frames.
FUZZ_MMDS_SRCS := src/api/http_server.c src/api/mmds_http.c src/api/mmds_store.c \
	src/virtio/backends/mmds_frames.c $(wildcard src/util/*.c)

$(eval $(call fuzz_target,mmds,$(FUZZ_MMDS_SRCS),-ljson-c -lseccomp -lhttp_parser -lpthread))

# virtio-fs: FUSE requests from a guest against a temporary directory.
FUZZ_VIRTIOFS_SRCS := $(wildcard src/virtio/backends/fs_*.c) src/snapshot/record.c \
	$(wildcard src/util/*.c)

$(eval $(call fuzz_target,virtiofs,$(FUZZ_VIRTIOFS_SRCS),-ljson-c -lseccomp -lpthread))

# virtio-blk on an image file: descriptor tables, request headers, sectors.
FUZZ_VIRTIO_BLK_SRCS := src/virtio/blk.c src/virtio/backends/blockfile.c src/virtio/virtio.c \
	src/virtio/virtq.c src/mem/guest_mem.c src/snapshot/record.c $(wildcard src/config/*.c) \
	$(wildcard src/util/*.c)

$(eval $(call fuzz_target,virtio_blk,$(FUZZ_VIRTIO_BLK_SRCS),-ljson-c -lseccomp -luring -lpthread))

# virtio-net on an in-memory backend: transmit chains, receive buffers of
# any layout, frames up to 64 KiB, the metadata service's diversion.
FUZZ_VIRTIO_NET_SRCS := src/virtio/net.c src/virtio/backends/mmds_frames.c src/virtio/virtio.c \
	src/virtio/virtq.c src/mem/guest_mem.c src/snapshot/record.c $(wildcard src/config/*.c) \
	$(wildcard src/util/*.c)

$(eval $(call fuzz_target,virtio_net,$(FUZZ_VIRTIO_NET_SRCS),-ljson-c -lseccomp -lpthread))

# virtio-pmem: flush requests and the device configuration, on a tmpfs file
# or a descriptor whose fsync fails.
FUZZ_VIRTIO_PMEM_SRCS := src/virtio/pmem.c src/virtio/virtio.c src/virtio/virtq.c \
	src/mem/guest_mem.c src/snapshot/record.c $(wildcard src/config/*.c) $(wildcard src/util/*.c) \
	tests/fuzz/fake_msi.h

$(eval $(call fuzz_target,virtio_pmem,$(FUZZ_VIRTIO_PMEM_SRCS),-ljson-c -lseccomp -lpthread))

# The legacy port devices (i8042, 8250, CMOS RTC, pvpanic, ACPI PM, 8254 PIT)
# through the port bus, with snapshot round trips (tests/fuzz/legacy_machine.h).
FUZZ_LEGACY_SRCS := src/devices/i8042.c src/devices/serial_8250.c src/devices/rtc_cmos.c \
	src/devices/pvpanic.c src/devices/acpi_pm.c src/devices/i8254.c src/bus/bus.c \
	src/snapshot/record.c $(wildcard src/config/*.c) $(wildcard src/util/*.c)

$(eval $(call fuzz_target,legacy_ports,$(FUZZ_LEGACY_SRCS) tests/fuzz/legacy_machine.h,-ljson-c -lseccomp -lpthread))

# Every device's snapshot load fed its own saved state with hostile edits:
# the legacy devices, virtio-pci (configuration space, MSI-X, transport,
# queues, a balloon or pmem model) and virtio-mmio.
FUZZ_DEVICE_STATE_SRCS := $(filter-out tests/fuzz/legacy_machine.h,$(FUZZ_LEGACY_SRCS)) \
	src/virtio/transport_pci.c src/virtio/transport_mmio.c $(wildcard src/bus/pci/*.c) \
	src/virtio/balloon.c src/virtio/pmem.c src/virtio/virtio.c src/virtio/virtq.c \
	src/mem/guest_mem.c tests/fuzz/legacy_machine.h tests/fuzz/board_stubs.h tests/fuzz/fake_msi.h

$(eval $(call fuzz_target,device_state,$(FUZZ_DEVICE_STATE_SRCS),-ljson-c -lseccomp -lpthread))

# The PCI bus, MSI-X and both virtio transports as a guest drives them, with
# rng, console and blk (on an image file) behind them.
FUZZ_VIRTIO_PCI_SRCS := src/virtio/transport_pci.c src/virtio/transport_mmio.c \
	$(wildcard src/bus/pci/*.c) src/bus/bus.c src/virtio/rng.c src/virtio/console.c \
	src/virtio/blk.c src/virtio/backends/blockfile.c src/virtio/virtio.c src/virtio/virtq.c \
	src/mem/guest_mem.c src/snapshot/record.c $(wildcard src/config/*.c) $(wildcard src/util/*.c) \
	tests/fuzz/fake_msi.h

$(eval $(call fuzz_target,virtio_pci,$(FUZZ_VIRTIO_PCI_SRCS),-ljson-c -lseccomp -luring -lpthread))

# The kernel loaders: bzImage, ELF/PVH, initrd placement and the command
# line, on arbitrary files into guest memories of a few sizes.
FUZZ_LOADER_SRCS := src/arch/x86_64/boot.c src/arch/x86_64/bzimage.c \
	src/arch/x86_64/elf_kernel.c src/arch/x86_64/cpu_boot.c src/arch/x86_64/e820.c \
	src/mem/guest_mem.c $(wildcard src/util/*.c)

$(eval $(call fuzz_target,loader,$(FUZZ_LOADER_SRCS),-ljson-c -lseccomp -lpthread))

# The config file and the API's route layer: src/api/ built by clang with
# the fuzzer's instrumentation, linked with the release build's archives of
# the layers below it (the VMM is linked but never started).
FUZZ_API_SRCS := $(wildcard src/api/*.c)
FUZZ_BELOW_API = $(foreach l,$(shell $(PYTHON) tests/check-layers --below vmm),$(BUILD)/lib/lib$(l).a)

$(BUILD)/fuzz/fuzz_config_file $(BUILD)/fuzz/fuzz_api_route: $(BUILD)/fuzz/%: tests/fuzz/%.c \
		tests/fuzz/ubsan_options.c $(FUZZ_API_SRCS) $(FUZZ_BELOW_API)
	@mkdir -p $(dir $@)
	$(call say,FUZZ,$@)
	$(Q)$(FUZZ_CC) -o $@ $(filter %.c,$^) $(filter %.a,$^) $(LDLIBS)

FUZZ_TARGETS := $(BUILD)/fuzz/fuzz_config_file $(BUILD)/fuzz/fuzz_api_route $(BUILD)/fuzz/fuzz_virtio_blk $(BUILD)/fuzz/fuzz_vsock $(BUILD)/fuzz/fuzz_snapshot $(BUILD)/fuzz/fuzz_balloon \
	$(BUILD)/fuzz/fuzz_api_json $(BUILD)/fuzz/fuzz_virtiofs \
	$(BUILD)/fuzz/fuzz_mmds $(BUILD)/fuzz/fuzz_cpu_config $(BUILD)/fuzz/fuzz_gdb_packet \
	$(BUILD)/fuzz/fuzz_virtio_net $(BUILD)/fuzz/fuzz_virtio_pci \
	$(BUILD)/fuzz/fuzz_loader $(BUILD)/fuzz/fuzz_virtio_pmem $(BUILD)/fuzz/fuzz_legacy_ports \
	$(BUILD)/fuzz/fuzz_device_state $(BUILD)/fuzz/fuzz_engine
# 'make fuzz' builds every target and runs each for FUZZ_SECONDS on its seed
# corpus (tests/fuzz/corpus/NAME, copied so the tree's seeds stay small).
FUZZ_SECONDS ?= 60
# 'make fuzz-targets' only builds them: the test suite runs each briefly on
# its seeds (tests/integration/test_fuzz.py).
fuzz-targets: $(FUZZ_TARGETS)
fuzz: $(FUZZ_TARGETS)
	@for t in $(FUZZ_TARGETS); do \
		n=$$(basename $$t); n=$${n#fuzz_}; mkdir -p $(BUILD)/fuzz/corpus-$$n; \
		cp -n tests/fuzz/corpus/$$n/* $(BUILD)/fuzz/corpus-$$n/ 2>/dev/null; \
		echo "  FUZZ	$$t for $(FUZZ_SECONDS)s"; \
		$$t -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 $(BUILD)/fuzz/corpus-$$n \
			2>$(BUILD)/fuzz/$$n.log || { tail -40 $(BUILD)/fuzz/$$n.log; exit 1; }; \
		grep -E '^stat::number_of_executed_units' $(BUILD)/fuzz/$$n.log; \
	done

# --- default guest ----------------------------------------------------------
GUEST := $(BUILD)/guest
$(GUEST)/.fetched: guest/fetch-debs.sh
	guest/fetch-debs.sh $(BUILD)/debs
	@mkdir -p $(GUEST)
	touch $@

$(GUEST)/vmlinuz: $(GUEST)/.fetched
	cp $(BUILD)/debs/vmlinuz $@

$(GUEST)/vmlinux: $(GUEST)/vmlinuz guest/extract-vmlinux.sh
	guest/extract-vmlinux.sh $< $@

# Built for the guest (static): see guest/sigdfl.c.
$(BUILD)/guest-tools/sigdfl: guest/sigdfl.c
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 -static -O2 -Wall -Wextra -Werror -o $@ $<

$(GUEST)/initramfs.cpio: $(GUEST)/.fetched guest/init guest/udhcpc.script guest/build-initramfs.sh \
		$(BUILD)/guest-tools/sigdfl
	guest/build-initramfs.sh $(BUILD)/debs $@ $(BUILD)/guest-tools/sigdfl

# A minimal Debian tree (libc6, dash, bash, coreutils) for the --rootfs test.
$(GUEST)/debian-tree.tar: $(GUEST)/.fetched guest/debian-tree.sh
	guest/debian-tree.sh $(BUILD)/debs $@

guest: $(GUEST)/vmlinuz $(GUEST)/vmlinux $(GUEST)/initramfs.cpio $(GUEST)/debian-tree.tar

# A full Debian 12 system on a disk image (debootstrap, systemd, its own
# kernel and initrd) for the distribution boot test; built once.
$(BUILD)/distro/rootfs.img: guest/debian-system.sh
	guest/debian-system.sh $(BUILD)/distro

guest-distro: $(BUILD)/distro/rootfs.img

# Linux's x86 selftests from linux-source-6.1, as static guest programs
# (tests/integration/test_selftests.py); built once.
$(BUILD)/selftests/x86/sigreturn_64: guest/selftests/build.sh
	guest/selftests/build.sh $(BUILD)/selftests/x86

guest-selftests: $(BUILD)/selftests/x86/sigreturn_64

# --- the minimal guest kernel (guest/kernel, README "The minimal guest kernel")
# Built from Debian's linux-source-6.1 with guest/kernel/microvm.config; the
# source and object tree stay in $(BUILD)/kernel, so this is done once. The
# directory holds the default initramfs too, without the cloud kernel's
# modules: EMBER_GUEST_DIR=$(GUEST_MIN) (or tests/run.py --guest-kernel min)
# boots the same guest on this kernel.
GUEST_MIN := $(BUILD)/guest-min
# '+': the kernel's own make joins this one's jobserver (make -jN).
$(GUEST_MIN)/vmlinuz: guest/kernel/microvm.config guest/kernel/build.sh
	+guest/kernel/build.sh $(BUILD)/kernel $(GUEST_MIN)

$(GUEST_MIN)/vmlinux: $(GUEST_MIN)/vmlinuz

$(GUEST_MIN)/initramfs.cpio: $(GUEST)/.fetched guest/init guest/udhcpc.script \
		guest/build-initramfs.sh $(BUILD)/guest-tools/sigdfl
	@mkdir -p $(GUEST_MIN)
	guest/build-initramfs.sh $(BUILD)/debs $@ $(BUILD)/guest-tools/sigdfl --no-modules

guest-kernel: $(GUEST_MIN)/vmlinuz $(GUEST_MIN)/vmlinux $(GUEST_MIN)/initramfs.cpio

# --- running and testing ----------------------------------------------------
deps:
	.ci/install-deps

run: $(BUILD)/ember guest
	tests/harness/run-default.py --build $(BUILD)

run-nested: $(BUILD)/ember guest
	tests/harness/run-default.py --build $(BUILD) --nested

test: $(BUILD)/ember $(BUILD)/asan/ember $(TOOLS) $(UNIT_BINS) $(UNIT_ASAN_BINS) guest
	python3 tests/run.py --build $(BUILD)

bench: $(BUILD)/ember $(TOOLS) guest
	python3 bench/bench.py --build $(BUILD)

clean:
	rm -rf $(BUILD)

include src/cpu/engine.mk

-include $(shell find $(BUILD)/obj $(BUILD)/asan/obj -type f -name '*.d' 2>/dev/null)
