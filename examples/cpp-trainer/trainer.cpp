// Train an MLP on scikit-learn's 8x8 digits and log NPM-k at every step through the
// npmk C ABI; optionally save safetensors checkpoints at chosen steps.
//
//   trainer --data fixtures/digits/digits.csv --jsonl run.jsonl
//           [--steps 3000] [--batch 32] [--lr 1e-3] [--hidden 128] [--width 64] [--seed 1]
//           [--save-steps 1,2,4,... --save-dir DIR] [--push-dtype f32|bf16] [--per-tensor]
//           [--quiet]
//
// Model (HF LLaMA-style names so npmk's role tables class the matrices as feed-forward):
//   model.layers.0.mlp.up_proj    64 -> hidden      ReLU
//   model.layers.0.mlp.down_proj  hidden -> width   ReLU
//   model.layers.1.mlp.up_proj    width -> hidden   ReLU
//   model.layers.1.mlp.down_proj  hidden -> width   ReLU
//   lm_head                       width -> 10       softmax cross-entropy
// Every tensor (.weight and .bias) is pushed every step; npmk excludes the biases and
// the head by its default policy. Step t means "the weights after t Adam updates", so
// the log starts at step 1 (log10 of the step is the NPM time axis) and a checkpoint
// saved at step t holds exactly the bytes the monitor saw at step t.
#include "mlp.hpp"

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <set>
#include <sstream>
#include <sys/stat.h>

namespace {

struct Options {
    std::string data = "fixtures/digits/digits.csv";
    std::string jsonl;
    std::string save_dir;
    std::set<uint64_t> save_steps;
    uint64_t steps = 3000, seed = 1;
    size_t batch = 32, hidden = 128, width = 64;
    float lr = 1e-3f;
    bool bf16 = false, per_tensor = false, quiet = false;
};

[[noreturn]] void usage(const std::string &why) {
    std::cerr << "trainer: " << why << "\n"
              << "usage: trainer --jsonl PATH [--data CSV] [--steps N] [--batch N] [--lr X]\n"
                 "               [--hidden N] [--width N] [--seed N] [--save-steps a,b,c --save-dir DIR]\n"
                 "               [--push-dtype f32|bf16] [--per-tensor] [--quiet]\n";
    std::exit(2);
}

uint64_t parse_u64(const std::string &flag, const std::string &s) {
    if (s.empty() || s.find_first_not_of("0123456789") != std::string::npos) usage(flag + ": not a non-negative integer: " + s);
    try {
        return std::stoull(s);
    } catch (const std::exception &) {
        usage(flag + ": out of range: " + s);
    }
}

Options parse(int argc, char **argv) {
    Options o;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) usage(a + " needs a value");
            return argv[++i];
        };
        if (a == "--data") o.data = value();
        else if (a == "--jsonl") o.jsonl = value();
        else if (a == "--steps") o.steps = parse_u64(a, value());
        else if (a == "--batch") o.batch = parse_u64(a, value());
        else if (a == "--hidden") o.hidden = parse_u64(a, value());
        else if (a == "--width") o.width = parse_u64(a, value());
        else if (a == "--seed") o.seed = parse_u64(a, value());
        else if (a == "--save-dir") o.save_dir = value();
        else if (a == "--quiet") o.quiet = true;
        else if (a == "--per-tensor") o.per_tensor = true;
        else if (a == "--lr") {
            const std::string v = value();
            char *end = nullptr;
            o.lr = std::strtof(v.c_str(), &end);
            if (end == v.c_str() || *end != '\0' || !(o.lr > 0.0f)) usage("--lr: not a positive number: " + v);
        } else if (a == "--push-dtype") {
            const std::string v = value();
            if (v != "f32" && v != "bf16") usage("--push-dtype must be f32 or bf16");
            o.bf16 = v == "bf16";
        } else if (a == "--save-steps") {
            std::stringstream ss(value());
            std::string item;
            while (std::getline(ss, item, ',')) o.save_steps.insert(parse_u64(a, item));
        } else usage("unknown argument " + a);
    }
    if (o.jsonl.empty()) usage("--jsonl is required");
    if (o.steps == 0 || o.batch == 0 || o.hidden == 0 || o.width == 0) usage("--steps, --batch, --hidden, --width must be > 0");
    if (!o.save_steps.empty() && o.save_dir.empty()) usage("--save-steps needs --save-dir");
    for (uint64_t s : o.save_steps)
        if (s < 1 || s > o.steps) usage("--save-steps: step " + std::to_string(s) + " is outside 1.." + std::to_string(o.steps));
    return o;
}

