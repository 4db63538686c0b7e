// Cost of the npmk monitor per training step, against one CPU training step of a
// model with more than 10M parameters.
//
//   bench_monitor JSONL_PATH [--train-reps N] [--monitor-reps N] [--batch N]
//
// Model: 1024 -> 2048 -> 1024 -> 2048 -> 1024 -> 2048 -> 1024 -> 16, i.e. three
// (up_proj 2048x1024, down_proj 1024x2048) pairs plus a 16x1024 head: 12,608,528
// parameters. One training step = forward + backward + Adam update of a batch of 64
// synthetic examples, single-threaded, with the plain loops of mlp.hpp (OpenMP-SIMD
// vectorised, no BLAS). The monitor step = begin_step, push all 14 tensors (f32),
// end_step (fit + JSONL line), also single-threaded. Both are timed as the median of
// their repetitions, after one warm-up each.
#include "mlp.hpp"

#include <chrono>
#include <cstdlib>
#include <iostream>

namespace {

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    const size_t n = v.size();
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

size_t arg_count(const char *flag, const char *s) {
    char *end = nullptr;
    const long v = std::strtol(s, &end, 10);
    if (end == s || *end != '\0' || v < 1) {
        std::cerr << "bench_monitor: " << flag << " needs a positive integer\n";
        std::exit(2);
    }
    return static_cast<size_t>(v);
}

}  // namespace

int main(int argc, char **argv) try {
    if (argc < 2) {
        std::cerr << "usage: bench_monitor JSONL_PATH [--train-reps N] [--monitor-reps N] [--batch N]\n";
        return 2;
    }
    const std::string jsonl = argv[1];
    size_t train_reps = 5, monitor_reps = 30, batch = 64;
    for (int i = 2; i < argc; i += 2) {
        const std::string a = argv[i];
        if (i + 1 >= argc) {
            std::cerr << "bench_monitor: " << a << " needs a value\n";
            return 2;
        }
        if (a == "--train-reps") train_reps = arg_count(argv[i], argv[i + 1]);
        else if (a == "--monitor-reps") monitor_reps = arg_count(argv[i], argv[i + 1]);
        else if (a == "--batch") batch = arg_count(argv[i], argv[i + 1]);
        else {
            std::cerr << "bench_monitor: unknown argument " << a << "\n";
            return 2;
        }
    }
    using clock = std::chrono::steady_clock;
    auto seconds = [](clock::time_point a, clock::time_point b) { return std::chrono::duration<double>(b - a).count(); };

    const size_t d = 1024, f = 2048, classes = 16;
    mlp::Net net({d, f, d, f, d, f, d, classes},
                 {"model.layers.0.mlp.up_proj", "model.layers.0.mlp.down_proj", "model.layers.1.mlp.up_proj",
                  "model.layers.1.mlp.down_proj", "model.layers.2.mlp.up_proj", "model.layers.2.mlp.down_proj",
                  "lm_head"});
    mlp::Rng rng(7);
    net.init(rng);
    const std::vector<mlp::Param *> params = net.params();
    size_t n_weights = 0;
    for (const auto &l : net.layers) n_weights += l.weight.size();

    std::vector<float> x(batch * d);
    std::vector<int> y(batch);
    for (float &v : x) v = static_cast<float>(rng.normal());
    for (int &v : y) v = static_cast<int>(rng.below(classes));
    mlp::Adam adam;

    // Training step: forward, backward, Adam. Multiply-adds: 3 passes (forward, dX, dW)
    // over every weight per example.
    std::vector<double> train_t;
    for (size_t r = 0; r <= train_reps; ++r) {
        const auto t0 = clock::now();
        net.forward(x.data(), batch);
        const double loss = net.backward(y.data());
        net.adam_step(adam, r + 1);
        const auto t1 = clock::now();
        if (!std::isfinite(loss)) throw std::runtime_error("training diverged (loss not finite)");
        if (r > 0) train_t.push_back(seconds(t0, t1));
    }
    const double train_s = median(train_t);
    const double gflop = 6.0 * static_cast<double>(batch) * static_cast<double>(n_weights) * 1e-9;

    mlp::Monitor monitor(jsonl);
    std::vector<double> mon_t;
    npmk_step_report rep{};
    for (size_t r = 0; r <= monitor_reps; ++r) {
        const auto t0 = clock::now();
        monitor.begin_step(r + 1);
        for (const mlp::Param *p : params) monitor.push(p->name, NPMK_DTYPE_F32, p->value.data(), p->size());
        rep = monitor.end_step();
        const auto t1 = clock::now();
        if (r > 0) mon_t.push_back(seconds(t0, t1));
    }
    if (!std::isfinite(rep.k)) throw std::runtime_error("monitor returned a non-finite k");
    const double mon_s = median(mon_t);

    std::printf("model: %zu parameters (%zu in weight matrices), batch %zu\n", net.n_params(), n_weights, batch);
    std::printf("training step (fwd+bwd+Adam, 1 thread): %.1f ms  (%.2f GFLOP, %.1f GFLOP/s)\n", 1e3 * train_s, gflop,
                gflop / train_s);
    std::printf("monitor step, full scan (1 thread):      %.3f ms  (%.0f M elements/s)  k %.5f\n", 1e3 * mon_s,
                1e-6 * static_cast<double>(net.n_params()) / mon_s, rep.k);
    std::printf("ratio full scan / training step:         %.3f%%\n", 100.0 * mon_s / train_s);
    return 0;
} catch (const std::exception &e) {
    std::cerr << "bench_monitor: " << e.what() << "\n";
    return 1;
}
