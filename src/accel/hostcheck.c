#include "accel/hostcheck.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const struct host_paths host_default_paths = {
    .dev_kvm = "/dev/kvm",
    .sys_module = "/sys/module",
    .cpuinfo = "/proc/cpuinfo",
};

static bool module_loaded(const struct host_paths *p, const char *name)
{
    char path[256];
    struct stat st;
    snprintf(path, sizeof(path), "%s/%s", p->sys_module, name);
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static bool cpu_has_hw_virt(const struct host_paths *p)
{
    FILE *f = fopen(p->cpuinfo, "r");
    if (!f)
        return false;
    char line[8192];
    bool found = false;
    while (!found && fgets(line, sizeof(line), f)) {
        if (strncmp(line, "flags", 5) != 0)
            continue;
        for (char *tok = strtok(line, " \t\n"); tok; tok = strtok(NULL, " \t\n"))
            if (!strcmp(tok, "vmx") || !strcmp(tok, "svm"))
                found = true;
    }
    fclose(f);
    return found;
}

enum host_kind hostcheck_classify(const struct host_paths *p)
{
    if (access(p->dev_kvm, R_OK | W_OK) != 0)
        return HOST_NO_KVM;
    if (module_loaded(p, "kvm_pvm"))
        return HOST_PVM;
    if ((module_loaded(p, "kvm_intel") || module_loaded(p, "kvm_amd")) &&
        cpu_has_hw_virt(p))
        return HOST_HW_KVM;
    return HOST_NO_HW_VIRT;
}

const char *hostcheck_describe(enum host_kind kind)
{
    switch (kind) {
    case HOST_HW_KVM: return "hardware KVM";
    case HOST_PVM: return "/dev/kvm is the PVM module";
    case HOST_NO_KVM: return "no usable /dev/kvm";
    case HOST_NO_HW_VIRT:
    default: return "no VT-x or AMD-V";
    }
}

int hostcheck_require_hw(const struct host_paths *p)
{
    static const char advice[] =
        "--accel kvm needs a host with VT-x or AMD-V (kvm_intel or kvm_amd loaded); "
        "elsewhere --accel soft (or auto, the default) runs the guest on ember's own "
        "CPU engine, and the nested harness runs KVM one level down; "
        "--skip-host-check overrides this check";
    switch (hostcheck_classify(p)) {
    case HOST_HW_KVM:
        return 0;
    case HOST_PVM:
        return err_set(-ENODEV,
                       "%s is the PVM module (kvm_pvm), not hardware KVM: it runs "
                       "only PVM-enlightened guests and would emulate a stock "
                       "kernel one instruction at a time; %s",
                       p->dev_kvm, advice);
    case HOST_NO_KVM:
        if (access(p->dev_kvm, F_OK) == 0)
            return err_set(-ENODEV, "no permission to use %s (add yourself to "
                                    "its group, usually 'kvm'); %s",
                           p->dev_kvm, advice);
        return err_set(-ENODEV, "%s does not exist (KVM is not loaded or not "
                                "available); %s", p->dev_kvm, advice);
    case HOST_NO_HW_VIRT:
    default:
        return err_set(-ENODEV,
                       "%s exists but the CPU shows no vmx/svm flag and neither "
                       "kvm_intel nor kvm_amd is loaded; %s", p->dev_kvm, advice);
    }
}
