/* libFuzzer target: a hostile --config-file. The input is the file's text:
 * parsed, every item applied to the API's resources as 'ember
 * --config-file' applies it, and the VM configuration built — never
 * started, and the logger, metrics and a cpu-config file path are checked
 * for their type only (a fuzzer must not create files). Any text must be
 * refused with a message or turned into a configuration, never crash,
 * leak or read past its end. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "util/log.h"
#include "vmm/vmm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct vmm vmm; /* the API's resources only: no VM, no loop */
    static bool once;
    if (!once) {
        log_set_level(LOG_ERROR);
        metrics_init(&vmm.metrics);
        once = true;
    }
    char *text = malloc(size + 1); /* a file's text ends where the file does */
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    struct api api;
    api_init(&api, &vmm);
    struct vm_config cfg;
    (void)api_config_check_text(&api, text, size, &cfg);
    api_destroy(&api);
    free(text);
    return 0;
}
