// cuda_emu.h — runs Assay's CUDA kernels on the host, for tests without a GPU.
//
// The kernel source (kernels/*.cu after canonical.h) is compiled by a host
// C++ compiler after this prelude, which provides the subset of CUDA they
// use: thread/block indices, __shared__ memory, __syncthreads, warp shuffles,
// atomicMin and the bit-cast/conversion intrinsics. Every thread of a block
// is a fiber (ucontext); the fibers of one block run in turn on one OS thread
// and switch only at barriers and shuffles, so shared memory is simply a
// static variable and launches are serialised by a mutex.
//
// Arithmetic is the host's binary32 SSE arithmetic with the same flags the
// GPU build uses (-ffp-contract=off, no fast-math): +,-,*,/, sqrtf and fmaf
// are IEEE operations on both, which is the point of the determinism
// contract. What this cannot show: NVRTC's code generation (tests/cuda_compile.rs
// inspects the PTX for that) and anything about real hardware scheduling.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>
#include <ucontext.h>

#define __CUDACC_RTC__ 1
#define __CUDA_ARCH__ 900
#define __host__
#define __device__
#define __global__
#define __forceinline__ inline
#define __noinline__
#define __restrict__ __restrict
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))
#define __shared__ static

struct assay_dim3 {
    unsigned x, y, z;
};
static assay_dim3 threadIdx, blockIdx, blockDim, gridDim;

static inline unsigned int __float_as_uint(float x) {
    unsigned int u;
    std::memcpy(&u, &x, sizeof u);
    return u;
}
static inline float __uint_as_float(unsigned int u) {
    float x;
    std::memcpy(&x, &u, sizeof x);
    return x;
}
// Only called on values inside the i32 range (the kernels check first).
static inline int __float2int_rz(float x) { return (int)x; }
static inline float __int2float_rn(int x) { return (float)x; }

// ---- fibers -------------------------------------------------------------

namespace assay_emu {

const size_t STACK = 128 * 1024;

struct Fiber {
    ucontext_t ctx;
    std::vector<char> stack;
    bool done = false;
    unsigned tid = 0;
};

struct Barrier {
    int arrived = 0;
    unsigned gen = 0;
};

struct Block {
    std::vector<Fiber> fibers;
    ucontext_t scheduler;
    int current = 0;
    int live = 0;
    std::vector<int> warp_live;
    Barrier block_bar;
    std::vector<Barrier> warp_bars;
    std::vector<uint64_t> slots; // one per thread, for shuffles
    void (*body)(void *) = nullptr;
    void *arg = nullptr;
};

static Block *B = nullptr;

static inline void yield() { swapcontext(&B->fibers[B->current].ctx, &B->scheduler); }

static inline void wait(Barrier &b, int *live) {
    unsigned g = b.gen;
    b.arrived++;
    for (;;) {
        if (b.gen != g) {
            return;
        }
        if (b.arrived >= *live) {
            b.arrived = 0;
            b.gen++;
            return;
        }
        yield();
    }
}

static inline unsigned warp_of() { return threadIdx.x / 32; }

template <class T> static inline T exchange(T v, int src_lane, bool keep_own_if_outside) {
    Block *b = B;
    unsigned t = threadIdx.x;
    unsigned w = t / 32;
    uint64_t bits = 0;
    std::memcpy(&bits, &v, sizeof v);
    b->slots[t] = bits;
    wait(b->warp_bars[w], &b->warp_live[w]);
    T r = v;
    unsigned src = w * 32 + (unsigned)src_lane;
    bool inside = src_lane >= 0 && src_lane < 32 && src < b->fibers.size();
    if (inside) {
        uint64_t sb = b->slots[src];
        std::memcpy(&r, &sb, sizeof r);
    } else if (!keep_own_if_outside) {
        r = v;
    }
    wait(b->warp_bars[w], &b->warp_live[w]);
    return r;
}

} // namespace assay_emu

static inline void __syncthreads() { assay_emu::wait(assay_emu::B->block_bar, &assay_emu::B->live); }
static inline void __syncwarp(unsigned = 0xffffffffu) {
    unsigned w = assay_emu::warp_of();
    assay_emu::wait(assay_emu::B->warp_bars[w], &assay_emu::B->warp_live[w]);
}
template <class T> static inline T __shfl_down_sync(unsigned, T v, int delta) {
    int lane = (int)(threadIdx.x % 32);
    int src = lane + delta;
    return assay_emu::exchange(v, src < 32 ? src : -1, true);
}
template <class T> static inline T __shfl_xor_sync(unsigned, T v, int mask) {
    int lane = (int)(threadIdx.x % 32);
    return assay_emu::exchange(v, lane ^ mask, true);
}
template <class T> static inline T __shfl_sync(unsigned, T v, int src) {
    return assay_emu::exchange(v, src, true);
}
static inline unsigned long long atomicMin(unsigned long long *p, unsigned long long v) {
    unsigned long long old = *p;
    if (v < old) {
        *p = v;
    }
    return old;
}
