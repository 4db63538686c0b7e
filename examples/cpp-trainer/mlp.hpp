// A small multi-layer perceptron trained from scratch (Gaussian init, Adam,
// softmax cross-entropy), a hand-written safetensors writer and a thin RAII
// wrapper over the npmk monitor. Shared by trainer.cpp and bench_monitor.cpp.
//
// Weights use the Hugging Face layout: W is [out, in], row-major, y = x W^T + b.
#pragma once

#include <npmk.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace mlp {

// xoshiro256** seeded by splitmix64, and our own Box-Muller: std::normal_distribution
// is implementation-defined, and the run must be identical on every platform.
class Rng {
public:
    explicit Rng(uint64_t seed) {
        for (auto &word : s_) {
            seed += 0x9E3779B97F4A7C15ULL;
            uint64_t z = seed;
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
            word = z ^ (z >> 31);
        }
    }
    uint64_t next() {
        const uint64_t result = rotl(s_[1] * 5, 7) * 9;
        const uint64_t t = s_[1] << 17;
        s_[2] ^= s_[0];
        s_[3] ^= s_[1];
        s_[1] ^= s_[2];
        s_[0] ^= s_[3];
        s_[2] ^= t;
        s_[3] = rotl(s_[3], 45);
        return result;
    }
    // Uniform in [0, 1) with 53 random bits.
    double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
    // Uniform integer in [0, n), n > 0 (the bias of a plain modulo is < 2^-40 here).
    size_t below(size_t n) { return static_cast<size_t>(next() % n); }
    double normal() {
        if (have_spare_) {
            have_spare_ = false;
            return spare_;
        }
        double u1 = uniform();
        while (u1 <= 0.0) u1 = uniform();
        const double r = std::sqrt(-2.0 * std::log(u1));
        const double theta = 6.283185307179586 * uniform();  // 2 pi
        spare_ = r * std::sin(theta);
        have_spare_ = true;
        return r * std::cos(theta);
    }
    template <class T> void shuffle(std::vector<T> &v) {
        for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[below(i)]);
    }

private:
    static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
    uint64_t s_[4];
    double spare_ = 0.0;
    bool have_spare_ = false;
};

struct Adam {
    float lr = 1e-3f, beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f;
};

// One parameter tensor with its gradient and Adam moments.
struct Param {
    std::string name;
    std::vector<int64_t> shape;
    std::vector<float> value, grad, m, v;

    Param(std::string n, std::vector<int64_t> s) : name(std::move(n)), shape(std::move(s)) {
        size_t count = 1;
        for (int64_t d : shape) count *= static_cast<size_t>(d);
        value.assign(count, 0.0f);
        grad.assign(count, 0.0f);
        m.assign(count, 0.0f);
        v.assign(count, 0.0f);
    }
    size_t size() const { return value.size(); }

    void adam_update(const Adam &opt, uint64_t t) {
        // Bias corrections folded into the step size, as in Kingma & Ba, section 2.
        const double c1 = 1.0 - std::pow(static_cast<double>(opt.beta1), static_cast<double>(t));
        const double c2 = 1.0 - std::pow(static_cast<double>(opt.beta2), static_cast<double>(t));
        const float step = static_cast<float>(opt.lr * std::sqrt(c2) / c1);
        const float b1 = opt.beta1, b2 = opt.beta2, eps = opt.eps;
        float *w = value.data(), *g = grad.data(), *mm = m.data(), *vv = v.data();
        const size_t n = size();
        for (size_t i = 0; i < n; ++i) {
            mm[i] = b1 * mm[i] + (1.0f - b1) * g[i];
            vv[i] = b2 * vv[i] + (1.0f - b2) * g[i] * g[i];
            w[i] -= step * mm[i] / (std::sqrt(vv[i]) + eps);
        }
    }
};

// y = x W^T + b, with W stored [out, in].
struct Linear {
    size_t in, out;
    Param weight, bias;

