// In-memory image datasets and the readers of the standard formats.
// Every reader validates what it reads (sizes, magic numbers, label ranges, shapes) and
// throws kiln::Error naming the file and the problem.
#pragma once
#include <torch/torch.h>

#include <string>
#include <vector>

namespace kiln {

struct Dataset {
  torch::Tensor images;  // uint8, N x C x H x W, on the CPU
  torch::Tensor labels;  // int64, N
  std::vector<std::string> classes;
  int64_t size() const { return labels.size(0); }
  // The first n examples (n <= 0 or n >= size(): all of them).
  Dataset head(int64_t n) const;
};

struct TrainTest {
  Dataset train, test;
  std::string name;
  std::string source;  // the directory it was read from
  std::vector<std::string> warnings;
  std::vector<std::string> notes;  // what loading found and cost (an image folder's class counts, decode rate, ...)
};

// CIFAR-10 binary: records of 1 label byte + 3072 pixel bytes (R, G, B planes of 32x32).
Dataset read_cifar10_bin(const std::vector<std::string>& files);
// CIFAR-100 binary: records of coarse label, fine label, 3072 pixel bytes.
Dataset read_cifar100_bin(const std::string& file, bool coarse = false);
// MNIST-style IDX files (idx3 ubyte images, idx1 ubyte labels), plain or gzip.
Dataset read_idx(const std::string& images_file, const std::string& labels_file);
// The parsers behind the readers, on bytes already in memory (`name` is the file named in
// errors); also the fuzz targets' entry points (fuzz/).
Dataset parse_cifar10_bin(const std::vector<uint8_t>& bytes, const std::string& name);
Dataset parse_idx(const std::vector<uint8_t>& images, const std::vector<uint8_t>& labels, const std::string& images_name,
                  const std::string& labels_name);
// One PNG/JPEG/BMP/WebP image (kiln/pixels) as uint8 C x H x W; channels 0 keeps the file's.
torch::Tensor decode_image(const std::vector<uint8_t>& bytes, const std::string& name, int channels = 0);
// How an image folder (dataset = "folder") is read: kiln/data/folder.h.
struct FolderOptions {
  std::vector<int64_t> image_size;  // data.image_size: [H, W], or empty (the files' own size)
  std::string resize = "stretch";   // data.resize: stretch | center_crop | pad
  int64_t background = 0;           // data.background: alpha composited over, and padding, this grey level
  int64_t memory_limit_mb = 0;      // data.memory_limit_mb: 0 = half the memory available when loading
  double val_fraction = 0;          // data.val_fraction: hold out this much of train/ for evaluation
  uint64_t split_seed = 0;          // data.split_seed: the hold-out's seed
  int threads = 0;                  // data.load_threads: decoding threads; 0 = every core
  // Colour images for a grey model made grey by BT.601 luma (kiln/pixels/pixels.h) instead of
  // refused: `kiln predict --grey`, not a configuration key (a folder with colour is RGB).
  bool grey_by_luma = false;
};

// The data root: `cli` if given, else $KILN_DATA, else $XDG_DATA_HOME/kiln, else ~/.local/share/kiln.
std::string resolve_data_root(const std::string& cli);
// Loads `name` (cifar10 | cifar100 | mnist | fashion-mnist | folder) from under `root`:
// root/cifar10 (or root/cifar-10-batches-bin), root/cifar100 (or root/cifar-100-binary),
// root/mnist, root/fashion-mnist; for "folder", `folder` is the root holding train/ and test/
// (or, with options.val_fraction, train/ alone: part of it is held out for evaluation).
// A missing dataset gets a message with the exact `kiln data fetch` command.
TrainTest load_dataset(const std::string& name, const std::string& root, const std::string& folder = "",
                       const FolderOptions& options = {});

}  // namespace kiln
