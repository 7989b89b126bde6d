# --- CPU engine (src/cpu) and its tests ---------------------------------------
# Included from the top-level Makefile. The engine sources are part of
# LIB_SRCS already (src/**/*.c); this adds their extra flags, the engine
# tests and the cpurun tool.

ENGINE_SRCS := $(sort $(wildcard src/cpu/*.c))
ENGINE_CFLAGS := -fno-strict-aliasing -fno-stack-protector -foptimize-sibling-calls

$(BUILD)/obj/src/cpu/%.o: CFLAGS_BASE += $(ENGINE_CFLAGS)
# Guest memory is accessed at whatever alignment the guest's instructions
# use, through the host's own unaligned loads, stores and atomics (x86-64
# hosts only): UBSan's alignment check would abort on every such access.
$(BUILD)/asan/obj/src/cpu/%.o: CFLAGS_BASE += $(ENGINE_CFLAGS)
$(BUILD)/asan/obj/src/cpu/%.o: SAN_FLAGS += -fno-sanitize=alignment

# The engine plus the ember pieces the tests and the runner need.
ENGINE_DEPS := $(ENGINE_SRCS) src/mem/guest_mem.c src/util/err.c src/util/log.c \
	src/util/size.c src/util/buf.c src/util/fileio.c \
	$(filter-out src/arch/x86_64/acpi.c src/arch/x86_64/aml.c,$(wildcard src/arch/x86_64/*.c))
ENGINE_OBJS := $(call objs,$(BUILD),$(ENGINE_DEPS))
ENGINE_TEST_CFLAGS := -std=gnu11 -O2 -g -Wall -Wextra -Werror -Isrc -Itests -D_GNU_SOURCE

$(BUILD)/engine/libengine.a: $(ENGINE_OBJS)
	@mkdir -p $(dir $@)
	@rm -f $@
	$(Q)ar rcs $@ $^

$(BUILD)/engine/test_difftest: tests/engine/difftest.c tests/engine/difftest32.h tests/engine/harness.h $(BUILD)/engine/libengine.a
	@mkdir -p $(dir $@)
	$(call say,TEST,$@)
	$(Q)$(CC) $(ENGINE_TEST_CFLAGS) -o $@ $< $(BUILD)/engine/libengine.a -lZydis -lpthread

$(BUILD)/engine/test_decode: tests/engine/decodecheck.c $(BUILD)/engine/libengine.a
	@mkdir -p $(dir $@)
	$(call say,TEST,$@)
	$(Q)$(CC) $(ENGINE_TEST_CFLAGS) -o $@ $< $(BUILD)/engine/libengine.a -lZydis

# System tests: 64-bit guest programs assembled from tests/engine/sys_*.S
ENGINE_SYS_S := $(sort $(wildcard tests/engine/sys_*.S))
ENGINE_SYS_BIN := $(patsubst tests/engine/%.S,$(BUILD)/engine/guests/%.bin,$(ENGINE_SYS_S))

$(BUILD)/engine/guests/%.bin: tests/engine/%.S tests/engine/guest.inc
	@mkdir -p $(dir $@)
	$(call say,AS,$@)
	$(Q)$(CC) -c -Itests/engine -o $@.o $<
	$(Q)ld -m elf_x86_64 -static -nostdlib -N --no-warn-rwx-segments -Ttext=0x100000 \
		-e _start -o $@.elf $@.o
	$(Q)objcopy -O binary $@.elf $@

$(BUILD)/engine/test_system: tests/engine/systest.c tests/engine/harness.h $(BUILD)/engine/libengine.a \
		$(ENGINE_SYS_BIN)
	@mkdir -p $(dir $@)
	$(call say,TEST,$@)
	$(Q)$(CC) $(ENGINE_TEST_CFLAGS) -DGUEST_DIR='"$(abspath $(BUILD)/engine/guests)"' -o $@ $< \
		$(BUILD)/engine/libengine.a -lcmocka -lpthread

$(BUILD)/tools/cpurun: tests/tools/cpurun.c $(BUILD)/engine/libengine.a
	@mkdir -p $(dir $@)
	$(call say,LD,$@)
	$(Q)$(CC) $(ENGINE_TEST_CFLAGS) -o $@ $< $(BUILD)/engine/libengine.a

# Test binaries are build/engine/test_*: tests/run.py runs them with the unit
# tests (they print TAP when CMOCKA_MESSAGE_OUTPUT=TAP).
ENGINE_BINS := $(BUILD)/engine/test_difftest $(BUILD)/engine/test_decode \
	$(BUILD)/engine/test_system $(BUILD)/tools/cpurun

.PHONY: engine engine-test engine-sibcalls
engine: $(ENGINE_BINS)

# gcc must turn every handler's 'return next->fn(...)' into a jump.
engine-sibcalls: $(BUILD)/engine/libengine.a
	tests/engine/check-sibcalls.sh $(BUILD)/obj/src/cpu

engine-test: engine engine-sibcalls
	$(BUILD)/engine/test_decode
	$(BUILD)/engine/test_difftest
	$(BUILD)/engine/test_system

# 'make test' builds and checks the engine too
test: $(ENGINE_BINS) engine-sibcalls
tools: $(BUILD)/tools/cpurun

# libFuzzer: a hostile instruction stream (tests/fuzz/fuzz_engine.c; in the
# top Makefile's FUZZ_TARGETS, whose rules read it before this file). The
# engine is built by clang with the fuzzer's instrumentation and its own
# flags as above (alignment unchecked for the same reason; a record array
# after a block header is the GNU extension gcc takes silently), one object
# per source so that make runs them side by side.
FUZZ_ENGINE_CFLAGS := $(ENGINE_CFLAGS) -fno-sanitize=alignment -Wno-gnu-variable-sized-type-not-at-end
FUZZ_ENGINE_OBJS := $(patsubst %.c,$(BUILD)/fuzz/obj/%.o,$(ENGINE_DEPS))

$(BUILD)/fuzz/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(Q)$(FUZZ_CC) $(FUZZ_ENGINE_CFLAGS) -MMD -MP -c -o $@ $<

-include $(FUZZ_ENGINE_OBJS:.o=.d)

$(BUILD)/fuzz/libengine.a: $(FUZZ_ENGINE_OBJS)
	@rm -f $@
	$(Q)ar rcs $@ $^

$(BUILD)/fuzz/fuzz_engine: tests/fuzz/fuzz_engine.c tests/fuzz/ubsan_options.c $(BUILD)/fuzz/libengine.a
	@mkdir -p $(dir $@)
	$(call say,FUZZ,$@)
	$(Q)$(FUZZ_CC) $(FUZZ_ENGINE_CFLAGS) -Itests -o $@ $(filter %.c,$^) $(BUILD)/fuzz/libengine.a -lpthread
