// The C ABI from C++17: the shared checks of checks.h, the struct layouts as static_asserts,
// RAII ownership of handles, and merging sketches filled by std::threads.
// Usage: test_api_cpp OUTPUT_DIR
#include "../c/checks.h"

#include <cstddef>
#include <memory>
#include <string>
#include <thread>
#include <vector>

static_assert(sizeof(npmk_fit) == 48 && offsetof(npmk_fit, n_used) == 32, "npmk_fit layout");
static_assert(sizeof(npmk_counts) == 56, "npmk_counts layout");
static_assert(sizeof(npmk_monitor_options) == 56 &&
                  offsetof(npmk_monitor_options, settle_window) == 48,
              "npmk_monitor_options layout");
static_assert(sizeof(npmk_step_report) == 160 && offsetof(npmk_step_report, phase) == 32 &&
                  offsetof(npmk_step_report, micros) == 152,
              "npmk_step_report layout");

namespace {

struct SketchDeleter {
    void operator()(npmk_sketch *s) const { npmk_sketch_free(s); }
};
using Sketch = std::unique_ptr<npmk_sketch, SketchDeleter>;

Sketch make_sketch() {
    npmk_sketch *raw = nullptr;
    OK(npmk_sketch_new(&raw));
    return Sketch(raw);
}

// Sketches filled by 4 threads (interleaved elements, bf16 and f32), merged, equal the
// single-threaded sketch word for word and fit bit for bit.
void check_threads(const double *w) {
    const int threads = 4;
    std::vector<float> f32(REF_N);
    std::vector<uint16_t> bf16(REF_N);
    for (size_t i = 0; i < REF_N; i++) {
        f32[i] = static_cast<float>(w[i]);
        bf16[i] = bf16_of_f32(f32[i]);
    }
    Sketch single = make_sketch();
    OK(npmk_sketch_push(single.get(), NPMK_DTYPE_F32, f32.data(), f32.size()));
    OK(npmk_sketch_push(single.get(), NPMK_DTYPE_BF16, bf16.data(), bf16.size()));

    std::vector<Sketch> parts;
    for (int t = 0; t < threads; t++) {
        parts.push_back(make_sketch());
    }
    std::vector<std::thread> pool;
    std::vector<int32_t> status(threads, -1);
    for (int t = 0; t < threads; t++) {
        pool.emplace_back([&, t] {
            int32_t rc = NPMK_OK;
            // Element i goes to thread i % threads, pushed one strided run at a time.
            std::vector<float> mine;
            std::vector<uint16_t> mine16;
            for (size_t i = static_cast<size_t>(t); i < REF_N; i += threads) {
                mine.push_back(f32[i]);
                mine16.push_back(bf16[i]);
            }
            rc |= npmk_sketch_push(parts[t].get(), NPMK_DTYPE_F32, mine.data(), mine.size());
            rc |= npmk_sketch_push(parts[t].get(), NPMK_DTYPE_BF16, mine16.data(), mine16.size());
            status[t] = rc;
        });
    }
    for (auto &th : pool) {
        th.join();
    }
    Sketch merged = make_sketch();
    for (int t = 0; t < threads; t++) {
        CHECK(status[t] == NPMK_OK, "thread %d status %d", t, status[t]);
        OK(npmk_sketch_merge(merged.get(), parts[t].get()));
    }
    CHECK(same_state(single.get(), merged.get()), "threaded merge differs from one sketch");
    npmk_fit a{}, b{};
    OK(npmk_sketch_fit(single.get(), NPMK_TRIM_MID80_LO, NPMK_TRIM_MID80_HI, &a));
    OK(npmk_sketch_fit(merged.get(), NPMK_TRIM_MID80_LO, NPMK_TRIM_MID80_HI, &b));
    CHECK(same_fit(&a, &b), "threaded fit k %.17g vs %.17g", b.k, a.k);
}

// The error message is per thread: a failure elsewhere does not overwrite ours.
void check_message_per_thread() {
    CHECK(npmk_sketch_new(nullptr) == NPMK_ERR_NULL_ARGUMENT, "expected a NULL error");
    std::string mine = npmk_last_error_message();
    std::string theirs;
    std::thread([&] {
        theirs = npmk_last_error_message();  // nothing failed on this thread yet
        (void)npmk_sketch_clear(nullptr);
    }).join();
    CHECK(theirs.empty(), "fresh thread sees \"%s\"", theirs.c_str());
    CHECK(mine == npmk_last_error_message(), "message changed to \"%s\"",
          npmk_last_error_message());
}

}  // namespace

int main(int argc, char **argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s OUTPUT_DIR\n", argv[0]);
        return 2;
    }
    std::string dir = std::string(argv[1]) + "/cpp";
    std::string mk = "mkdir -p '" + dir + "'";
    if (std::system(mk.c_str()) != 0) {
        return 2;
    }
    run_all_checks(dir.c_str());
    double *w = half_normal_reference(REF_N);
    check_threads(w);
    std::free(w);
    check_message_per_thread();
    if (failures) {
        std::fprintf(stderr, "test_api (C++): %d check(s) failed\n", failures);
        return 1;
    }
    std::printf("test_api (C++): all checks passed (npmk %s)\n", npmk_version());
    return 0;
}