    Linear(const std::string &prefix, size_t in_features, size_t out_features)
        : in(in_features), out(out_features),
          weight(prefix + ".weight", {static_cast<int64_t>(out_features), static_cast<int64_t>(in_features)}),
          bias(prefix + ".bias", {static_cast<int64_t>(out_features)}) {}

    // He initialisation, N(0, 2/in): keeps ReLU activations at unit scale; biases start at zero.
    void init(Rng &rng) {
        const double sd = std::sqrt(2.0 / static_cast<double>(in));
        for (float &w : weight.value) w = static_cast<float>(sd * rng.normal());
    }

    // Y[b, o] = bias[o] + X[b, :] . W[o, :]. Output-row outer loop so each W row stays
    // in L1 across the batch; the reduction is vectorised through the OpenMP SIMD pragma
    // (deterministic for a given build, unlike -ffast-math across the whole program).
    void forward(const float *X, size_t batch, float *Y) const {
        const float *W = weight.value.data();
        for (size_t o = 0; o < out; ++o) {
            const float *w = W + o * in;
            for (size_t b = 0; b < batch; ++b) {
                const float *x = X + b * in;
                float s = 0.0f;
#pragma omp simd reduction(+ : s)
                for (size_t i = 0; i < in; ++i) s += x[i] * w[i];
                Y[b * out + o] = s + bias.value[o];
            }
        }
    }

    // Given dY [batch, out] and the layer input X, sets the parameter gradients and,
    // if dX is not null, writes dX [batch, in] = dY W.
    void backward(const float *X, const float *dY, size_t batch, float *dX) {
        float *gW = weight.grad.data();
        const float *W = weight.value.data();
        if (dX) std::fill(dX, dX + batch * in, 0.0f);
        for (size_t o = 0; o < out; ++o) {
            float *gw = gW + o * in;
            const float *w = W + o * in;
            std::fill(gw, gw + in, 0.0f);
            float gb = 0.0f;
            for (size_t b = 0; b < batch; ++b) {
                const float d = dY[b * out + o];
                gb += d;
                const float *x = X + b * in;
#pragma omp simd
                for (size_t i = 0; i < in; ++i) gw[i] += d * x[i];
                if (dX) {
                    float *dx = dX + b * in;
#pragma omp simd
                    for (size_t i = 0; i < in; ++i) dx[i] += d * w[i];
                }
            }
            bias.grad[o] = gb;
        }
    }
};

// A chain of Linear layers with ReLU between them and softmax cross-entropy on top.
class Net {
public:
    std::vector<Linear> layers;

    // dims = {input, hidden..., classes}; names[i] is the HF-style prefix of layer i.
    Net(const std::vector<size_t> &dims, const std::vector<std::string> &names) {
        if (dims.size() != names.size() + 1) throw std::invalid_argument("Net: dims/names mismatch");
        for (size_t i = 0; i + 1 < dims.size(); ++i) layers.emplace_back(names[i], dims[i], dims[i + 1]);
    }

    void init(Rng &rng) {
        for (auto &l : layers) l.init(rng);
    }

    size_t n_params() const {
        size_t n = 0;
        for (const auto &l : layers) n += l.weight.size() + l.bias.size();
        return n;
    }

    // Every parameter tensor, weights then biases per layer, in model order.
    std::vector<Param *> params() {
        std::vector<Param *> p;
        for (auto &l : layers) {
            p.push_back(&l.weight);
            p.push_back(&l.bias);
        }
        return p;
    }

    // Forward pass over a batch; keeps the activations for backward().
    // Returns a pointer to the logits [batch, classes].
    const float *forward(const float *X, size_t batch) {
        batch_ = batch;
        acts_.resize(layers.size() + 1);
        acts_[0].assign(X, X + batch * layers.front().in);
        for (size_t l = 0; l < layers.size(); ++l) {
            acts_[l + 1].resize(batch * layers[l].out);
            layers[l].forward(acts_[l].data(), batch, acts_[l + 1].data());
            if (l + 1 < layers.size())
                for (float &a : acts_[l + 1]) a = a > 0.0f ? a : 0.0f;
        }
        return acts_.back().data();
    }

