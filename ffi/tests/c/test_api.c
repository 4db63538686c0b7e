/* The C ABI from C99: every check of checks.h, plus the struct layouts the Rust side asserts.
 * Usage: test_api OUTPUT_DIR (the monitor's JSONL files are written there). */
#include "checks.h"

#include <stddef.h>

/* C99 has no static_assert: a negative array size fails the build. */
typedef char fit_size[sizeof(npmk_fit) == 48 ? 1 : -1];
typedef char fit_n_used[offsetof(npmk_fit, n_used) == 32 ? 1 : -1];
typedef char fit_n_usable[offsetof(npmk_fit, n_usable) == 40 ? 1 : -1];
typedef char counts_size[sizeof(npmk_counts) == 56 ? 1 : -1];
typedef char counts_subnormal[offsetof(npmk_counts, subnormal) == 48 ? 1 : -1];
typedef char options_size[sizeof(npmk_monitor_options) == 56 ? 1 : -1];
typedef char options_fraction[offsetof(npmk_monitor_options, sample_fraction) == 16 ? 1 : -1];
typedef char options_window[offsetof(npmk_monitor_options, settle_window) == 48 ? 1 : -1];
typedef char report_size[sizeof(npmk_step_report) == 160 ? 1 : -1];
typedef char report_phase[offsetof(npmk_step_report, phase) == 32 ? 1 : -1];
typedef char report_lambda[offsetof(npmk_step_report, lambda) == 40 ? 1 : -1];
typedef char report_k_se[offsetof(npmk_step_report, k_se) == 104 ? 1 : -1];
typedef char report_micros[offsetof(npmk_step_report, micros) == 152 ? 1 : -1];

int main(int argc, char **argv) {
    int failed;
    if (argc != 2) {
        fprintf(stderr, "usage: %s OUTPUT_DIR\n", argv[0]);
        return 2;
    }
    failed = run_all_checks(argv[1]);
    if (failed) {
        fprintf(stderr, "test_api (C): %d check(s) failed\n", failed);
        return 1;
    }
    printf("test_api (C): all checks passed (npmk %s)\n", npmk_version());
    return 0;
}
