// Image folders (issue #26): root/<class>/*.png|jpg|jpeg|bmp (at any depth below <class>, as
// torchvision's ImageFolder walks it; hidden entries never), of any size and channel count,
// decoded on every core into one uint8 N x C x H x W tensor.
//
// - Channels: the dataset has 3 channels when any image has colour, else 1. Grey images become
//   RGB by copying; an alpha channel is composited over `background` (a grey level 0..255):
//   out = round((a x + (255 - a) background) / 255).
// - Size: without image_size every image must have the first one's size (a clear refusal names
//   both files and the key that resizes). With image_size = [H, W] each image is fitted as it
//   is decoded: "stretch" (to H x W, aspect ratio not kept), "center_crop" (scaled to cover H x W,
//   then the middle cut out) or "pad" (scaled to fit inside H x W, then centred on `background`).
//   Each axis that shrinks uses a box (area) filter, each that grows a triangle (bilinear)
//   filter: stb_image_resize in linear colour space with clamped edges.
// - Memory: the decoded size N x C x H x W bytes is computed from the files' headers before
//   anything is decoded, and a folder over the limit is refused with what it needs and an
//   image_size that would fit.
// - Order: classes sorted by name, files sorted by path within a class, whatever the threads do.
#pragma once
#include <torch/torch.h>

#include <string>
#include <utility>
#include <vector>

#include "kiln/data/dataset.h"
#include "kiln/pixels/image_files.h"

namespace kiln {

using px::PassedOver;  // what the walk passed over (kiln/pixels/image_files.h)

// What reading a folder found and cost (a run's first lines print it).
struct FolderReport {
  int64_t images = 0, bytes = 0;     // images decoded; bytes of the decoded tensor
  std::vector<int64_t> per_class;    // images per class, in class order
  int64_t resized = 0, converted = 0;  // images whose size / channel count was changed
  double seconds = 0;                // wall time of reading and decoding
  int threads = 1;
  PassedOver passed_over;
  double images_per_second() const { return seconds > 0 ? images / seconds : 0; }
};

Dataset read_image_folder(const std::string& root, const FolderOptions& options = {}, FolderReport* report = nullptr);
// What a run's first lines say of a folder read: "DIR: N images, C x H x W, X MiB decoded,
// k resized, ...; read in S s on T thread(s), R images/s", then what was passed over, if anything.
std::string folder_report_line(const std::string& dir, const Dataset& d, const FolderReport& r);

// Unlabeled images (selftrain.unlabeled_folder): every .png/.jpg/.jpeg/.bmp/.webp/.heic/.heif/.avif under root at any
// depth (folder names mean nothing), sorted by path, the first `first` of them (0 = all), each
// with C channels (grey images become RGB; a colour image where C = 1 is refused, named) and
// fitted to H x W as options.resize says, alpha over options.background, under the same memory
// check (over it, the error says how many would fit: selftrain.unlabeled). Labels all -1, no
// classes; `paths` (optional) gets each image's path relative to root, in the dataset's order.
Dataset read_unlabeled_images(const std::string& root, int64_t C, int64_t H, int64_t W, int64_t first = 0,
                              const FolderOptions& options = {}, FolderReport* report = nullptr, std::vector<std::string>* paths = nullptr);

// load_dataset's "folder" case: root/train/ and root/test/ (the same class folders); a folder
// without test/ needs options.val_fraction > 0, and a seeded, stratified part of train/ is held
// out as the test set (with test/ present, test/ is used and val_fraction is not). Fills tt.train, tt.test and tt.notes (per-class counts, the
// decoded size, the decode rate, which evaluation set) and warns in tt.warnings when the
// classes are very unbalanced (the largest 10x the smallest or more) or a class is empty.
void load_folder(const std::string& root, const FolderOptions& options, TrainTest& tt);

// One decoded image (uint8 c x h x w, c = 1 grey, 2 grey+alpha, 3 RGB, 4 RGBA) with `channels`
// (1 or 3) channels, alpha composited over `background`. RGB to grey is refused (a dataset with
// any colour image is RGB).
torch::Tensor convert_channels(const torch::Tensor& image, int64_t channels, int64_t background);
// One image (uint8 C x h x w) fitted to H x W as `mode` says (see above).
torch::Tensor fit_image(const torch::Tensor& image, int64_t H, int64_t W, const std::string& mode, int64_t background);
// One image file as a folder's images are stored: decoded, converted to C channels
// (convert_channels) and fitted to H x W (fit_image) as `options` say; `converted` / `resized`
// (optional) say whether it had to be. The folder loaders and `kiln predict` read files with it.
torch::Tensor read_image_as(const std::string& path, int64_t C, int64_t H, int64_t W, const FolderOptions& options,
                            bool* converted = nullptr, bool* resized = nullptr);

// A seeded, stratified hold-out: round(fraction x n_c) examples of every class c (at least one
// when the class has two or more) go to the second dataset, the rest to the first; both keep the
// source's order. Throws when fraction is not in (0, 1) or a class would be left empty.
std::pair<Dataset, Dataset> split_validation(const Dataset& ds, double fraction, uint64_t seed);

}  // namespace kiln
