// Links against an installed npmk (CMake package or pkg-config) and fits one Gaussian matrix.
#include <npmk.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <vector>

int main() {
    if (std::strcmp(npmk_version(), NPMK_VERSION_STRING) != 0) {
        std::fprintf(stderr, "smoke: library %s, header %s\n", npmk_version(), NPMK_VERSION_STRING);
        return 1;
    }
    // 2^20 weights w_i = 0.02 * sqrt(-2 ln u) cos(2 pi v) on a low-discrepancy grid.
    std::vector<float> w(1 << 20);
    for (size_t i = 0; i < w.size(); i++) {
        double u = (static_cast<double>(i) + 0.5) / static_cast<double>(w.size());
        double v = std::fmod(static_cast<double>(i) * 0.6180339887498949, 1.0);
        double g = std::sqrt(-2.0 * std::log(u)) * std::cos(6.283185307179586 * v);
        w[i] = static_cast<float>(0.02 * g);
    }
    npmk_sketch *s = nullptr;
    npmk_fit fit{};
    if (npmk_sketch_new(&s) != NPMK_OK ||
        npmk_sketch_push(s, NPMK_DTYPE_F32, w.data(), w.size()) != NPMK_OK ||
        npmk_sketch_fit(s, NPMK_TRIM_MID80_LO, NPMK_TRIM_MID80_HI, &fit) != NPMK_OK) {
        std::fprintf(stderr, "smoke: %s\n", npmk_last_error_message());
        npmk_sketch_free(s);
        return 1;
    }
    npmk_sketch_free(s);
    // A Gaussian matrix reads the Gaussian anchor, 1.2054, to within its sampling noise.
    if (std::fabs(fit.k - 1.2054) > 0.01) {
        std::fprintf(stderr, "smoke: k = %f\n", fit.k);
        return 1;
    }
    std::printf("smoke: npmk %s, k = %.4f\n", npmk_version(), fit.k);
    return 0;
}
