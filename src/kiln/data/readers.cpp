#include <algorithm>
#include <limits>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>

#include "kiln/core/error.h"
#include "kiln/core/fs.h"
#include "kiln/data/dataset.h"
#include "kiln/data/folder.h"
#include "kiln/pixels/pixels.h"

namespace kiln {
namespace fs = std::filesystem;

Dataset Dataset::head(int64_t n) const {
  if (n <= 0 || n >= size()) return *this;
  return Dataset{images.slice(0, 0, n).clone(), labels.slice(0, 0, n).clone(), classes};
}

static const std::vector<std::string> kCifar10Classes = {
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"};

Dataset parse_cifar10_bin(const Bytes& b, const std::string& f) {
  constexpr int64_t rec = 1 + 3072;
  {
    if (b.empty() || b.size() % rec != 0)
      throw Error("'" + f + "' is not a CIFAR-10 binary file: " + std::to_string(b.size()) +
                  " bytes is not a whole number of 3073-byte records (truncated?)");
    int64_t n = static_cast<int64_t>(b.size()) / rec;
    auto t = torch::from_blob(const_cast<uint8_t*>(b.data()), {n, rec}, torch::kUInt8);
    auto lab = t.select(1, 0).to(torch::kInt64);
    auto bad = (lab > 9).nonzero();
    if (bad.numel())
      throw Error("'" + f + "': record " + std::to_string(bad[0].item<int64_t>()) + " has label " +
                  std::to_string(lab[bad[0].item<int64_t>()].item<int64_t>()) + ", outside 0..9");
    return Dataset{t.slice(1, 1).reshape({n, 3, 32, 32}).clone(), lab, kCifar10Classes};
  }
}

Dataset read_cifar10_bin(const std::vector<std::string>& files) {
  std::vector<torch::Tensor> imgs, labs;
  for (auto& f : files) {
    auto d = parse_cifar10_bin(read_file(f), f);
    imgs.push_back(d.images);
    labs.push_back(d.labels);
  }
  return Dataset{torch::cat(imgs), torch::cat(labs), kCifar10Classes};
}

Dataset read_cifar100_bin(const std::string& f, bool coarse) {
  constexpr int64_t rec = 2 + 3072;
  Bytes b = read_file(f);
  if (b.empty() || b.size() % rec != 0)
    throw Error("'" + f + "' is not a CIFAR-100 binary file: " + std::to_string(b.size()) +
                " bytes is not a whole number of 3074-byte records (truncated?)");
  int64_t n = static_cast<int64_t>(b.size()) / rec;
  auto t = torch::from_blob(b.data(), {n, rec}, torch::kUInt8);
  auto lab = t.select(1, coarse ? 0 : 1).to(torch::kInt64);
  int64_t limit = coarse ? 20 : 100;
  if ((lab >= limit).any().item<bool>())
    throw Error("'" + f + "': a " + (coarse ? "coarse" : "fine") + " label is outside 0.." + std::to_string(limit - 1));
  std::vector<std::string> classes;
  for (int64_t c = 0; c < limit; ++c) classes.push_back(std::to_string(c));
  return Dataset{t.slice(1, 2).reshape({n, 3, 32, 32}).clone(), lab, classes};
}

static uint32_t be32(const Bytes& b, size_t off) {
  return (uint32_t(b[off]) << 24) | (uint32_t(b[off + 1]) << 16) | (uint32_t(b[off + 2]) << 8) | b[off + 3];
}

Dataset read_idx(const std::string& images_file, const std::string& labels_file) {
  return parse_idx(read_maybe_gzip(images_file), read_maybe_gzip(labels_file), images_file, labels_file);
}

Dataset parse_idx(const Bytes& im, const Bytes& lb, const std::string& images_file, const std::string& labels_file) {
  if (im.size() < 16 || be32(im, 0) != 2051)
    throw Error("'" + images_file + "' is not an IDX image file (magic number 2051 expected" +
                (im.size() >= 4 ? ", found " + std::to_string(be32(im, 0)) : std::string(", file too short")) + ")");
  int64_t n = be32(im, 4), h = be32(im, 8), w = be32(im, 12);
  if (h <= 0 || w <= 0 || h > 4096 || w > 4096)
    throw Error("'" + images_file + "': implausible image size " + std::to_string(h) + "x" + std::to_string(w));
  if (static_cast<int64_t>(im.size()) != 16 + n * h * w)
    throw Error("'" + images_file + "': header says " + std::to_string(n) + " images of " + std::to_string(h) + "x" +
                std::to_string(w) + " (" + std::to_string(16 + n * h * w) + " bytes), file has " +
                std::to_string(im.size()) + " bytes (truncated?)");
  if (lb.size() < 8 || be32(lb, 0) != 2049)
    throw Error("'" + labels_file + "' is not an IDX label file (magic number 2049 expected)");
  int64_t nl = be32(lb, 4);
  if (static_cast<int64_t>(lb.size()) != 8 + nl)
    throw Error("'" + labels_file + "': header says " + std::to_string(nl) + " labels, file has " +
                std::to_string(lb.size() - 8) + " (truncated?)");
  if (nl != n)
    throw Error("'" + images_file + "' holds " + std::to_string(n) + " images but '" + labels_file + "' holds " +
                std::to_string(nl) + " labels");
  auto images = torch::from_blob(const_cast<uint8_t*>(im.data()) + 16, {n, 1, h, w}, torch::kUInt8).clone();
  auto labels = torch::from_blob(const_cast<uint8_t*>(lb.data()) + 8, {n}, torch::kUInt8).to(torch::kInt64);
  if (n && labels.max().item<int64_t>() > 9)
    throw Error("'" + labels_file + "': label " + std::to_string(labels.max().item<int64_t>()) + " outside 0..9");
  std::vector<std::string> classes;
  for (int c = 0; c < 10; ++c) classes.push_back(std::to_string(c));
  return Dataset{images, labels, classes};
}

torch::Tensor decode_image(const Bytes& b, const std::string& name, int channels) {
  auto img = px::decode(b, name, channels);
  return torch::from_blob(img.data.data(), {img.h, img.w, img.c}, torch::kUInt8).permute({2, 0, 1}).clone(torch::MemoryFormat::Contiguous);
}

std::string resolve_data_root(const std::string& cli) {
  if (!cli.empty()) return cli;
  if (const char* e = std::getenv("KILN_DATA"); e && *e) return e;
  if (const char* x = std::getenv("XDG_DATA_HOME"); x && *x) return std::string(x) + "/kiln";
  const char* home = std::getenv("HOME");
  return std::string(home ? home : ".") + "/.local/share/kiln";
}

static std::string first_existing(const std::vector<fs::path>& cands) {
  for (auto& p : cands)
    if (fs::exists(p)) return p.string();
  return "";
}

static Error missing(const std::string& name, const std::string& root, const std::string& looked) {
  return Error("dataset '" + name + "' not found under '" + root + "' (looked for " + looked +
               "). Get it with:\n  kiln data fetch " + name + " --data " + root +
               "\nor point --data / $KILN_DATA at a directory that holds it.");
}

// The published md5 of the official CIFAR-10 test_batch.bin; other copies may be reordered.
static void check_cifar10_test(const std::string& f, TrainTest& tt) {
  static const char* official = "803d5f7f4d78ea53de84dbe85f74fb6d";
  auto md5 = md5_file_hex(f);
  if (md5 != official)
    tt.warnings.push_back("'" + f + "' differs from the official test_batch.bin (md5 " + md5 +
                          "); a reordered copy holds the same images, so accuracies are unaffected");
}

TrainTest load_dataset(const std::string& name, const std::string& root, const std::string& folder, const FolderOptions& options) {
  TrainTest tt;
  tt.name = name;
  fs::path r(root);
  if (name == "cifar10") {
    auto dir = first_existing({r / "cifar10" / "data_batch_1.bin", r / "cifar-10-batches-bin" / "data_batch_1.bin",
                               r / "cifar10" / "cifar-10-batches-bin" / "data_batch_1.bin"});
    if (dir.empty()) throw missing(name, root, "cifar10/data_batch_1.bin or cifar-10-batches-bin/");
    auto d = fs::path(dir).parent_path();
    std::vector<std::string> train;
    for (int i = 1; i <= 5; ++i) {
      auto f = d / ("data_batch_" + std::to_string(i) + ".bin");
      if (!fs::exists(f)) throw Error("CIFAR-10 in '" + d.string() + "' is incomplete: " + f.string() + " is missing");
      train.push_back(f.string());
    }
    tt.train = read_cifar10_bin(train);
    auto test = (d / "test_batch.bin").string();
    tt.test = read_cifar10_bin({test});
    check_cifar10_test(test, tt);
    if (tt.train.size() != 50000 || tt.test.size() != 10000)
      tt.warnings.push_back("CIFAR-10 in '" + d.string() + "' has " + std::to_string(tt.train.size()) + "/" +
                            std::to_string(tt.test.size()) + " train/test images, not 50000/10000");
    tt.source = d.string();
  } else if (name == "cifar100") {
    auto f = first_existing({r / "cifar100" / "train.bin", r / "cifar-100-binary" / "train.bin"});
    if (f.empty()) throw missing(name, root, "cifar100/train.bin or cifar-100-binary/train.bin");
    auto d = fs::path(f).parent_path();
    tt.train = read_cifar100_bin(f);
    tt.test = read_cifar100_bin((d / "test.bin").string());
    tt.source = d.string();
  } else if (name == "mnist" || name == "fashion-mnist") {
    auto d = r / name;
    auto pick = [&](const std::string& base) {
      return first_existing({d / base, d / (base + ".gz")});
    };
    auto tri = pick("train-images-idx3-ubyte"), trl = pick("train-labels-idx1-ubyte");
    if (tri.empty() && name == "mnist") {
      // A partial copy: the first 10,000 training digits (see ../shared/data/mnist/README.txt).
      tri = pick("train10k-images-idx3-ubyte");
      trl = pick("train10k-labels-idx1-ubyte");
      if (!tri.empty()) tt.warnings.push_back("using train10k-*: only the first 10,000 MNIST training digits");
    }
    auto tei = pick("t10k-images-idx3-ubyte"), tel = pick("t10k-labels-idx1-ubyte");
    if (tri.empty() || trl.empty() || tei.empty() || tel.empty())
      throw missing(name, root, name + "/{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]");
    tt.train = read_idx(tri, trl);
    tt.test = read_idx(tei, tel);
    if (name == "fashion-mnist") {
      std::vector<std::string> c = {"t-shirt", "trouser", "pullover", "dress", "coat",
                                    "sandal",  "shirt",   "sneaker",  "bag",   "boot"};
      tt.train.classes = tt.test.classes = c;
    }
    tt.source = d.string();
  } else if (name == "folder") {
    if (folder.empty()) throw Error("dataset 'folder' needs data.folder = the root holding train/ and test/");
    load_folder(folder, options, tt);
    tt.source = folder;
  } else {
    throw Error("unknown dataset '" + name + "' (cifar10 | cifar100 | mnist | fashion-mnist | folder)");
  }
  return tt;
}

}  // namespace kiln
