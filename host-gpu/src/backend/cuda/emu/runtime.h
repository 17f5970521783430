// runtime.h — the emulator's launch entry point (after the kernels and the
// generated trampolines `assay_emu_kernels`).
namespace assay_emu {

static void fiber_main(unsigned lo, unsigned hi) {
    (void)lo;
    (void)hi;
    Block *b = B;
    b->body(b->arg);
    Fiber &f = b->fibers[b->current];
    f.done = true;
    b->live--;
    b->warp_live[f.tid / 32]--;
    swapcontext(&f.ctx, &b->scheduler);
}

struct Trampoline {
    void (*run)(void **);
    void **params;
};

static void run_trampoline(void *arg) {
    Trampoline *t = (Trampoline *)arg;
    t->run(t->params);
}

static std::mutex LAUNCH;

} // namespace assay_emu

extern "C" int assay_emu_launch(const char *name, const unsigned *grid, const unsigned *block, void **params,
                                char *err, unsigned long err_len) {
    using namespace assay_emu;
    void (*run)(void **) = nullptr;
    for (const KernelEntry *k = assay_emu_kernels; k->name; ++k) {
        if (std::strcmp(k->name, name) == 0) {
            run = k->run;
        }
    }
    if (!run) {
        std::snprintf(err, err_len, "the emulator has no kernel named %s", name);
        return 1;
    }
    unsigned threads = block[0] * block[1] * block[2];
    if (threads == 0 || threads > 1024 || block[1] != 1 || block[2] != 1) {
        std::snprintf(err, err_len, "unsupported block shape %ux%ux%u", block[0], block[1], block[2]);
        return 1;
    }
    std::lock_guard<std::mutex> guard(LAUNCH);
    Trampoline tr{run, params};
    Block blk;
    blk.fibers.resize(threads);
    for (auto &f : blk.fibers) {
        f.stack.resize(STACK);
    }
    blk.slots.resize(threads);
    unsigned warps = (threads + 31) / 32;
    blk.warp_bars.resize(warps);
    blk.body = run_trampoline;
    blk.arg = &tr;
    B = &blk;
    gridDim = {grid[0], grid[1], grid[2]};
    blockDim = {block[0], block[1], block[2]};
    for (unsigned bz = 0; bz < grid[2]; ++bz)
        for (unsigned by = 0; by < grid[1]; ++by)
            for (unsigned bx = 0; bx < grid[0]; ++bx) {
                blockIdx = {bx, by, bz};
                blk.live = (int)threads;
                blk.warp_live.assign(warps, 0);
                for (unsigned t = 0; t < threads; ++t) {
                    blk.warp_live[t / 32]++;
                }
                blk.block_bar = Barrier();
                for (auto &w : blk.warp_bars) {
                    w = Barrier();
                }
                for (unsigned t = 0; t < threads; ++t) {
                    Fiber &f = blk.fibers[t];
                    f.done = false;
                    f.tid = t;
                    getcontext(&f.ctx);
                    f.ctx.uc_stack.ss_sp = f.stack.data();
                    f.ctx.uc_stack.ss_size = f.stack.size();
                    f.ctx.uc_link = &blk.scheduler;
                    makecontext(&f.ctx, (void (*)())fiber_main, 2, 0u, 0u);
                }
                while (blk.live > 0) {
                    for (unsigned t = 0; t < threads; ++t) {
                        if (blk.fibers[t].done) {
                            continue;
                        }
                        blk.current = (int)t;
                        threadIdx = {t, 0, 0};
                        swapcontext(&blk.scheduler, &blk.fibers[t].ctx);
                    }
                }
            }
    B = nullptr;
    return 0;
}
