/* matmul.cu — batched SGEMM, bit-exact with the CPU reference.
 *
 * Every output is acc = +0.0; for k ascending: acc = fmaf(a[i,k], b[k,j], acc).
 * A block of 256 threads computes a BM x BN tile of C; each thread owns
 * TM x TN outputs and keeps their accumulators in registers across ALL
 * k-tiles (BK = 8 wide), so k is walked in ascending order with one fmaf per
 * step and never split. A and B tiles are staged through shared memory
 * (double-buffered: the next tile is fetched into registers while the current
 * one is used). The last k-tile runs only its valid steps: padding k with
 * zeros would not be exact (fma(0, 0, -0) is +0).
 *
 * Operands: A is [M, K] (or [K, M] with TA), B is [K, N] (or [N, K] with TB),
 * per batch; batch offsets come from AssayBatch (broadcast strides, 0 =
 * broadcast). C is [batch, M, N] contiguous.
 */

#define MM_BK 8
#define MM_THREADS 256

/* Batch dimensions (coalesced, row-major) and the element strides of A and B
 * over them. Layout matches `StridedDims`. */
static __device__ __forceinline__ void assay_batch_offsets(const StridedDims &d, u64 z, i64 *oa, i64 *ob) {
    assay_offsets(d, z, oa, ob);
}

template <int BM, int BN, int TM, int TN, bool TA, bool TB>
static __device__ __forceinline__ void assay_sgemm(const float *__restrict__ A, const float *__restrict__ B,
                                                   float *__restrict__ C, i64 M, i64 N, i64 K, StridedDims batch,
                                                   u64 batches, i64 base_a, i64 base_b, i64 base_c) {
    /* elements of the A and B tiles each thread loads per k-tile */
    const int EA = BM * MM_BK / MM_THREADS;
    const int EB = BN * MM_BK / MM_THREADS;
    __shared__ __align__(16) float As[2][MM_BK][BM + 4];
    __shared__ __align__(16) float Bs[2][MM_BK][BN + 4];

    const int tid = threadIdx.x;
    const int tx = tid % (BN / TN);
    const int ty = tid / (BN / TN);

    /* which tile elements this thread loads (see the header comment) */
    int a_r, a_c, b_r, b_c;
    if (!TA) { /* A rows contiguous along k: rows x (BK/EA) loaders */
        a_r = tid / (MM_BK / EA);
        a_c = (tid % (MM_BK / EA)) * EA;
    } else { /* A^T rows contiguous along m */
        a_r = tid / (BM / EA);
        a_c = (tid % (BM / EA)) * EA;
    }
    if (!TB) { /* B rows contiguous along n */
        b_r = tid / (BN / EB);
        b_c = (tid % (BN / EB)) * EB;
    } else { /* B^T rows contiguous along k */
        b_r = tid / (MM_BK / EB);
        b_c = (tid % (MM_BK / EB)) * EB;
    }

    const i64 tiles_m = (M + BM - 1) / BM;
    const i64 tiles_n = (N + BN - 1) / BN;
    const i64 k_tiles = (K + MM_BK - 1) / MM_BK;

    for (u64 z = blockIdx.z; z < batches; z += gridDim.z) {
        i64 oa, ob;
        assay_batch_offsets(batch, z, &oa, &ob);
        const float *Ab = A + base_a + oa;
        const float *Bb = B + base_b + ob;
        float *Cb = C + base_c + (i64)z * M * N;
        for (i64 tm = blockIdx.y; tm < tiles_m; tm += gridDim.y) {
            for (i64 tn = blockIdx.x; tn < tiles_n; tn += gridDim.x) {
                const i64 m0 = tm * BM;
                const i64 n0 = tn * BN;
                float acc[TM][TN];
#pragma unroll
                for (int i = 0; i < TM; ++i)
#pragma unroll
                    for (int j = 0; j < TN; ++j)
                        acc[i][j] = 0.0f;

                float ra[EA], rb[EB];
                /* fetch k-tile kt of A and B into registers (zeros outside the matrices) */
#define ASSAY_MM_FETCH(kt)                                                                  \
    do {                                                                                    \
        const i64 k0 = (i64)(kt) * MM_BK;                                                   \
        _Pragma("unroll") for (int q = 0; q < EA; ++q) {                                    \
            i64 row, kk;                                                                    \
            if (!TA) { row = m0 + a_r; kk = k0 + a_c + q; }                                 \
            else { kk = k0 + a_r; row = m0 + a_c + q; }                                     \
            ra[q] = (row < M && kk < K) ? (TA ? Ab[kk * M + row] : Ab[row * K + kk]) : 0.0f; \
        }                                                                                   \
        _Pragma("unroll") for (int q = 0; q < EB; ++q) {                                    \
            i64 col, kk;                                                                    \
            if (!TB) { kk = k0 + b_r; col = n0 + b_c + q; }                                 \
            else { col = n0 + b_r; kk = k0 + b_c + q; }                                     \
            rb[q] = (col < N && kk < K) ? (TB ? Bb[col * K + kk] : Bb[kk * N + col]) : 0.0f; \
        }                                                                                   \
    } while (0)
                /* store the fetched registers as shared buffer `buf`: As[k][m], Bs[k][n] */
#define ASSAY_MM_STORE(buf)                                                                 \
    do {                                                                                    \
        _Pragma("unroll") for (int q = 0; q < EA; ++q) {                                    \
            if (!TA) As[buf][a_c + q][a_r] = ra[q];                                         \
            else As[buf][a_r][a_c + q] = ra[q];                                             \
        }                                                                                   \
        _Pragma("unroll") for (int q = 0; q < EB; ++q) {                                    \
            if (!TB) Bs[buf][b_r][b_c + q] = rb[q];                                         \
            else Bs[buf][b_c + q][b_r] = rb[q];                                             \
        }                                                                                   \
    } while (0)

                if (k_tiles > 0) {
                    ASSAY_MM_FETCH(0);
                    ASSAY_MM_STORE(0);
                }
                __syncthreads();
                for (i64 kt = 0; kt < k_tiles; ++kt) {
                    const int cur = (int)(kt & 1);
                    const bool more = kt + 1 < k_tiles;
                    if (more) {
                        ASSAY_MM_FETCH(kt + 1);
                    }
                    const i64 left = K - kt * MM_BK;
                    const int steps = left < MM_BK ? (int)left : MM_BK;
                    if (steps == MM_BK) {
#pragma unroll
                        for (int k = 0; k < MM_BK; ++k) {
                            float a[TM], b[TN];
#pragma unroll
                            for (int i = 0; i < TM; ++i)
                                a[i] = As[cur][k][i < TM / 2 ? ty * (TM / 2) + i : BM / 2 + ty * (TM / 2) + i - TM / 2];
#pragma unroll
                            for (int j = 0; j < TN; ++j)
                                b[j] = Bs[cur][k][j < TN / 2 ? tx * (TN / 2) + j : BN / 2 + tx * (TN / 2) + j - TN / 2];
#pragma unroll
                            for (int i = 0; i < TM; ++i)
#pragma unroll
                                for (int j = 0; j < TN; ++j)
                                    acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
                        }
                    } else {
                        for (int k = 0; k < steps; ++k) {
                            float a[TM], b[TN];
#pragma unroll
                            for (int i = 0; i < TM; ++i)
                                a[i] = As[cur][k][i < TM / 2 ? ty * (TM / 2) + i : BM / 2 + ty * (TM / 2) + i - TM / 2];
#pragma unroll
                            for (int j = 0; j < TN; ++j)
                                b[j] = Bs[cur][k][j < TN / 2 ? tx * (TN / 2) + j : BN / 2 + tx * (TN / 2) + j - TN / 2];
#pragma unroll
                            for (int i = 0; i < TM; ++i)
#pragma unroll
                                for (int j = 0; j < TN; ++j)
                                    acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
                        }
                    }
                    if (more) {
                        ASSAY_MM_STORE(cur ^ 1);
                    }
                    __syncthreads();
                }
#undef ASSAY_MM_FETCH
#undef ASSAY_MM_STORE
#pragma unroll
                for (int i = 0; i < TM; ++i) {
                    const i64 row = m0 + (i < TM / 2 ? ty * (TM / 2) + i : BM / 2 + ty * (TM / 2) + i - TM / 2);
                    if (row >= M) {
                        continue;
                    }
#pragma unroll
                    for (int j = 0; j < TN; ++j) {
                        const i64 col = n0 + (j < TN / 2 ? tx * (TN / 2) + j : BN / 2 + tx * (TN / 2) + j - TN / 2);
                        if (col < N) {
                            Cb[row * N + col] = assay_canon(acc[i][j]);
                        }
                    }
                }
            }
        }
    }
}

