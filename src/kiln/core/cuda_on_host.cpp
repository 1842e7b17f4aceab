// The host's run of a CUDA launch (kiln/core/host_grid.h, for kiln/core/cuda_on_host.h): blocks one after another, each
// thread of a block a ucontext fiber on its own stack, the block's scheduler resuming every waiting
// thread in turn at each barrier.
#include "kiln/core/host_grid.h"

#include <ucontext.h>

#include <atomic>
#include <exception>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#if defined(__SANITIZE_ADDRESS__)
#define KILN_CUDA_HOST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define KILN_CUDA_HOST_ASAN 1
#endif
#endif
#ifdef KILN_CUDA_HOST_ASAN
#include <sanitizer/common_interface_defs.h>
#endif

namespace kiln::cuda_host {

thread_local uint3 threadIdx{0, 0, 0};
thread_local uint3 blockIdx{0, 0, 0};
thread_local dim3 blockDim{};
thread_local dim3 gridDim{};

namespace {

#ifdef KILN_CUDA_HOST_ASAN
constexpr size_t kFiberStack = 256 * 1024;  // ASan's frames are larger
#else
constexpr size_t kFiberStack = 64 * 1024;
#endif

// AddressSanitizer must be told of every switch between stacks (no-ops without it).
void switch_out(void** fake, const void* bottom, size_t size) {
#ifdef KILN_CUDA_HOST_ASAN
  __sanitizer_start_switch_fiber(fake, bottom, size);
#else
  (void)fake, (void)bottom, (void)size;
#endif
}
void switch_in(void* fake, const void** bottom_old, size_t* size_old) {
#ifdef KILN_CUDA_HOST_ASAN
  __sanitizer_finish_switch_fiber(fake, bottom_old, size_old);
#else
  (void)fake, (void)bottom_old, (void)size_old;
#endif
}

enum class State { kRunnable, kWaiting, kDone };

struct Fiber {
  ucontext_t ctx;
  std::unique_ptr<char[]> stack;  // not zeroed: its pages are touched only as far as the thread goes
  State state = State::kRunnable;
  uint3 idx{0, 0, 0};
  std::exception_ptr error;
};

// The launch running on this OS thread.
struct Grid {
  const std::function<void()>* thread = nullptr;
  const char* kernel = "";
  bool fibers = true;   // false once the first block ran without reaching a barrier
  bool barrier = false; // a thread of this launch reached __syncthreads
  ucontext_t scheduler;
  const void* scheduler_bottom = nullptr;  // the scheduler's stack, for ASan
  size_t scheduler_size = 0;
  Fiber* current = nullptr;
};

thread_local Grid* t_grid = nullptr;
thread_local cudaError_t t_last_error = cudaSuccess;
std::atomic<Schedule> g_schedule{Schedule::kInOrder};
thread_local std::vector<Fiber> t_fibers;  // kept from launch to launch: their stacks are reused

std::string block_name(const uint3& b) {
  return "(" + std::to_string(b.x) + ", " + std::to_string(b.y) + ", " + std::to_string(b.z) + ")";
}

uint3 unflatten(uint64_t i, const dim3& d) {
  return {static_cast<unsigned>(i % d.x), static_cast<unsigned>(i / d.x % d.y), static_cast<unsigned>(i / d.x / d.y)};
}

void fiber_main() {
  Grid& g = *t_grid;
  Fiber& f = *g.current;
  switch_in(nullptr, &g.scheduler_bottom, &g.scheduler_size);
  try {
    (*g.thread)();
  } catch (...) {
    f.error = std::current_exception();
  }
  f.state = State::kDone;
  switch_out(nullptr, g.scheduler_bottom, g.scheduler_size);  // this stack is done with
  // returning resumes uc_link, the scheduler
}

// One block with a fiber for each of its n threads.
void run_block_in_fibers(Grid& g, uint64_t n) {
  if (t_fibers.size() < n) t_fibers.resize(n);
  for (uint64_t t = 0; t < n; ++t) {
    Fiber& f = t_fibers[t];
    if (!f.stack) f.stack.reset(new char[kFiberStack]);
    getcontext(&f.ctx);
    f.ctx.uc_stack.ss_sp = f.stack.get();
    f.ctx.uc_stack.ss_size = kFiberStack;
    f.ctx.uc_link = &g.scheduler;
    makecontext(&f.ctx, fiber_main, 0);
    f.state = State::kRunnable;
    f.idx = unflatten(t, blockDim);
    f.error = nullptr;
  }
  const bool reversed = g_schedule == Schedule::kReversed;
  for (;;) {
    for (uint64_t k = 0; k < n; ++k) {
      Fiber& f = t_fibers[reversed ? n - 1 - k : k];
      if (f.state != State::kRunnable) continue;
      g.current = &f;
      threadIdx = f.idx;
      void* fake = nullptr;
      switch_out(&fake, f.stack.get(), kFiberStack);
      swapcontext(&g.scheduler, &f.ctx);
      switch_in(fake, nullptr, nullptr);
      g.current = nullptr;
      if (f.error) std::rethrow_exception(f.error);  // the other fibers are dropped where they wait
    }
    uint64_t waiting = 0, done = 0;
    for (uint64_t t = 0; t < n; ++t) (t_fibers[t].state == State::kWaiting ? waiting : done) += 1;
    if (waiting == 0) return;
    if (done > 0)
      throw std::logic_error(std::string("kiln: CUDA kernel ") + g.kernel + ", block " + block_name(blockIdx) + ": " +
                             std::to_string(waiting) + " of its " + std::to_string(n) +
                             " threads wait at __syncthreads while " + std::to_string(done) +
                             " have returned (a divergent barrier: undefined on a GPU)");
    for (uint64_t t = 0; t < n; ++t) t_fibers[t].state = State::kRunnable;
  }
}

void run_block_directly(Grid& g, uint64_t n) {
  const bool reversed = g_schedule == Schedule::kReversed;
  for (uint64_t k = 0; k < n; ++k) {
    threadIdx = unflatten(reversed ? n - 1 - k : k, blockDim);
    (*g.thread)();
  }
}

bool valid_configuration(const dim3& grid, const dim3& block) {
  const uint64_t threads = uint64_t{block.x} * block.y * block.z;
  return grid.x >= 1 && grid.y >= 1 && grid.z >= 1 && grid.x <= 2147483647u && grid.y <= 65535 && grid.z <= 65535 &&
         block.x >= 1 && block.y >= 1 && block.z >= 1 && block.x <= 1024 && block.y <= 1024 && block.z <= 64 &&
         threads <= 1024;
}

}  // namespace

void __syncthreads() {
  Grid* g = t_grid;
  if (g == nullptr || g->current == nullptr) {
    const bool direct = g != nullptr;
    throw std::logic_error(std::string("kiln: __syncthreads ") +
                           (direct ? std::string("in block ") + block_name(blockIdx) + " of CUDA kernel " + g->kernel +
                                         ", whose first block never reached one (the host ran its other blocks "
                                         "without fibers)"
                                   : "outside a kernel"));
  }
  g->barrier = true;
  Fiber& f = *g->current;
  f.state = State::kWaiting;
  void* fake = nullptr;
  switch_out(&fake, g->scheduler_bottom, g->scheduler_size);
  swapcontext(&f.ctx, &g->scheduler);
  switch_in(fake, &g->scheduler_bottom, &g->scheduler_size);
}

void set_schedule(Schedule s) { g_schedule = s; }
Schedule schedule() { return g_schedule; }

cudaError_t cudaGetLastError() {
  const cudaError_t e = t_last_error;
  t_last_error = cudaSuccess;
  return e;
}

const char* cudaGetErrorString(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
  }
  return "unrecognized error code";
}

