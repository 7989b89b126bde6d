/* Decide, before creating a VM, whether this host's /dev/kvm offers hardware
 * virtualization that can run an unmodified guest at native speed. */
#ifndef EMBER_ACCEL_HOSTCHECK_H
#define EMBER_ACCEL_HOSTCHECK_H

#include "util/err.h"

enum host_kind {
    HOST_HW_KVM,     /* kvm_intel or kvm_amd, and vmx/svm on the CPU */
    HOST_PVM,        /* /dev/kvm is the PVM module */
    HOST_NO_KVM,     /* no usable /dev/kvm */
    HOST_NO_HW_VIRT, /* /dev/kvm present but no vmx/svm and no known module */
};

struct host_paths {
    const char *dev_kvm;  /* "/dev/kvm" */
    const char *sys_module; /* "/sys/module" */
    const char *cpuinfo;  /* "/proc/cpuinfo" */
};

extern const struct host_paths host_default_paths;

enum host_kind hostcheck_classify(const struct host_paths *paths);
/* A few words for log lines ("/dev/kvm is the PVM module"). */
const char *hostcheck_describe(enum host_kind kind);
/* 0 when the host can run guests; otherwise err_set() with the reason and
 * what to do, and -ENODEV. */
int hostcheck_require_hw(const struct host_paths *paths) EMBER_MUST_CHECK;

#endif
