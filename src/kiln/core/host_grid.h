// The host's run of a CUDA grid (kiln/core/cuda_on_host.h, which compiles a .cu file's kernels as
// host C++ and launches them through run_grid): the grid's types and indices, the launch, the order
// threads and blocks run in, and the runtime's error calls, in namespace kiln::cuda_host and without
// the kernel language's macros, so that any file can include it (a test setting the schedule).
#pragma once
#include <cstdint>
#include <functional>

namespace kiln::cuda_host {

struct uint3 {
  unsigned x, y, z;
};
struct dim3 {
  unsigned x, y, z;
  constexpr dim3(unsigned vx = 1, unsigned vy = 1, unsigned vz = 1) : x(vx), y(vy), z(vz) {}
};

// The running thread's indices and its launch's sizes (valid inside a kernel only).
extern thread_local uint3 threadIdx;
extern thread_local uint3 blockIdx;
extern thread_local dim3 blockDim;
extern thread_local dim3 gridDim;

// The block's barrier: every thread of the block reaches it before any goes on.
void __syncthreads();

// The order threads (within each stretch between barriers) and blocks run in.
enum class Schedule { kInOrder, kReversed };
void set_schedule(Schedule s);  // for every thread
Schedule schedule();

enum cudaError_t { cudaSuccess = 0, cudaErrorInvalidConfiguration = 9 };
using cudaStream_t = struct HostStream*;  // launches run at once, on the calling thread
cudaError_t cudaGetLastError();           // and reset it
const char* cudaGetErrorString(cudaError_t e);

// Runs `thread` for every thread of the grid (threadIdx etc. set), as kiln/core/cuda_on_host.h describes. `kernel`
// names it in messages. Throws what a thread throws, and std::logic_error for a divergent barrier or
// a launch inside a kernel.
void run_grid(dim3 grid, dim3 block, const char* kernel, const std::function<void()>& thread);

}  // namespace kiln::cuda_host
