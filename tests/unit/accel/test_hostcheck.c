/* The host check on fake /dev, /sys/module and /proc/cpuinfo trees. */
#include "fakes.h"

#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>
#include "accel/hostcheck.h"

/* A fake /dev, /sys/module and /proc/cpuinfo under a temporary directory. */
struct fake_host {
    char root[64];
    char dev[128], sys[128], cpuinfo[128];
    struct host_paths paths;
};

static void fake_host(struct fake_host *h, bool dev, const char *module, const char *flags)
{
    snprintf(h->root, sizeof(h->root), "/tmp/ember-host-XXXXXX");
    assert_non_null(mkdtemp(h->root));
    snprintf(h->dev, sizeof(h->dev), "%s/kvm", h->root);
    snprintf(h->sys, sizeof(h->sys), "%s/module", h->root);
    snprintf(h->cpuinfo, sizeof(h->cpuinfo), "%s/cpuinfo", h->root);
    mkdir(h->sys, 0755);
    if (dev)
        fclose(fopen(h->dev, "w"));
    if (module) {
        char path[256];
        snprintf(path, sizeof(path), "%s/%s", h->sys, module);
        mkdir(path, 0755);
    }
    FILE *f = fopen(h->cpuinfo, "w");
    fprintf(f, "processor\t: 0\nflags\t\t: fpu %s sse\n", flags);
    fclose(f);
    h->paths = (struct host_paths){h->dev, h->sys, h->cpuinfo};
}

static void fake_host_free(struct fake_host *h)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", h->root);
    assert_int_equal(system(cmd), 0);
}

static void test_hostcheck(void **state)
{
    (void)state;
    struct fake_host h;
    fake_host(&h, true, "kvm_amd", "svm");
    assert_int_equal(hostcheck_classify(&h.paths), HOST_HW_KVM);
    assert_int_equal(hostcheck_require_hw(&h.paths), 0);
    assert_string_equal(hostcheck_describe(HOST_PVM), "/dev/kvm is the PVM module");
    fake_host_free(&h);

    fake_host(&h, true, "kvm_intel", "vmx");
    assert_int_equal(hostcheck_classify(&h.paths), HOST_HW_KVM);
    fake_host_free(&h);

    fake_host(&h, true, "kvm_pvm", "");
    assert_int_equal(hostcheck_classify(&h.paths), HOST_PVM);
    assert_int_equal(hostcheck_require_hw(&h.paths), -ENODEV);
    assert_non_null(strstr(err_msg(), "PVM module"));
    assert_non_null(strstr(err_msg(), "--accel soft"));
    fake_host_free(&h);

    fake_host(&h, false, "kvm_amd", "svm");
    assert_int_equal(hostcheck_classify(&h.paths), HOST_NO_KVM);
    assert_int_equal(hostcheck_require_hw(&h.paths), -ENODEV);
    assert_non_null(strstr(err_msg(), "does not exist"));
    fake_host_free(&h);

    fake_host(&h, true, NULL, "");
    assert_int_equal(hostcheck_classify(&h.paths), HOST_NO_HW_VIRT);
    assert_int_equal(hostcheck_require_hw(&h.paths), -ENODEV);
    assert_non_null(strstr(err_msg(), "no vmx/svm"));
    fake_host_free(&h);

    /* "svm" must be a whole flag, not part of another. */
    fake_host(&h, true, "kvm_amd", "svmx_like nosvm");
    assert_int_equal(hostcheck_classify(&h.paths), HOST_NO_HW_VIRT);
    fake_host_free(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hostcheck),
    };
    return cmocka_run_group_tests_name("hostcheck", tests, NULL, NULL);
}