struct Dataset {
    std::vector<float> x;  // [n, 64], pixel / 16
    std::vector<int> y;
    size_t n = 0;
};

// 1797 lines of 64 pixel counts (0..16) and a label (0..9); anything else is an error.
Dataset load_digits(const std::string &path) {
    std::ifstream f(path);
    if (!f) throw std::runtime_error("cannot open " + path + " (run examples/cpp-trainer/fetch-digits.sh)");
    Dataset d;
    std::string line;
    size_t lineno = 0;
    while (std::getline(f, line)) {
        ++lineno;
        if (line.empty()) continue;
        std::stringstream ss(line);
        std::string cell;
        std::vector<int> v;
        while (std::getline(ss, cell, ',')) {
            char *end = nullptr;
            const long x = std::strtol(cell.c_str(), &end, 10);
            if (end == cell.c_str() || (*end != '\0' && *end != '\r') || x < 0 || x > 16)
                throw std::runtime_error(path + ":" + std::to_string(lineno) + ": bad value '" + cell + "'");
            v.push_back(static_cast<int>(x));
        }
        if (v.size() != 65 || v[64] > 9)
            throw std::runtime_error(path + ":" + std::to_string(lineno) + ": expected 64 pixels and a label 0..9");
        for (int i = 0; i < 64; ++i) d.x.push_back(static_cast<float>(v[i]) / 16.0f);
        d.y.push_back(v[64]);
        ++d.n;
    }
    if (d.n < 100) throw std::runtime_error(path + ": only " + std::to_string(d.n) + " rows");
    return d;
}

Dataset subset(const Dataset &d, const std::vector<size_t> &idx) {
    Dataset s;
    for (size_t i : idx) {
        s.x.insert(s.x.end(), d.x.begin() + i * 64, d.x.begin() + (i + 1) * 64);
        s.y.push_back(d.y[i]);
    }
    s.n = idx.size();
    return s;
}

double accuracy(mlp::Net &net, const Dataset &d) {
    const std::vector<int> pred = net.predict(d.x.data(), d.n);
    size_t ok = 0;
    for (size_t i = 0; i < d.n; ++i) ok += pred[i] == d.y[i];
    return static_cast<double>(ok) / static_cast<double>(d.n);
}

void make_dir(const std::string &p) {
    if (mkdir(p.c_str(), 0777) != 0 && errno != EEXIST) throw std::runtime_error("cannot create directory " + p);
}

bool is_pow2(uint64_t x) { return x && !(x & (x - 1)); }

}  // namespace