void run_grid(dim3 grid, dim3 block, const char* kernel, const std::function<void()>& thread) {
  if (t_grid != nullptr)
    throw std::logic_error(std::string("kiln: CUDA kernel ") + kernel + " launched from inside kernel " +
                           t_grid->kernel + " (not supported on the host)");
  if (!valid_configuration(grid, block)) {
    t_last_error = cudaErrorInvalidConfiguration;
    return;
  }
  Grid g;
  g.thread = &thread;
  g.kernel = kernel;
  struct Reset {
    ~Reset() { t_grid = nullptr, threadIdx = blockIdx = uint3{0, 0, 0}, blockDim = gridDim = dim3(); }
  } reset;
  t_grid = &g;
  gridDim = grid;
  blockDim = block;
  const uint64_t blocks = uint64_t{grid.x} * grid.y * grid.z, n = uint64_t{block.x} * block.y * block.z;
  const bool reversed = g_schedule == Schedule::kReversed;
  for (uint64_t k = 0; k < blocks; ++k) {
    blockIdx = unflatten(reversed ? blocks - 1 - k : k, grid);
    if (g.fibers) {
      run_block_in_fibers(g, n);
      g.fibers = g.barrier;  // no barrier in the first block: the others run directly
    } else {
      run_block_directly(g, n);
    }
  }
}

}  // namespace kiln::cuda_host
