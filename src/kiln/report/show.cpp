#include "kiln/report/show.h"

#include <algorithm>
#include <cstdio>

namespace kiln {

Canvas image_grid(const torch::Tensor& images, const std::vector<std::string>& captions,
                  const std::vector<Rgb>& colors, int cols, int scale) {
  const int n = static_cast<int>(images.size(0)), C = static_cast<int>(images.size(1));
  const int H = static_cast<int>(images.size(2)), W = static_cast<int>(images.size(3));
  size_t longest = 0;
  for (auto& c : captions) longest = std::max(longest, c.size());
  const int tile_w = std::max(W * scale, text_width(std::string(longest, 'x'))) + 6;
  const int tile_h = H * scale + (captions.empty() ? 0 : 10) + 6;
  cols = std::max(1, std::min(cols, n));
  const int rows = (n + cols - 1) / cols;
  Canvas c(cols * tile_w + 4, rows * tile_h + 4);
  auto hwc = images.permute({0, 2, 3, 1}).contiguous().to(torch::kUInt8);
  for (int i = 0; i < n; ++i) {
    int x = 4 + (i % cols) * tile_w, y = 4 + (i / cols) * tile_h;
    c.paste(x, y, hwc[i].data_ptr<uint8_t>(), H, W, C, scale);
    if (i < static_cast<int>(captions.size()))
      c.text(x, y + H * scale + 2, captions[i], i < static_cast<int>(colors.size()) ? colors[i] : Rgb{0, 0, 0});
  }
  return c;
}

torch::Tensor to_pixels(const torch::Tensor& x, const std::vector<double>& mean, const std::vector<double>& std) {
  auto f = x.to(torch::kFloat32).cpu();
  if (mean.empty()) return (f * 255).clamp(0, 255).round().to(torch::kUInt8);
  auto C = static_cast<int64_t>(mean.size());
  auto m = torch::tensor(mean, torch::kFloat32).view({1, C, 1, 1}), s = torch::tensor(std, torch::kFloat32).view({1, C, 1, 1});
  return (f * s + m).clamp(0, 255).round().to(torch::kUInt8);
}

torch::Tensor filters_to_pixels(const torch::Tensor& w) {
  auto f = w.to(torch::kFloat32).cpu();
  auto flat = f.flatten(1);
  auto lo = std::get<0>(flat.min(1)).view({-1, 1, 1, 1}), hi = std::get<0>(flat.max(1)).view({-1, 1, 1, 1});
  auto px = ((f - lo) / (hi - lo).clamp_min(1e-12) * 255).round().to(torch::kUInt8);
  // Show C = 3 filters as colour, anything else as its channels' mean.
  return px.size(1) == 3 ? px : px.to(torch::kFloat32).mean(1, true).round().to(torch::kUInt8);
}

torch::Tensor confusion_matrix(const torch::Tensor& pred, const torch::Tensor& y, int64_t K) {
  auto idx = y.to(torch::kInt64).cpu() * K + pred.to(torch::kInt64).cpu();
  return torch::bincount(idx, {}, K * K).view({K, K});
}

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
  std::string q = "\"";
  for (char ch : s) q += ch == '"' ? std::string("\"\"") : std::string(1, ch);
  return q + "\"";
}

std::string per_class_csv(const torch::Tensor& matrix, const std::vector<std::string>& classes) {
  auto m = matrix.to(torch::kCPU, torch::kInt64).contiguous();
  std::string out = "class,images,correct,accuracy\n";
  for (int64_t c = 0; c < m.size(0); ++c) {
    const int64_t n = m[c].sum().item<int64_t>(), right = m[c][c].item<int64_t>();
    const std::string name = csv_field(c < static_cast<int64_t>(classes.size()) ? classes[static_cast<size_t>(c)] : std::to_string(c));
    char acc[32] = "";
    if (n > 0) std::snprintf(acc, sizeof acc, "%.6f", static_cast<double>(right) / static_cast<double>(n));
    out += name + "," + std::to_string(n) + "," + std::to_string(right) + "," + acc + "\n";
  }
  return out;
}

Canvas confusion_image(const torch::Tensor& m, const std::vector<std::string>& classes) {
  const int K = static_cast<int>(m.size(0)), cell = 34, left = 70, top = 40;
  Canvas c(left + K * cell + 10, top + K * cell + 30);
  auto rows = m.to(torch::kFloat64).sum(1);
  c.text(left, 4, "PREDICTED", Rgb{0, 0, 0});
  c.text(4, top + K * cell + 12, "ROWS: TRUE CLASS", Rgb{0, 0, 0});
  for (int i = 0; i < K; ++i) {
    std::string name = i < static_cast<int>(classes.size()) ? classes[i].substr(0, 5) : std::to_string(i);
    c.text(4, top + i * cell + cell / 2 - 3, name, Rgb{0, 0, 0});
    c.text(left + i * cell + 2, top - 12, name.substr(0, 5), Rgb{0, 0, 0});
    for (int j = 0; j < K; ++j) {
      int64_t n = m[i][j].item<int64_t>();
      double frac = rows[i].item<double>() > 0 ? n / rows[i].item<double>() : 0;
      auto shade = static_cast<uint8_t>(255 - 200 * frac);
      Rgb bg = i == j ? Rgb{shade, 255, shade} : Rgb{255, shade, shade};
      c.rect(left + j * cell, top + i * cell, left + (j + 1) * cell - 2, top + (i + 1) * cell - 2, bg);
      auto s = std::to_string(n);
      c.text(left + j * cell + (cell - text_width(s)) / 2, top + i * cell + cell / 2 - 4, s, Rgb{0, 0, 0});
    }
  }
  return c;
}

Canvas predictions_grid(const torch::Tensor& images, const torch::Tensor& labels_in, const torch::Tensor& preds_in,
                        const std::vector<std::string>& classes, int64_t count, int scale) {
  auto labels = labels_in.cpu(), preds = preds_in.cpu();
  auto name = [&](int64_t k) { return k < static_cast<int64_t>(classes.size()) ? classes[k] : std::to_string(k); };
  auto wrong = preds.ne(labels).nonzero().flatten(), right = preds.eq(labels).nonzero().flatten();
  auto order = torch::cat({wrong, right}).slice(0, 0, count);
  std::vector<std::string> caps;
  std::vector<Rgb> colors;
  for (int64_t i = 0; i < order.size(0); ++i) {
    int64_t k = order[i].item<int64_t>(), t = labels[k].item<int64_t>(), p = preds[k].item<int64_t>();
    caps.push_back(t == p ? name(t).substr(0, 7) : name(t).substr(0, 5) + ">" + name(p).substr(0, 5));
    colors.push_back(t == p ? Rgb{0, 130, 0} : Rgb{200, 0, 0});
  }
  return image_grid(images.cpu().index_select(0, order), caps, colors, 8, scale);
}

}  // namespace kiln
