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
// end_step (fits + JSONL line), also single-threaded, with a full scan and with the two
// sampling modes of npmk_monitor_options (every 16th or 256th element; 1/16 or 1/256 of
// the elements at fixed random positions). Each is timed as the median of its
// repetitions, after one warm-up. For scale, a plain vectorised sum of every weight gives
// the memory-bound floor of any full scan. Last, steps with the full scan running on a
// second thread during forward and backward are timed against plain steps.
#include "mlp.hpp"

#include <chrono>
#include <cstdlib>
#include <iostream>
#include <thread>

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

    // One monitor step over the whole model; returns its wall time.
    auto measure = [&](mlp::Monitor &m, uint64_t step, npmk_step_report &rep) {
        const auto t0 = clock::now();
        m.begin_step(step);
        for (const mlp::Param *p : params) m.push(p->name, NPMK_DTYPE_F32, p->value.data(), p->size());
        rep = m.end_step();
        return seconds(t0, clock::now());
    };
    struct Mode {
        const char *label;
        uint64_t stride;
        double fraction;
    };
    const Mode modes[] = {{"full scan", 0, 0.0},
                           {"stride 16", 16, 0.0},
                           {"fraction 1/16", 0, 1.0 / 16.0},
                           {"stride 256", 256, 0.0},
                           {"fraction 1/256", 0, 1.0 / 256.0}};

    std::printf("model: %zu parameters (%zu in weight matrices), batch %zu\n", net.n_params(), n_weights, batch);
    std::printf("training step (fwd+bwd+Adam, 1 thread): %8.2f ms  (%.2f GFLOP, %.1f GFLOP/s)\n", 1e3 * train_s,
                gflop, gflop / train_s);
    // The floor of any full scan: stream every weight once (a vectorised sum), no histogram.
    {
        std::vector<double> t;
        float sink = 0.0f;
        for (size_t r = 0; r <= monitor_reps; ++r) {
            const auto t0 = clock::now();
            for (const mlp::Param *p : params) {
                const float *v = p->value.data();
                const size_t n = p->size();
                float s = 0.0f;
#pragma omp simd reduction(+ : s)
                for (size_t i = 0; i < n; ++i) s += v[i];
                sink += s;
            }
            if (r > 0) t.push_back(seconds(t0, clock::now()));
        }
        const double m = median(t);
        std::printf("read every weight once (sum, 1 thread):  %8.2f ms  = %6.2f%% of a step  (%.1f GB/s; checksum %g)\n",
                    1e3 * m, 100.0 * m / train_s, 4e-9 * static_cast<double>(net.n_params()) / m,
                    static_cast<double>(sink));
    }
    double full_s = 0.0;
    for (const Mode &mode : modes) {
        npmk_monitor_options o;
        mlp::Monitor::check(npmk_monitor_options_init(&o), "npmk_monitor_options_init");
        o.sample_stride = mode.stride;
        o.sample_fraction = mode.fraction;
        mlp::Monitor monitor(jsonl, o);
        std::vector<double> t;
        npmk_step_report rep{};
        for (size_t r = 0; r <= monitor_reps; ++r) {
            const double s = measure(monitor, r + 1, rep);
            if (r > 0) t.push_back(s);  // the first step allocates the sketches
        }
        if (!std::isfinite(rep.k)) throw std::runtime_error(std::string(mode.label) + ": non-finite k");
        const double m = median(t);
        if (mode.stride == 0 && mode.fraction == 0.0) full_s = m;
        std::printf("monitor, %-14s (1 thread):      %8.2f ms  = %6.2f%% of a step  (k %.5f, se %.5f, %llu elements)\n",
                    mode.label, 1e3 * m, 100.0 * m / train_s, rep.k, rep.k_se,
                    static_cast<unsigned long long>(rep.n_usable));
    }

    // The weights are only written by the Adam update, so a second thread can measure the
    // weights of step t while the first runs forward and backward of step t+1: on a
    // machine with a spare core the monitor leaves the critical path. Plain and overlapped
    // steps alternate, so a change of machine load hits both; the median ratio is reported.
    {
        mlp::Monitor monitor(jsonl);
        std::vector<double> ratio;
        npmk_step_report rep{};
        uint64_t t_adam = train_reps + 2;
        for (size_t r = 0; r <= train_reps; ++r) {
            const auto t0 = clock::now();
            net.forward(x.data(), batch);
            net.backward(y.data());
            net.adam_step(adam, t_adam++);
            const auto t1 = clock::now();
            std::thread side([&] { measure(monitor, r + 1, rep); });
            net.forward(x.data(), batch);
            net.backward(y.data());
            side.join();
            net.adam_step(adam, t_adam++);
            const auto t2 = clock::now();
            if (r > 0) ratio.push_back(seconds(t1, t2) / seconds(t0, t1));
        }
        if (!std::isfinite(rep.k)) throw std::runtime_error("overlapped monitor: non-finite k");
        std::printf("training step with a full scan on a 2nd thread:  %+.2f%% wall time (the full scan alone: %.2f%%)\n",
                    100.0 * (median(ratio) - 1.0), 100.0 * full_s / train_s);
    }
    return 0;
} catch (const std::exception &e) {
    std::cerr << "bench_monitor: " << e.what() << "\n";
    return 1;
}