int main(int argc, char **argv) try {
    const Options opt = parse(argc, argv);
    using clock = std::chrono::steady_clock;

    // Deterministic 80/20 split of the 1797 images.
    const Dataset all = load_digits(opt.data);
    mlp::Rng rng(opt.seed);
    std::vector<size_t> order(all.n);
    for (size_t i = 0; i < all.n; ++i) order[i] = i;
    rng.shuffle(order);
    const size_t n_test = all.n / 5;
    const Dataset test = subset(all, std::vector<size_t>(order.begin(), order.begin() + n_test));
    const Dataset train = subset(all, std::vector<size_t>(order.begin() + n_test, order.end()));

    mlp::Net net({64, opt.hidden, opt.width, opt.hidden, opt.width, 10},
                 {"model.layers.0.mlp.up_proj", "model.layers.0.mlp.down_proj", "model.layers.1.mlp.up_proj",
                  "model.layers.1.mlp.down_proj", "lm_head"});
    net.init(rng);
    mlp::Adam adam;
    adam.lr = opt.lr;
    const std::vector<mlp::Param *> params = net.params();

    npmk_monitor_options mopt;
    mlp::Monitor::check(npmk_monitor_options_init(&mopt), "npmk_monitor_options_init");
    mopt.per_tensor = opt.per_tensor;  // adds a "tensors" array (each tensor's own fit) to every line
    mlp::Monitor monitor(opt.jsonl, mopt);
    if (!opt.save_dir.empty()) make_dir(opt.save_dir);
    if (!opt.quiet)
        std::cout << "digits: " << train.n << " train, " << test.n << " test; " << net.n_params() << " parameters; "
                  << opt.steps << " steps of batch " << opt.batch << "; monitor dtype " << (opt.bf16 ? "bf16" : "f32")
                  << "\n";

    std::vector<size_t> perm(train.n);
    for (size_t i = 0; i < train.n; ++i) perm[i] = i;
    rng.shuffle(perm);
    size_t cursor = 0;
    std::vector<float> xb(opt.batch * 64);
    std::vector<int> yb(opt.batch);
    std::vector<std::vector<uint16_t>> half(params.size());
    double train_s = 0.0, monitor_s = 0.0, loss = 0.0;
    npmk_step_report report{};

    for (uint64_t step = 1; step <= opt.steps; ++step) {
        const auto t0 = clock::now();
        for (size_t b = 0; b < opt.batch; ++b) {
            if (cursor == train.n) {  // new epoch, new order
                rng.shuffle(perm);
                cursor = 0;
            }
            const size_t i = perm[cursor++];
            std::copy(train.x.begin() + i * 64, train.x.begin() + (i + 1) * 64, xb.begin() + b * 64);
            yb[b] = train.y[i];
        }
        net.forward(xb.data(), opt.batch);
        loss = net.backward(yb.data());
        net.adam_step(adam, step);
        const auto t1 = clock::now();

        // Measure every tensor of the model as it stands after this update.
        monitor.begin_step(step);
        for (size_t p = 0; p < params.size(); ++p) {
            const mlp::Param &P = *params[p];
            if (opt.bf16) {
                half[p].resize(P.size());
                for (size_t i = 0; i < P.size(); ++i) half[p][i] = mlp::f32_to_bf16(P.value[i]);
                monitor.push(P.name, NPMK_DTYPE_BF16, half[p].data(), P.size());
            } else {
                monitor.push(P.name, NPMK_DTYPE_F32, P.value.data(), P.size());
            }
        }
        report = monitor.end_step();
        const auto t2 = clock::now();
        train_s += std::chrono::duration<double>(t1 - t0).count();
        monitor_s += std::chrono::duration<double>(t2 - t1).count();

        if (opt.save_steps.count(step)) {
            std::vector<mlp::StTensor> ts;
            for (size_t p = 0; p < params.size(); ++p)
                ts.push_back(opt.bf16 ? mlp::st_bf16(*params[p], half[p]) : mlp::st_f32(*params[p]));
            const std::string dir = opt.save_dir + "/step" + std::to_string(step);
            make_dir(dir);
            mlp::write_safetensors(dir + "/model.safetensors", ts,
                                   {{"format", "pt"}, {"step", std::to_string(step)}});
        }
        if (!opt.quiet && ((is_pow2(step) && step >= 64) || step == opt.steps)) {
            std::printf("step %6llu  loss %.4f  test_acc %.4f  k %.5f  dk %+.4f  d2k %+.4f  phase %d\n",
                        static_cast<unsigned long long>(step), loss, accuracy(net, test), report.k, report.dk,
                        report.d2k, static_cast<int>(report.phase));
        }
    }

    const double train_acc = accuracy(net, train), test_acc = accuracy(net, test);
    std::printf("result: steps=%llu train_acc=%.4f test_acc=%.4f final_loss=%.4f final_k=%.6f "
                "train_s=%.3f monitor_s=%.3f monitor_us_per_step=%.1f monitor_share=%.2f%%\n",
                static_cast<unsigned long long>(opt.steps), train_acc, test_acc, loss, report.k, train_s, monitor_s,
                1e6 * monitor_s / static_cast<double>(opt.steps), 100.0 * monitor_s / train_s);
    return 0;
} catch (const std::exception &e) {
    std::cerr << "trainer: " << e.what() << "\n";
    return 1;
}