    // Mean softmax cross-entropy of the last forward() against labels; backpropagates
    // through every layer, leaving the gradients in the Params.
    double backward(const int *labels) {
        const size_t C = layers.back().out, B = batch_;
        std::vector<float> d(B * C);
        const float *z = acts_.back().data();
        double loss = 0.0;
        for (size_t b = 0; b < B; ++b) {
            const float *zb = z + b * C;
            const float zmax = *std::max_element(zb, zb + C);
            double sum = 0.0;
            for (size_t c = 0; c < C; ++c) sum += std::exp(static_cast<double>(zb[c] - zmax));
            loss += std::log(sum) - static_cast<double>(zb[labels[b]] - zmax);
            for (size_t c = 0; c < C; ++c) {
                const double p = std::exp(static_cast<double>(zb[c] - zmax)) / sum;
                d[b * C + c] = static_cast<float>((p - (static_cast<int>(c) == labels[b] ? 1.0 : 0.0)) / B);
            }
        }
        std::vector<float> dprev;
        for (size_t l = layers.size(); l-- > 0;) {
            Linear &L = layers[l];
            if (l > 0) dprev.resize(B * L.in);
            L.backward(acts_[l].data(), d.data(), B, l > 0 ? dprev.data() : nullptr);
            if (l > 0) {
                // ReLU derivative: the stored post-activation is > 0 exactly where it passed.
                const float *a = acts_[l].data();
                for (size_t i = 0; i < dprev.size(); ++i)
                    if (a[i] <= 0.0f) dprev[i] = 0.0f;
                d.swap(dprev);
            }
        }
        return loss / static_cast<double>(B);
    }

    void adam_step(const Adam &opt, uint64_t t) {
        for (Param *p : params()) p->adam_update(opt, t);
    }

    // Argmax predictions for n rows of X, evaluated in chunks.
    std::vector<int> predict(const float *X, size_t n) {
        std::vector<int> out(n);
        const size_t C = layers.back().out, in = layers.front().in, chunk = 256;
        for (size_t s = 0; s < n; s += chunk) {
            const size_t b = std::min(chunk, n - s);
            const float *z = forward(X + s * in, b);
            for (size_t i = 0; i < b; ++i)
                out[s + i] = static_cast<int>(std::max_element(z + i * C, z + (i + 1) * C) - (z + i * C));
        }
        return out;
    }

private:
    size_t batch_ = 0;
    std::vector<std::vector<float>> acts_;
};

