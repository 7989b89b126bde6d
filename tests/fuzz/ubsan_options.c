/* Linked into every fuzz target: UBSan's first report ends the run as a
 * crash does (it prints and goes on by default, and a campaign would
 * report it nowhere). A runtime option rather than
 * -fno-sanitize-recover, which changes the instrumented blocks and so the
 * edge counts the campaigns are compared by. */
const char *__ubsan_default_options(void);

const char *__ubsan_default_options(void)
{
    return "halt_on_error=1:print_stacktrace=1";
}