/* Entry points: tile 128x128 (8x8 per thread) for large products, 64x64 (4x4)
 * when the large tiles would leave the GPU idle; n/t = transpose of A, B. */
#define ASSAY_SGEMM_ENTRY(name, BM, BN, TM, TN, TA, TB)                                                     \
    extern "C" __global__ void __launch_bounds__(MM_THREADS)                                                \
        name(const float *A, const float *B, float *C, i64 M, i64 N, i64 K, StridedDims batch, u64 batches, \
             i64 base_a, i64 base_b, i64 base_c) {                                                          \
        assay_sgemm<BM, BN, TM, TN, TA, TB>(A, B, C, M, N, K, batch, batches, base_a, base_b, base_c);      \
    }

ASSAY_SGEMM_ENTRY(assay_sgemm128_nn, 128, 128, 8, 8, false, false)
ASSAY_SGEMM_ENTRY(assay_sgemm128_nt, 128, 128, 8, 8, false, true)
ASSAY_SGEMM_ENTRY(assay_sgemm128_tn, 128, 128, 8, 8, true, false)
ASSAY_SGEMM_ENTRY(assay_sgemm128_tt, 128, 128, 8, 8, true, true)
ASSAY_SGEMM_ENTRY(assay_sgemm64_nn, 64, 64, 4, 4, false, false)
ASSAY_SGEMM_ENTRY(assay_sgemm64_nt, 64, 64, 4, 4, false, true)
ASSAY_SGEMM_ENTRY(assay_sgemm64_tn, 64, 64, 4, 4, true, false)
ASSAY_SGEMM_ENTRY(assay_sgemm64_tt, 64, 64, 4, 4, true, true)
