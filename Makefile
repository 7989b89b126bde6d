# ember — build, test and run. See README.md.
VERSION := 0.1.0
BUILD ?= build
CC ?= gcc
CFLAGS_BASE := -std=gnu11 -Wall -Wextra -Werror -Wshadow -Wformat=2 \
               -Wno-format-nonliteral -Wno-format-truncation -Isrc -D_GNU_SOURCE -DEMBER_VERSION='"$(VERSION)"' \
               -MMD -MP
CFLAGS ?= -O2 -g
LDLIBS := -lslirp -luring -ljson-c -lhttp_parser -lz -lpthread

SAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

LIB_SRCS := $(filter-out src/main.c,$(shell find src -name '*.c' | LC_ALL=C sort))
UNIT_SRCS := $(shell find tests/unit -name 'test_*.c' | LC_ALL=C sort)

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

.PHONY: all asan guest unit unit-asan test run bench tools clean deps help
all: $(BUILD)/ember

help:
	@echo "make            build $(BUILD)/ember"
	@echo "make deps       install build and test dependencies (apt-get, needs root)"
	@echo "make guest      build the default guest (Debian kernel + busybox initramfs)"
	@echo "make run        boot the default guest (directly, or in the nested harness)"
	@echo "make test       run unit and integration tests"
	@echo "make asan       ember and unit tests with AddressSanitizer/UBSan"
	@echo "make bench      ember's figures next to QEMU's (see bench/)"

# --- ember ---------------------------------------------------------------
$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(call say,CC,$<)
	$(Q)$(CC) $(CFLAGS_BASE) $(CFLAGS) -c $< -o $@

$(BUILD)/ember: $(call objs,$(BUILD),$(LIB_SRCS) src/main.c)
	$(call say,LD,$@)
	$(Q)$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/libember.a: $(call objs,$(BUILD),$(LIB_SRCS))
	@rm -f $@
	$(Q)ar rcs $@ $^

# --- sanitizer build ------------------------------------------------------
$(BUILD)/asan/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(call say,CC-SAN,$<)
	$(Q)$(CC) $(CFLAGS_BASE) -O1 -g $(SAN_FLAGS) -c $< -o $@

$(BUILD)/asan/ember: $(call objs,$(BUILD)/asan,$(LIB_SRCS) src/main.c)
	$(call say,LD-SAN,$@)
	$(Q)$(CC) $(SAN_FLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/asan/libember.a: $(call objs,$(BUILD)/asan,$(LIB_SRCS))
	@rm -f $@
	$(Q)ar rcs $@ $^

asan: $(BUILD)/asan/ember unit-asan

# --- unit tests (cmocka) --------------------------------------------------
UNIT_BINS := $(patsubst tests/unit/%.c,$(BUILD)/unit/%,$(UNIT_SRCS))
UNIT_ASAN_BINS := $(patsubst tests/unit/%.c,$(BUILD)/asan/unit/%,$(UNIT_SRCS))

$(BUILD)/unit/%: tests/unit/%.c $(wildcard tests/unit/*.h) $(BUILD)/libember.a
	@mkdir -p $(dir $@)
	$(call say,TEST,$@)
	$(Q)$(CC) $(filter-out -MMD -MP,$(CFLAGS_BASE)) $(CFLAGS) -Itests $< -o $@ \
		$(BUILD)/libember.a -lcmocka $(LDLIBS)

$(BUILD)/asan/unit/%: tests/unit/%.c $(wildcard tests/unit/*.h) $(BUILD)/asan/libember.a
	@mkdir -p $(dir $@)
	$(call say,TEST-SAN,$@)
	$(Q)$(CC) $(filter-out -MMD -MP,$(CFLAGS_BASE)) -O1 -g $(SAN_FLAGS) -Itests $< -o $@ \
		$(BUILD)/asan/libember.a -lcmocka $(LDLIBS)

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

$(BUILD)/tools/kvmexit: tests/tools/kvmexit.c
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 -static -O2 -Wall -Wextra -Werror -o $@ $<

# A PVH ELF guest, assembled with binutils (no libc, no C).
$(BUILD)/tools/exitguest: tests/tools/exitguest.S
	@mkdir -p $(dir $@)
	$(CC) -c -o $@.o $<
	ld -m elf_x86_64 -static -nostdlib -N --no-warn-rwx-segments -Ttext=0x100000 -e _start \
		-o $@ $@.o

TOOLS := $(BUILD)/tools/runwatch $(BUILD)/tools/ioperf $(BUILD)/tools/tcpperf \
	$(BUILD)/tools/kvmexit $(BUILD)/tools/exitguest
tools: $(TOOLS)

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

$(GUEST)/initramfs.cpio: $(GUEST)/.fetched guest/init guest/udhcpc.script guest/build-initramfs.sh
	guest/build-initramfs.sh $(BUILD)/debs $@

guest: $(GUEST)/vmlinuz $(GUEST)/vmlinux $(GUEST)/initramfs.cpio

# --- running and testing ----------------------------------------------------
deps:
	.ci/install-deps

run: $(BUILD)/ember guest
	tests/harness/run-default.py --build $(BUILD)

test: $(BUILD)/ember $(BUILD)/asan/ember $(TOOLS) $(UNIT_BINS) $(UNIT_ASAN_BINS) guest
	python3 tests/run.py --build $(BUILD)

bench: $(BUILD)/ember $(TOOLS) guest
	python3 bench/bench.py --build $(BUILD)

clean:
	rm -rf $(BUILD)

include src/cpu/engine.mk

-include $(shell find $(BUILD)/obj $(BUILD)/asan/obj -type f -name '*.d' 2>/dev/null)
