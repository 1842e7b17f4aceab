// NOT YET RUN on a GPU: compiled against LibTorch's CUDA headers on a CPU-only machine.
// The NCCL backend of kiln's data parallelism (kiln/dist/dist.h): c10d's ProcessGroupNCCL on
// the rendezvous store the Gloo path uses too.
#ifndef USE_C10D_NCCL
#define USE_C10D_NCCL  // LibTorch's CUDA builds have it; its header is empty without
#endif
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>

namespace kiln::dist {

c10::intrusive_ptr<c10d::Backend> make_nccl_backend(const c10::intrusive_ptr<c10d::Store>& store, int rank, int size,
                                                    std::chrono::milliseconds timeout) {
  auto opts = c10d::ProcessGroupNCCL::Options::create();
  opts->timeout = timeout;
  return c10::make_intrusive<c10d::ProcessGroupNCCL>(store, rank, size, opts);
}

}  // namespace kiln::dist
