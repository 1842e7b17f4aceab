#include "kiln/data/folder.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <map>
#include <mutex>
#include <thread>

#include "kiln/core/error.h"
#include "kiln/core/fs.h"
#include "kiln/pixels/image_files.h"
#include "kiln/pixels/pixels.h"

namespace kiln {
namespace fs = std::filesystem;

namespace {

// A uint8 C x h x w tensor as interleaved pixels, and back.
px::Image image_of(const torch::Tensor& chw) {
  auto hwc = chw.permute({1, 2, 0}).contiguous();
  const uint8_t* p = hwc.data_ptr<uint8_t>();
  return {chw.size(0), chw.size(1), chw.size(2), std::vector<uint8_t>(p, p + hwc.numel())};
}
torch::Tensor tensor_of(px::Image img) {  // a copy: clone() copies even where the permutation is a no-op (c = 1)
  return torch::from_blob(img.data.data(), {img.h, img.w, img.c}, torch::kUInt8).permute({2, 0, 1}).clone(torch::MemoryFormat::Contiguous);
}

}  // namespace

torch::Tensor convert_channels(const torch::Tensor& img, int64_t channels, int64_t background) {
  if (img.size(0) == channels) return img;
  return tensor_of(px::with_channels(image_of(img), channels, background, "in memory"));
}

torch::Tensor fit_image(const torch::Tensor& img, int64_t H, int64_t W, const std::string& mode, int64_t background) {
  return tensor_of(px::fitted(image_of(img), H, W, mode, background));
}

torch::Tensor read_image_as(const std::string& path, int64_t C, int64_t H, int64_t W, const FolderOptions& o, bool* converted,
                            bool* resized) {
  return tensor_of(px::read_as(path, C, H, W, o.resize, o.background, converted, resized, o.grey_by_luma));
}

namespace {

struct ImageFile {
  std::string path;
  int64_t label = 0;
  int w = 0, h = 0, c = 0;  // from the header
};

// Runs fn(i) for i in [0, n) on `threads` threads; rethrows the error of the lowest i that failed.
template <class F>
void parallel_for_each(int64_t n, int threads, F fn) {
  std::atomic<int64_t> next{0};
  std::mutex m;
  int64_t failed_at = n;
  std::exception_ptr error;
  auto work = [&] {
    for (int64_t i; (i = next.fetch_add(1)) < n;) {
      try {
        fn(i);
      } catch (...) {
        std::lock_guard<std::mutex> g(m);
        if (i < failed_at) failed_at = i, error = std::current_exception();
      }
    }
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();
  if (error) std::rethrow_exception(error);
}

int64_t available_memory_mb() {
  const long pages = sysconf(_SC_AVPHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  return pages > 0 && page > 0 ? static_cast<int64_t>(pages) * page / (1024 * 1024) : 0;
}

std::string size_text(int64_t h, int64_t w) { return "[" + std::to_string(h) + ", " + std::to_string(w) + "]"; }

int threads_of(const FolderOptions& o) {
  return std::max(1, o.threads > 0 ? o.threads : static_cast<int>(std::thread::hardware_concurrency()));
}

void check_options(const FolderOptions& o) {
  if (!o.image_size.empty() && (o.image_size.size() != 2 || o.image_size[0] < 1 || o.image_size[1] < 1))
    throw Error("data.image_size must be [H, W] with both at least 1");
  if (o.background < 0 || o.background > 255) throw Error("data.background must be a grey level in 0..255");
}

// Pass 1: every header (sizes and channels), so the dataset's shape and size are known before
// anything is decoded.
void read_headers(std::vector<ImageFile>& files, int threads) {
  parallel_for_each(static_cast<int64_t>(files.size()), threads, [&](int64_t i) {
    auto& f = files[static_cast<size_t>(i)];
    const auto h = px::header_of_file(f.path);
    f.w = h.w, f.h = h.h, f.c = h.c;
  });
}

// The decoded size N x C x H x W against data.memory_limit_mb (0 = half the memory available):
// over it, an error naming the folder, what it needs, and what would fit: for a dataset a
// smaller data.image_size, for unlabeled images (whose size is the training images') fewer of
// them (selftrain.unlabeled).
void check_memory(const std::string& root, int64_t N, int64_t C, int64_t H, int64_t W, const FolderOptions& o, bool unlabeled) {
  const int64_t bytes = N * C * H * W;
  const int64_t limit_mb = o.memory_limit_mb > 0 ? o.memory_limit_mb : available_memory_mb() / 2;
  if (limit_mb <= 0 || bytes <= limit_mb * 1024 * 1024) return;
  std::string fits;
  if (unlabeled) {
    fits = "selftrain.unlabeled = " + std::to_string(limit_mb * 1024 * 1024 / (C * H * W)) + " (the first images by path) would fit";
  } else {
    const double s = std::sqrt(static_cast<double>(limit_mb) * 1024 * 1024 / static_cast<double>(bytes));
    const int64_t fh = std::max<int64_t>(1, static_cast<int64_t>(H * s)), fw = std::max<int64_t>(1, static_cast<int64_t>(W * s));
    fits = "data.image_size = " + size_text(fh, fw) + " would fit";
  }
  throw Error("image folder '" + root + "': " + std::to_string(N) + " images of " + std::to_string(C) + " x " + std::to_string(H) +
              " x " + std::to_string(W) + " need " + std::to_string(bytes / (1024 * 1024)) + " MiB decoded, more than the " +
              std::to_string(limit_mb) + " MiB allowed (data.memory_limit_mb; 0 = half the memory available); " + fits);
}

// Pass 2, after check_memory: decode, convert and fit each image straight into its row of an
// N x C x H x W uint8 tensor; the report gets the counts and the time since t0.
torch::Tensor decode_files(const std::vector<ImageFile>& files, int64_t C, int64_t H, int64_t W, const FolderOptions& o,
                           int threads, std::chrono::steady_clock::time_point t0, FolderReport* report) {
  const int64_t N = static_cast<int64_t>(files.size()), bytes = N * C * H * W;
  auto out = torch::empty({N, C, H, W}, torch::kUInt8);
  std::atomic<int64_t> resized{0}, converted{0};
  parallel_for_each(N, threads, [&](int64_t i) {
    auto& f = files[static_cast<size_t>(i)];
    bool c = false, r = false;
    out[i].copy_(read_image_as(f.path, C, H, W, o, &c, &r));
    converted += c, resized += r;
  });
  if (report) {
    report->images = N, report->bytes = bytes;
    report->resized = resized, report->converted = converted, report->threads = threads;
    report->seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  return out;
}

// The sizes a folder's images come in, for the refusal of mixed sizes: "its 4 images come in 2
// sizes (w x h): 5x3 2, 3x5 2; median 4 x 4", the most common first (five at most).
std::string sizes_text(const std::vector<ImageFile>& files) {
  std::map<std::pair<int, int>, int64_t> count;
  std::vector<int> ws, hs;
  for (const auto& f : files) ++count[{f.w, f.h}], ws.push_back(f.w), hs.push_back(f.h);
  std::vector<std::pair<int64_t, std::pair<int, int>>> by_count;
  for (const auto& [wh, n] : count) by_count.emplace_back(-n, wh);
  std::sort(by_count.begin(), by_count.end());
  const auto median = [](std::vector<int>& v) {
    std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2), v.end());
    return v[v.size() / 2];
  };
  std::string t = "its " + std::to_string(files.size()) + " images come in " + std::to_string(count.size()) + " sizes (w x h): ";
  for (size_t i = 0; i < by_count.size() && i < 5; ++i)
    t += (i ? ", " : "") + std::to_string(by_count[i].second.first) + "x" + std::to_string(by_count[i].second.second) + " " +
         std::to_string(-by_count[i].first);
  if (by_count.size() > 5) t += ", " + std::to_string(by_count.size() - 5) + " more";
  return t + "; median " + std::to_string(median(ws)) + " x " + std::to_string(median(hs));
}

}  // namespace

Dataset read_image_folder(const std::string& root, const FolderOptions& o, FolderReport* report) {
  const auto t0 = std::chrono::steady_clock::now();
  if (!dir_exists(root)) throw Error("image folder '" + root + "' does not exist");
  check_options(o);
  PassedOver po;
  std::vector<std::string> classes;
  std::error_code ec, ignored;  // an entry that cannot be followed (a link in a cycle, a dangling link) is no class
  for (auto it = fs::directory_iterator(root, ec); !ec && it != fs::directory_iterator(); it.increment(ec)) {
    const auto& e = *it;
    if (e.is_directory(ignored)) {
      if (px::is_hidden(e.path().string())) po.hidden_folders.push_back(e.path().filename().string());
      else classes.push_back(e.path().filename().string());
    } else if (e.is_regular_file(ignored) && px::is_image_file(e.path().string())) {
      ++po.loose_images;
    }
  }
  if (ec) throw Error("cannot read image folder '" + root + "': " + ec.message());
  std::sort(classes.begin(), classes.end());
  std::sort(po.hidden_folders.begin(), po.hidden_folders.end());
  if (classes.empty()) throw Error("image folder '" + root + "' has no class subdirectories (root/<class>/*.png)" + po.said(": "));
  std::vector<ImageFile> files;
  for (size_t c = 0; c < classes.size(); ++c) {
    for (auto& n : px::images_under((fs::path(root) / classes[c]).string(), root, po)) files.push_back({n, static_cast<int64_t>(c)});
  }
  if (files.empty()) throw Error("image folder '" + root + "' has no " + px::kImageExtensions + " images in its class folders" + po.said(": "));
  if (report) report->passed_over = po;
  const int threads = threads_of(o);
  read_headers(files, threads);
  const int64_t C = std::any_of(files.begin(), files.end(), [](const ImageFile& f) { return f.c >= 3; }) ? 3 : 1;
  int64_t H = files[0].h, W = files[0].w;
  if (!o.image_size.empty()) {
    H = o.image_size[0], W = o.image_size[1];
  } else {
    for (auto& f : files)
      if (f.h != H || f.w != W)
        throw Error("image '" + f.path + "' is " + std::to_string(f.w) + "x" + std::to_string(f.h) + " but '" + files[0].path +
                    "' is " + std::to_string(W) + "x" + std::to_string(H) +
                    ": all images must share one size, or set data.image_size = [H, W] to resize each as it loads "
                    "(data.resize = stretch | center_crop | pad); " + sizes_text(files));
  }
  const int64_t N = static_cast<int64_t>(files.size());
  check_memory(root, N, C, H, W, o, /*unlabeled=*/false);
  auto images = decode_files(files, C, H, W, o, threads, t0, report);
  std::vector<int64_t> labels(static_cast<size_t>(N));
  std::vector<int64_t> per_class(classes.size(), 0);
  for (int64_t i = 0; i < N; ++i) labels[static_cast<size_t>(i)] = files[static_cast<size_t>(i)].label, ++per_class[static_cast<size_t>(labels[static_cast<size_t>(i)])];
  if (report) report->per_class = per_class;
  return Dataset{images, torch::tensor(labels, torch::kInt64), classes};
}

Dataset read_unlabeled_images(const std::string& root, int64_t C, int64_t H, int64_t W, int64_t first, const FolderOptions& o,
                              FolderReport* report, std::vector<std::string>* paths) {
  const auto t0 = std::chrono::steady_clock::now();
  if (!dir_exists(root)) throw Error("selftrain.unlabeled_folder: '" + root + "' does not exist");
  check_options(o);
  PassedOver po;
  std::vector<std::string> names = px::images_under(root, root, po);
  if (names.empty())
    throw Error("selftrain.unlabeled_folder: '" + root + "' has no " + px::kImageExtensions + " images (at any depth)" + po.said(": "));
  if (report) report->passed_over = po;
  if (first > 0 && first < static_cast<int64_t>(names.size())) names.resize(static_cast<size_t>(first));
  std::vector<ImageFile> files;
  for (auto& n : names) files.push_back({n, -1});
  const int threads = threads_of(o);
  read_headers(files, threads);
  if (C == 1)
    for (auto& f : files)
      if (f.c >= 3)
        throw Error("selftrain.unlabeled_folder: image '" + f.path + "' has colour, and the run's images are grey (1 channel): "
                    "a grey model cannot label it");
  check_memory(root, static_cast<int64_t>(files.size()), C, H, W, o, /*unlabeled=*/true);
  auto images = decode_files(files, C, H, W, o, threads, t0, report);
  if (paths)
    for (auto& n : names) paths->push_back(fs::path(n).lexically_relative(root).string());
  return Dataset{images, torch::full({images.size(0)}, -1, torch::kInt64), {}};
}

std::pair<Dataset, Dataset> split_validation(const Dataset& ds, double fraction, uint64_t seed) {
  if (!(fraction > 0 && fraction < 1)) throw Error("data.val_fraction must be in (0, 1), not " + std::to_string(fraction));
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  const auto K = static_cast<int64_t>(ds.classes.size());
  auto held = torch::zeros({ds.size()}, torch::kBool);
  for (int64_t c = 0; c < K; ++c) {
    auto idx = (ds.labels == c).nonzero().flatten();
    const int64_t n = idx.size(0);
    if (n == 0) continue;
    int64_t k = std::llround(fraction * static_cast<double>(n));
    if (n >= 2) k = std::min(n - 1, std::max<int64_t>(1, k));
    else k = 0;
    if (k == 0) continue;
    auto pick = idx.index_select(0, torch::randperm(n, gen, torch::kInt64).slice(0, 0, k));
    held.index_fill_(0, pick, true);
  }
  auto keep_idx = (~held).nonzero().flatten(), val_idx = held.nonzero().flatten();
  if (val_idx.numel() == 0) throw Error("data.val_fraction = " + std::to_string(fraction) + " holds out no image");
  auto take = [&](const torch::Tensor& i) { return Dataset{ds.images.index_select(0, i), ds.labels.index_select(0, i), ds.classes}; };
  return {take(keep_idx), take(val_idx)};
}

namespace {

std::string mib(int64_t bytes) {
  char b[32];
  std::snprintf(b, sizeof b, "%.1f MiB", static_cast<double>(bytes) / (1024.0 * 1024.0));
  return b;
}

// Images per class, in class order (int64, contiguous).
torch::Tensor class_counts(const Dataset& d) {
  return torch::bincount(d.labels, {}, static_cast<int64_t>(d.classes.size())).contiguous();
}

std::string counts_text(const Dataset& d) {
  auto n = class_counts(d);
  std::string s;
  for (size_t c = 0; c < d.classes.size(); ++c)
    s += (c ? ", " : "") + d.classes[c] + " " + std::to_string(n.data_ptr<int64_t>()[c]);
  return s;
}

void check_balance(const std::string& what, const Dataset& d, TrainTest& tt) {
  auto counts = class_counts(d);
  const int64_t lo = counts.min().item<int64_t>(), hi = counts.max().item<int64_t>();
  if (lo == 0) {
    auto empty = (counts == 0).nonzero().flatten();
    tt.warnings.push_back(what + " has no image of class '" + d.classes[static_cast<size_t>(empty[0].item<int64_t>())] +
                          "': the model is never taught it");
  } else if (hi >= 10 * lo) {
    tt.warnings.push_back(what + "'s classes are very unbalanced: " + std::to_string(hi) + " images in the largest, " +
                          std::to_string(lo) + " in the smallest (accuracy then mostly measures the large classes; "
                          "see the per-class accuracy in the report)");
  }
}

}  // namespace

std::string folder_report_line(const std::string& dir, const Dataset& d, const FolderReport& r) {
  const auto s = d.images.sizes();
  std::string t = dir + ": " + std::to_string(r.images) + " images, " + std::to_string(s[1]) + " x " + std::to_string(s[2]) + " x " +
                  std::to_string(s[3]) + ", " + mib(r.bytes) + " decoded";
  if (r.resized) t += ", " + std::to_string(r.resized) + " resized";
  if (r.converted) t += ", " + std::to_string(r.converted) + " converted to " + std::to_string(s[1]) + " channel(s)";
  char b[96];
  std::snprintf(b, sizeof b, "; read in %.2f s on %d thread(s), %.0f images/s", r.seconds, r.threads, r.images_per_second());
  return t + b + r.passed_over.said("; ");
}

void load_folder(const std::string& root, const FolderOptions& o, TrainTest& tt) {
  const auto train_dir = (fs::path(root) / "train").string(), test_dir = (fs::path(root) / "test").string();
  if (!dir_exists(train_dir)) throw Error("image folder '" + root + "' has no train/ (root/train/<class>/*.png)");
  FolderReport tr;
  tt.train = read_image_folder(train_dir, o, &tr);
  tt.notes.push_back(folder_report_line("train/", tt.train, tr));
  if (o.val_fraction > 0 && !dir_exists(test_dir)) {
    auto [keep, val] = split_validation(tt.train, o.val_fraction, o.split_seed);
    tt.train = std::move(keep), tt.test = std::move(val);
    char b[160];
    std::snprintf(b, sizeof b, "evaluating on %lld images held out of train/ (no test/; data.val_fraction = %g, stratified, data.split_seed = %llu)",
                  (long long)tt.test.size(), o.val_fraction, (unsigned long long)o.split_seed);
    tt.notes.push_back(b);
  } else {
    if (!dir_exists(test_dir))
      throw Error("image folder '" + root + "' has no test/: set data.val_fraction (e.g. 0.1) to hold out part of train/ for evaluation");
    FolderReport te;
    tt.test = read_image_folder(test_dir, o, &te);
    tt.notes.push_back(folder_report_line("test/", tt.test, te) + (o.val_fraction > 0 ? " (evaluating on test/; data.val_fraction is for folders without one)" : ""));
    if (tt.train.classes != tt.test.classes) {
      // Name the classes: those of test/ that train/ lacks (the model cannot predict them) and
      // those of train/ that test/ lacks (the labels would be numbered differently).
      auto missing_from = [](const std::vector<std::string>& a, const std::vector<std::string>& b) {
        std::string out;
        for (auto& c : a)
          if (std::find(b.begin(), b.end(), c) == b.end()) out += (out.empty() ? "'" : ", '") + c + "'";
        return out;
      };
      const auto only_test = missing_from(tt.test.classes, tt.train.classes);
      const auto only_train = missing_from(tt.train.classes, tt.test.classes);
      std::string msg = "'" + root + "': train/ and test/ have different class folders:";
      if (!only_test.empty()) msg += " test/ has " + only_test + ", which train/ lacks;";
      if (!only_train.empty()) msg += " train/ has " + only_train + ", which test/ lacks;";
      msg.back() = ' ';
      throw Error(msg + "(every class needs a folder in both, as class labels are the folders' sorted order)");
    }
    if (tt.train.images.sizes().slice(1) != tt.test.images.sizes().slice(1))
      throw Error("'" + root + "': train/ and test/ images differ in shape (set data.image_size = [H, W] to give both one size)");
  }
  tt.notes.push_back("classes (train): " + counts_text(tt.train));
  check_balance("train/", tt.train, tt);
}

}  // namespace kiln
