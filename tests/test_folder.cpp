// Image folders of any size and channel count (issue #26; kiln/data/folder.h): each conversion
// and resize mode against hand-computed pixels, mixed folders loaded at one size, the order
// independent of the threads, the hold-out split, the refusals.
#include <gtest/gtest.h>
#include <fstream>
#include <iterator>
#include <stb/stb_image_write.h>

#include "helpers.h"
#include "kiln/data/folder.h"
#include "kiln/data/loader.h"
#include "kiln/pixels/pixels.h"
#include "kiln/report/show.h"

namespace kiln {
namespace {
using test::expect_error_containing;
using test::TempDir;

torch::Tensor img(std::vector<int> values, int64_t c, int64_t h, int64_t w) {
  return torch::tensor(std::vector<int64_t>(values.begin(), values.end())).to(torch::kUInt8).view({c, h, w});
}

TEST(Folder, ChannelConversionsAsDefined) {
  // grey -> RGB: copied.
  auto g = convert_channels(img({0, 200}, 1, 1, 2), 3, 0);
  EXPECT_TRUE(torch::equal(g, img({0, 200, 0, 200, 0, 200}, 3, 1, 2)));
  // grey + alpha over a background: round((a x + (255 - a) bg) / 255): 200 at alpha 128 is
  // 100.39 -> 100 over black, 227.39 -> 227 over white; as RGB, copied.
  EXPECT_EQ(convert_channels(img({200, 128}, 2, 1, 1), 1, 0).item<uint8_t>(), 100);
  EXPECT_EQ(convert_channels(img({200, 128}, 2, 1, 1), 1, 255).item<uint8_t>(), 227);
  EXPECT_TRUE(torch::equal(convert_channels(img({200, 128}, 2, 1, 1), 3, 255), img({227, 227, 227}, 3, 1, 1)));
  // RGBA: transparent -> the background; opaque -> the colour itself.
  EXPECT_TRUE(torch::equal(convert_channels(img({10, 10, 20, 20, 30, 30, 0, 255}, 4, 1, 2), 3, 50), img({50, 10, 50, 20, 50, 30}, 3, 1, 2)));
  EXPECT_TRUE(torch::equal(convert_channels(img({1, 2, 3}, 3, 1, 1), 3, 0), img({1, 2, 3}, 3, 1, 1)));
  expect_error_containing([] { convert_channels(img({1, 2, 3}, 3, 1, 1), 1, 0); }, "has 3 channels (colour), and this model takes grey images");
  // Colour to grey only when asked (kiln predict / kiln-classify --grey): BT.601 luma rounded half
  // up, (299 R + 587 G + 114 B + 500) / 1000, after the alpha: red 76.245 -> 76, green 149.685 ->
  // 150, blue 29.07 -> 29, (10, 20, 30) 18.15 -> 18; (200, 100, 0) at alpha 128 over white is
  // (227, 177, 127), whose luma 186.25 -> 186.
  const px::Image rgb{3, 1, 4, {255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30}};
  EXPECT_EQ(px::with_channels(rgb, 1, 0, "rgb.png", true).data, (std::vector<uint8_t>{76, 150, 29, 18}));
  EXPECT_EQ(px::with_channels(px::Image{4, 1, 1, {200, 100, 0, 128}}, 1, 255, "rgba.png", true).data, std::vector<uint8_t>{186});
  expect_error_containing([&] { px::with_channels(rgb, 1, 0, "rgb.png"); }, "image 'rgb.png' has 3 channels (colour)");
}

TEST(Folder, ResizeModesAsDefined) {
  // Shrinking by 2 with the box filter: the mean of each 2x2 block (v = 40 y + 8 x).
  std::vector<int> v;
  for (int y = 0; y < 4; ++y)
    for (int x = 0; x < 4; ++x) v.push_back(40 * y + 8 * x);
  EXPECT_TRUE(torch::equal(fit_image(img(v, 1, 4, 4), 2, 2, "stretch", 0), img({24, 40, 104, 120}, 1, 2, 2)));
  // Enlarging 2 -> 4 with the triangle (bilinear) filter, edges clamped: output centres at
  // input positions 0.25, 0.75, 1.25, 1.75 between pixel centres 0.5 (0) and 1.5 (100).
  EXPECT_TRUE(torch::equal(fit_image(img({0, 100}, 1, 1, 2), 1, 4, "stretch", 0), img({0, 25, 75, 100}, 1, 1, 4)));
  // 2 x 4 into 2 x 2: center_crop keeps the middle columns; pad (into 4 x 4) centres the image
  // on the background, unscaled (it already fits).
  auto wide = img({1, 2, 3, 4, 5, 6, 7, 8}, 1, 2, 4);
  EXPECT_TRUE(torch::equal(fit_image(wide, 2, 2, "center_crop", 0), img({2, 3, 6, 7}, 1, 2, 2)));
  EXPECT_TRUE(torch::equal(fit_image(wide, 4, 4, "pad", 9), img({9, 9, 9, 9, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 9}, 1, 4, 4)));
  // 2 x 4 padded into 2 x 2: scaled by 1/2 to 1 x 2, placed in row 0 (top = (2 - 1) / 2 = 0),
  // row 1 the background.
  auto padded = fit_image(wide, 2, 2, "pad", 0);
  EXPECT_EQ(padded.sizes(), (std::vector<int64_t>{1, 2, 2}));
  EXPECT_TRUE(torch::equal(padded[0][1], torch::zeros({2}, torch::kUInt8)));
  expect_error_containing([&] { fit_image(wide, 2, 2, "squash", 0); }, "stretch | center_crop | pad");
}

// kiln-classify prepares an image file without LibTorch (kiln/pixels/pixels.h): its view (the
// central data.eval_crop of each side resized to data.input_size) must be the one the loader
// shows the network. Against DeviceLoader itself (normalised, the view taken on the normalised
// images, which the filter's rows summing to 1 makes the same up to rounding): shrinking,
// enlarging, a crop alone, both sides unequal, and the identity.
TEST(Pixels, ViewIsTheLoadersView) {
  const int64_t C = 3, H = 40, W = 52;
  auto stored = torch::randint(0, 256, {1, C, H, W}, torch::kInt64).to(torch::kUInt8);
  auto hwc = stored[0].permute({1, 2, 0}).contiguous();
  px::Image image{C, H, W, std::vector<uint8_t>(hwc.data_ptr<uint8_t>(), hwc.data_ptr<uint8_t>() + hwc.numel())};
  Dataset ds{stored, torch::zeros({1}, torch::kInt64), {"a"}};
  const std::vector<double> mean{120, 110, 100}, stdev{60, 55, 50};
  for (auto [h, w, fraction] : {std::tuple<int64_t, int64_t, double>{32, 32, 0.875}, {64, 80, 1.0}, {40, 52, 0.5}, {20, 36, 0.75},
                                {40, 52, 1.0}, {7, 9, 0.9}}) {
    DeviceLoader L(ds, torch::kCPU, torch::kFloat32, mean, stdev, false, View{h, w, fraction});
    const auto want = L.slice(0, 1).x[0];
    ASSERT_EQ(want.sizes(), (std::vector<int64_t>{C, h, w}));
    const auto got = px::view(image, fraction, h, w);
    ASSERT_EQ(got.size(), static_cast<size_t>(C * h * w));
    auto g = torch::from_blob(const_cast<float*>(got.data()), {C, h, w}, torch::kFloat32).clone();
    g = (g - torch::tensor(mean, torch::kFloat32).view({C, 1, 1})) / torch::tensor(stdev, torch::kFloat32).view({C, 1, 1});
    const double worst = (g - want).abs().max().item<double>();
    std::printf("%lldx%lld of the central %g: largest difference from the loader's view %.2e (normalised units)\n", (long long)h, (long long)w,
                fraction, worst);
    EXPECT_LT(worst, 1e-5) << h << "x" << w << " of the central " << fraction;
    if (fraction == 1 && h == H && w == W) EXPECT_EQ(got, px::planar(image)) << "the identity view is not the image itself";
  }
  // A fraction that is not one is refused, naming the key.
  expect_error_containing([&] { px::view(image, 0, 8, 8); }, "data.eval_crop must be in (0, 1]");
}

void png(const std::filesystem::path& p, int w, int h, int c, int seed) {
  std::filesystem::create_directories(p.parent_path());
  std::vector<uint8_t> px(static_cast<size_t>(w * h * c));
  for (size_t i = 0; i < px.size(); ++i) px[i] = static_cast<uint8_t>((i * 37 + static_cast<size_t>(seed) * 11) % 256);
  if (c == 2 || c == 4)
    for (size_t i = static_cast<size_t>(c - 1); i < px.size(); i += static_cast<size_t>(c)) px[i] = 255;  // opaque
  ASSERT_TRUE(stbi_write_png(p.c_str(), w, h, c, px.data(), w * c));
}

// train/{a,b}/: RGB, grey, grey+alpha and RGBA images of four sizes.
void mixed_folder(const std::filesystem::path& root) {
  int k = 0;
  for (auto cls : {"a", "b"})
    for (auto [w, h, c] : std::vector<std::tuple<int, int, int>>{{8, 6, 3}, {5, 5, 1}, {7, 9, 2}, {6, 6, 4}}) {
      // The seed is the file's number (it was k++ in the name beside k as the seed, read in an
      // unspecified order: clang warned, and compilers could seed differently).
      png(root / cls / (std::to_string(k) + ".png"), w, h, c, k);
      ++k;
    }
}

TEST(Folder, MixedSizesAndChannelsLoadAtOneSize) {
  TempDir d;
  mixed_folder(d.path);
  expect_error_containing([&] { read_image_folder(d.path.string()); }, "set data.image_size = [H, W]");
  // ... and says which sizes there are, the most common first, to choose one from.
  expect_error_containing([&] { read_image_folder(d.path.string()); },
                          "; its 8 images come in 4 sizes (w x h): 5x5 2, 6x6 2, 7x9 2, 8x6 2; median 7 x 6");
  FolderOptions o;
  o.image_size = {4, 4};
  FolderReport r;
  auto one = read_image_folder(d.path.string(), o, &r);
  ASSERT_EQ(one.images.sizes(), (std::vector<int64_t>{8, 3, 4, 4}));
  EXPECT_EQ(r.images, 8);
  EXPECT_EQ(r.resized, 8);
  EXPECT_EQ(r.converted, 6);  // the grey, grey+alpha and RGBA ones of each class
  EXPECT_EQ(r.per_class, (std::vector<int64_t>{4, 4}));
  EXPECT_EQ(r.bytes, 8 * 3 * 4 * 4);
  // The same bytes whatever the number of threads (each image lands in its own row).
  for (int t : {1, 3}) {
    o.threads = t;
    EXPECT_TRUE(torch::equal(read_image_folder(d.path.string(), o).images, one.images)) << t << " threads";
  }
  // A grey image's three channels are equal.
  EXPECT_TRUE(torch::equal(one.images[1][0], one.images[1][2]));
}

TEST(Folder, TooLargeIsRefusedBeforeDecodingWithASizeThatFits) {
  TempDir d;
  mixed_folder(d.path);
  FolderOptions o;
  o.image_size = {1024, 1024};  // 8 x 3 x 1024 x 1024 = 24 MiB
  o.memory_limit_mb = 6;
  expect_error_containing([&] { read_image_folder(d.path.string(), o); }, "need 24 MiB decoded, more than the 6 MiB allowed");
  expect_error_containing([&] { read_image_folder(d.path.string(), o); }, "data.image_size = [512, 512] would fit");
}

TEST(Folder, ValidationHoldOutIsStratifiedAndSeeded) {
  Dataset ds;
  std::vector<int64_t> labels;
  for (int64_t c = 0; c < 3; ++c)
    for (int64_t i = 0; i < std::vector<int64_t>{10, 20, 3}[static_cast<size_t>(c)]; ++i) labels.push_back(c);
  const auto n = static_cast<int64_t>(labels.size());
  ds.labels = torch::tensor(labels);
  ds.images = torch::arange(n).to(torch::kUInt8).view({n, 1, 1, 1});
  ds.classes = {"x", "y", "z"};
  auto [train, val] = split_validation(ds, 0.2, 7);
  // round(0.2 n_c): 2, 4 and 1 (0.6 rounds to 1), the rest kept; every image in exactly one.
  EXPECT_TRUE(torch::equal(torch::bincount(val.labels, {}, 3), torch::tensor(std::vector<int64_t>{2, 4, 1})));
  EXPECT_EQ(train.size() + val.size(), n);
  auto all = torch::cat({train.images.flatten(), val.images.flatten()}).to(torch::kInt64);
  EXPECT_TRUE(torch::equal(std::get<0>(all.sort()), torch::arange(n)));
  // Each part keeps the source's order; the same seed gives the same split, another another.
  auto ids = val.images.flatten().to(torch::kInt64);
  EXPECT_TRUE(torch::equal(ids, std::get<0>(ids.sort())));
  EXPECT_TRUE(torch::equal(split_validation(ds, 0.2, 7).second.images, val.images));
  EXPECT_FALSE(torch::equal(split_validation(ds, 0.2, 8).second.images, val.images));
  expect_error_containing([&] { split_validation(ds, 1.0, 7); }, "data.val_fraction must be in (0, 1)");
}

TEST(Folder, FolderWithoutTestUsesTheHoldOutAndSaysSo) {
  TempDir d;
  for (int i = 0; i < 20; ++i) png(d.path / "train" / "big" / (std::to_string(i) + ".png"), 4, 4, 3, i);
  png(d.path / "train" / "small" / "0.png", 4, 4, 3, 99);
  png(d.path / "train" / "small" / "1.png", 4, 4, 3, 98);
  expect_error_containing([&] { load_dataset("folder", "", d.path.string()); }, "has no test/: set data.val_fraction");
  FolderOptions o;
  o.val_fraction = 0.1;
  auto tt = load_dataset("folder", "", d.path.string(), o);
  EXPECT_EQ(tt.test.size(), 3);  // round(2.0) of big, max(1, round(0.2)) of small
  EXPECT_EQ(tt.train.size(), 19);
  std::string notes;
  for (auto& s : tt.notes) notes += s + "\n";
  EXPECT_NE(notes.find("held out of train/ (no test/; data.val_fraction = 0.1"), std::string::npos) << notes;
  EXPECT_NE(notes.find("classes (train): big 18, small 1"), std::string::npos) << notes;
  EXPECT_NE(notes.find("images/s"), std::string::npos) << notes;
  ASSERT_EQ(tt.warnings.size(), 1u);
  EXPECT_NE(tt.warnings[0].find("very unbalanced: 18 images in the largest, 1 in the smallest"), std::string::npos) << tt.warnings[0];
  // With test/ present, test/ is the evaluation set whatever val_fraction says.
  png(d.path / "test" / "big" / "0.png", 4, 4, 3, 1);
  png(d.path / "test" / "small" / "0.png", 4, 4, 3, 2);
  auto with_test = load_dataset("folder", "", d.path.string(), o);
  EXPECT_EQ(with_test.test.size(), 2);
  EXPECT_EQ(with_test.train.size(), 22);
}

// A class folder is read at any depth, as torchvision's ImageFolder reads it; what the walk
// leaves unread is said, so that no image goes missing without a word: files of other formats by
// extension, images outside any class folder, hidden folders (not classes, not entered); hidden
// files pass silently. A folder with nothing kiln reads says what it did find.
TEST(Folder, WhatTheWalkPassesOverIsSaid) {
  TempDir d;
  const auto root = d.path / "train";
  png(root / "cat" / "0.png", 4, 4, 3, 1);
  png(root / "dog" / "0.png", 4, 4, 3, 2);
  FolderReport r;
  read_image_folder(root.string(), {}, &r);
  EXPECT_TRUE(r.passed_over.empty());
  EXPECT_EQ(r.passed_over.text(), "");
  const auto noted = [&](int64_t images) {
    const Dataset ds = read_image_folder(root.string(), {}, &r);
    EXPECT_EQ(ds.classes, (std::vector<std::string>{"cat", "dog"}));
    EXPECT_EQ(ds.size(), images);
    return folder_report_line("train/", ds, r);
  };
  EXPECT_EQ(noted(2).find("passed over"), std::string::npos);
  for (auto f : {"cat/1.tiff", "cat/2.TIFF", "dog/3.tiff", "dog/4.gif", "dog/notes", "cat/.DS_Store", "dog/._0.png"})
    test::write_bytes((root / f).string(), {1, 2, 3});
  std::string line = noted(2);
  EXPECT_NE(line.find("; passed over 5 files of a format kiln does not read (3 .tiff, 1 .gif, 1 without an extension; kiln reads "
                      ".png/.jpg/.jpeg/.bmp/.webp/.heic/.heif/.avif)"),
            std::string::npos)
      << line;
  // Below a class folder, at any depth: the class's images, sorted by path.
  png(root / "cat" / "2019" / "a" / "0.png", 4, 4, 3, 4);
  png(root / "dog" / "2019" / "0.png", 4, 4, 3, 5);
  png(root / "stray.png", 4, 4, 3, 3);
  png(root / ".ipynb_checkpoints" / "0.png", 4, 4, 3, 6);
  png(root / "cat" / ".thumbs" / "0.png", 4, 4, 3, 7);
  line = noted(4);
  EXPECT_NE(line.find(", 1 image outside any class folder (kiln reads root/<class>/<image>, at any depth below <class>) and 2 hidden "
                      "folders (.ipynb_checkpoints, cat/.thumbs), not read"),
            std::string::npos)
      << line;
  // Links to folders are followed, each folder once by its real path: a second path to one, and a
  // link back up (a cycle), are said, not walked again.
  std::filesystem::create_directory_symlink(root / "cat" / "2019", root / "cat" / "again");
  std::filesystem::create_directory_symlink(root / "cat", root / "cat" / "2019" / "loop");
  std::filesystem::create_symlink("self", root / "self");  // a link to itself, in the root: no class (and no internal error)
  line = noted(4);
  EXPECT_NE(line.find(", 2 links to a folder already walked (a second path to it, or a cycle), not followed again and 2 hidden folders"),
            std::string::npos)
      << line;
  const Dataset ds = read_image_folder(root.string());
  EXPECT_TRUE(torch::equal(ds.labels, torch::tensor({0, 0, 1, 1}, torch::kInt64)));
  const std::vector<std::filesystem::path> in_order = {root / "cat" / "0.png", root / "cat" / "2019" / "a" / "0.png", root / "dog" / "0.png",
                                                       root / "dog" / "2019" / "0.png"};
  for (size_t i = 0; i < in_order.size(); ++i) {
    std::ifstream f(in_order[i], std::ios::binary);
    const px::Image img = px::decode(std::vector<uint8_t>((std::istreambuf_iterator<char>(f)), {}), in_order[i].string());
    EXPECT_TRUE(torch::equal(ds.images[static_cast<int64_t>(i)].permute({1, 2, 0}).flatten(),
                             torch::tensor(std::vector<int64_t>(img.data.begin(), img.data.end())).to(torch::kUInt8)))
        << in_order[i];
  }
  // Nothing kiln reads: the refusal says what is there.
  const auto none = d.path / "none";
  test::write_bytes((none / "a" / "0.tiff").string(), {1});
  expect_error_containing([&] { read_image_folder(none.string()); },
                          "has no .png/.jpg/.jpeg/.bmp/.webp/.heic/.heif/.avif images in its class folders: passed over 1 file of a format kiln does not read (1 .tiff");
  test::write_bytes((none / "x.jpg").string(), {1});
  remove_tree((none / "a").string());
  expect_error_containing([&] { read_image_folder(none.string()); }, "has no class subdirectories (root/<class>/*.png): passed over 1 image outside any class folder");
  // The unlabeled reader (any depth) alike.
  test::write_bytes((d.path / "u" / "deep" / "0.tiff").string(), {1});
  expect_error_containing([&] { read_unlabeled_images((d.path / "u").string(), 3, 4, 4); },
                          "has no .png/.jpg/.jpeg/.bmp/.webp/.heic/.heif/.avif images (at any depth): passed over 1 file of a format kiln does not read (1 .tiff");
  png(d.path / "u" / "0.png", 4, 4, 3, 8);
  png(d.path / "u" / "deep" / ".ipynb_checkpoints" / "0.png", 4, 4, 3, 9);
  test::write_bytes((d.path / "u" / "._0.png").string(), {1});  // macOS's metadata beside 0.png: not a PNG
  FolderReport u;
  std::vector<std::string> paths;
  EXPECT_EQ(read_unlabeled_images((d.path / "u").string(), 3, 4, 4, 0, {}, &u, &paths).size(), 1);
  EXPECT_EQ(paths, (std::vector<std::string>{"0.png"}));
  EXPECT_EQ(u.passed_over.files, (std::map<std::string, int64_t>{{".tiff", 1}}));
  EXPECT_EQ(u.passed_over.hidden_folders, (std::vector<std::string>{"deep/.ipynb_checkpoints"}));
}

// The report's per-class accuracy (issue #26: beside the confusion matrix): rows are true
// classes; a class without test images has no accuracy; names with commas or quotes are quoted.
TEST(Folder, ReportGivesPerClassAccuracy) {
  auto m = torch::tensor(std::vector<int64_t>{3, 1, 0, 0, 4, 0, 0, 0, 0}).view({3, 3});
  EXPECT_EQ(per_class_csv(m, {"a,b", "say \"hi\"", "c"}),
            "class,images,correct,accuracy\n\"a,b\",4,3,0.750000\n\"say \"\"hi\"\"\",4,4,1.000000\nc,0,0,\n");
}

}  // namespace
}  // namespace kiln
