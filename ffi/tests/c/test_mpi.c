/* MPI (C99, run on 4 ranks): each rank sketches a different shard of the same tensors, the
 * state arrays are summed with MPI_Allreduce(MPI_UINT64_T, MPI_SUM), and every rank's fit
 * equals the single-process fit of all the data bit for bit (rank 0's fit is broadcast and
 * compared on every rank). */
#include "common.h"

#include <mpi.h>

enum { TENSORS = 3 };

int main(int argc, char **argv) {
    static const int32_t dtypes[TENSORS] = {NPMK_DTYPE_F32, NPMK_DTYPE_BF16, NPMK_DTYPE_F16};
    double *w;
    npmk_sketch *local = NULL, *single = NULL, *reduced = NULL;
    uint64_t *words = NULL;
    size_t n_words = 0;
    npmk_fit fit_reduced[3], fit_single[3], fit_root[3];
    static const double lo[3] = {NPMK_TRIM_MID80_LO, NPMK_TRIM_MID90_LO, NPMK_TRIM_FULL_LO};
    static const double hi[3] = {NPMK_TRIM_MID80_HI, NPMK_TRIM_MID90_HI, NPMK_TRIM_FULL_HI};
    int rank = 0, size = 1, t, all_failures = 0;
    size_t i;

    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    CHECK(size == 4, "run on 4 ranks, not %d", size);

    /* Three tensors (the reference input in three dtypes); each rank takes a different,
     * uneven slice of each, and also sketches all of it as the single-process baseline. */
    w = half_normal_reference(REF_N);
    OK(npmk_sketch_new(&local));
    OK(npmk_sketch_new(&single));
    for (t = 0; t < TENSORS; t++) {
        size_t esize = dtypes[t] == NPMK_DTYPE_F32 ? 4 : 2;
        unsigned char *typed = (unsigned char *)malloc(REF_N * esize);
        size_t begin = (size_t)REF_N * (size_t)rank * (size_t)rank / (size_t)(size * size);
        size_t end =
            (size_t)REF_N * (size_t)(rank + 1) * (size_t)(rank + 1) / (size_t)(size * size);
        for (i = 0; i < REF_N; i++) {
            /* A different tensor per dtype: scale t + 1. */
            double v = w[i] * (double)(t + 1);
            if (dtypes[t] == NPMK_DTYPE_F32) {
                float f = (float)v;
                memcpy(typed + 4 * i, &f, 4);
            } else {
                uint16_t c =
                    dtypes[t] == NPMK_DTYPE_BF16 ? bf16_of_f32((float)v) : f16_of_double(v);
                memcpy(typed + 2 * i, &c, 2);
            }
        }
        OK(npmk_sketch_push(local, dtypes[t], typed + begin * esize, end - begin));
        OK(npmk_sketch_push(single, dtypes[t], typed, REF_N));
        free(typed);
    }

    /* The all-reduce, in place on the local sketch's state. */
    OK(npmk_sketch_state(local, &words, &n_words));
    CHECK(n_words == NPMK_STATE_WORDS, "n_words %zu", n_words);
    CHECK(MPI_Allreduce(MPI_IN_PLACE, words, (int)n_words, MPI_UINT64_T, MPI_SUM,
                        MPI_COMM_WORLD) == MPI_SUCCESS,
          "MPI_Allreduce failed");
    OK(npmk_sketch_from_state(words, n_words, &reduced));
    CHECK(reduced && same_state(reduced, single), "rank %d: reduced state differs", rank);

    for (t = 0; t < 3; t++) {
        OK(npmk_sketch_fit(local, lo[t], hi[t], &fit_reduced[t]));
        OK(npmk_sketch_fit(single, lo[t], hi[t], &fit_single[t]));
        CHECK(same_fit(&fit_reduced[t], &fit_single[t]), "rank %d trim %d: k %.17g vs %.17g",
              rank, t, fit_reduced[t].k, fit_single[t].k);
        fit_root[t] = fit_reduced[t];
    }
    /* Every rank agrees with rank 0 to the bit. */
    MPI_Bcast(fit_root, (int)sizeof fit_root, MPI_BYTE, 0, MPI_COMM_WORLD);
    for (t = 0; t < 3; t++) {
        CHECK(same_fit(&fit_reduced[t], &fit_root[t]), "rank %d trim %d differs from rank 0",
              rank, t);
    }

    MPI_Allreduce(&failures, &all_failures, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    if (rank == 0) {
        if (all_failures) {
            fprintf(stderr, "test_mpi: %d check(s) failed across %d ranks\n", all_failures, size);
        } else {
            printf("test_mpi: %d ranks, all-reduced fits equal the single-process fit "
                   "(mid-80 k %.9f)\n", size, fit_root[0].k);
        }
    }
    npmk_sketch_free(local);
    npmk_sketch_free(single);
    npmk_sketch_free(reduced);
    free(w);
    MPI_Finalize();
    return all_failures ? 1 : 0;
}