// f32 -> bf16 with round-to-nearest-even; NaN stays a (quiet) NaN.
inline uint16_t f32_to_bf16(float f) {
    uint32_t bits;
    std::memcpy(&bits, &f, 4);
    if ((bits & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<uint16_t>((bits >> 16) | 0x0040u);
    bits += 0x7FFFu + ((bits >> 16) & 1u);
    return static_cast<uint16_t>(bits >> 16);
}

inline float bf16_to_f32(uint16_t h) {
    const uint32_t bits = static_cast<uint32_t>(h) << 16;
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
}

// One tensor for write_safetensors: raw little-endian bytes plus its header fields.
struct StTensor {
    std::string name, dtype;  // "F32" or "BF16"
    std::vector<int64_t> shape;
    std::vector<unsigned char> bytes;
};

inline StTensor st_f32(const Param &p) {
    StTensor t{p.name, "F32", p.shape, {}};
    t.bytes.resize(p.size() * 4);
    for (size_t i = 0; i < p.size(); ++i) {
        uint32_t u;
        std::memcpy(&u, &p.value[i], 4);
        for (int k = 0; k < 4; ++k) t.bytes[4 * i + k] = static_cast<unsigned char>(u >> (8 * k));
    }
    return t;
}

inline StTensor st_bf16(const Param &p, const std::vector<uint16_t> &h) {
    StTensor t{p.name, "BF16", p.shape, {}};
    t.bytes.resize(h.size() * 2);
    for (size_t i = 0; i < h.size(); ++i) {
        t.bytes[2 * i] = static_cast<unsigned char>(h[i]);
        t.bytes[2 * i + 1] = static_cast<unsigned char>(h[i] >> 8);
    }
    return t;
}

// safetensors: u64 LE header length, a JSON header (name -> dtype, shape, data_offsets
// relative to the end of the header) padded with spaces to a multiple of 8 so the data
// is aligned, then the tensors' bytes back to back. Written to a temporary name and
// renamed, so a reader never sees a half-written checkpoint.
inline void write_safetensors(const std::string &path, const std::vector<StTensor> &tensors,
                              const std::vector<std::pair<std::string, std::string>> &metadata) {
    std::string h = "{";
    if (!metadata.empty()) {
        h += "\"__metadata__\":{";
        for (size_t i = 0; i < metadata.size(); ++i)
            h += (i ? "," : "") + ("\"" + metadata[i].first + "\":\"" + metadata[i].second + "\"");
        h += "}";
    }
    uint64_t offset = 0;
    for (const auto &t : tensors) {
        if (h.size() > 1) h += ",";
        h += "\"" + t.name + "\":{\"dtype\":\"" + t.dtype + "\",\"shape\":[";
        for (size_t i = 0; i < t.shape.size(); ++i) h += (i ? "," : "") + std::to_string(t.shape[i]);
        h += "],\"data_offsets\":[" + std::to_string(offset) + "," + std::to_string(offset + t.bytes.size()) + "]}";
        offset += t.bytes.size();
    }
    h += "}";
    while (h.size() % 8 != 0) h += ' ';

    const std::string tmp = path + ".part";
    {
        std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
        if (!f) throw std::runtime_error("cannot create " + tmp);
        unsigned char len[8];
        for (int k = 0; k < 8; ++k) len[k] = static_cast<unsigned char>(static_cast<uint64_t>(h.size()) >> (8 * k));
        f.write(reinterpret_cast<const char *>(len), 8);
        f.write(h.data(), static_cast<std::streamsize>(h.size()));
        for (const auto &t : tensors)
            f.write(reinterpret_cast<const char *>(t.bytes.data()), static_cast<std::streamsize>(t.bytes.size()));
        if (!f.flush()) throw std::runtime_error("write failed: " + tmp);
    }
    if (std::rename(tmp.c_str(), path.c_str()) != 0) throw std::runtime_error("cannot rename " + tmp + " to " + path);
}

// RAII owner of an npmk_monitor; every failing call throws with npmk's own message.
class Monitor {
public:
    // Default options: full scan, pooled and per-class fits; the file is truncated.
    explicit Monitor(const std::string &jsonl_path) { check(npmk_monitor_new(jsonl_path.c_str(), &m_), "npmk_monitor_new"); }
    Monitor(const std::string &jsonl_path, const npmk_monitor_options &options) {
        check(npmk_monitor_new_with_options(jsonl_path.c_str(), &options, &m_), "npmk_monitor_new_with_options");
    }
    ~Monitor() { npmk_monitor_free(m_); }
    Monitor(const Monitor &) = delete;
    Monitor &operator=(const Monitor &) = delete;

    void begin_step(uint64_t step) { check(npmk_monitor_begin_step(m_, step), "npmk_monitor_begin_step"); }
    void push(const std::string &name, int32_t dtype, const void *data, size_t n) {
        check(npmk_monitor_push(m_, name.c_str(), dtype, data, n), "npmk_monitor_push");
    }
    npmk_step_report end_step() {
        npmk_step_report r;
        check(npmk_monitor_end_step(m_, &r), "npmk_monitor_end_step");
        return r;
    }
    npmk_monitor *raw() { return m_; }

    static void check(int32_t status, const char *what) {
        if (status == NPMK_OK) return;
        const char *msg = npmk_last_error_message();
        throw std::runtime_error(std::string(what) + " failed (status " + std::to_string(status) +
                                 "): " + (msg ? msg : "(no message)"));
    }

private:
    npmk_monitor *m_ = nullptr;
};

}  // namespace mlp
