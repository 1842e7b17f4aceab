#include "kiln/report/png.h"

#include <stb/stb_image_write.h>

#include <algorithm>
#include <cmath>

#include "kiln/core/error.h"
#include "kiln/core/fs.h"

namespace kiln {

Canvas::Canvas(int w, int h, Rgb bg) : width(w), height(h), pixels(static_cast<size_t>(w) * h * 3) {
  for (size_t i = 0; i < pixels.size(); i += 3) pixels[i] = bg.r, pixels[i + 1] = bg.g, pixels[i + 2] = bg.b;
}

void Canvas::set(int x, int y, Rgb c) {
  if (x < 0 || y < 0 || x >= width || y >= height) return;
  auto* p = &pixels[(static_cast<size_t>(y) * width + x) * 3];
  p[0] = c.r, p[1] = c.g, p[2] = c.b;
}

void Canvas::line(double x0, double y0, double x1, double y1, Rgb c, int t) {
  int n = static_cast<int>(std::max(std::fabs(x1 - x0), std::fabs(y1 - y0))) + 1;
  for (int i = 0; i <= n; ++i) {
    double a = static_cast<double>(i) / n;
    int x = static_cast<int>(std::lround(x0 + a * (x1 - x0))), y = static_cast<int>(std::lround(y0 + a * (y1 - y0)));
    for (int dx = 0; dx < t; ++dx)
      for (int dy = 0; dy < t; ++dy) set(x + dx - t / 2, y + dy - t / 2, c);
  }
}

void Canvas::rect(int x0, int y0, int x1, int y1, Rgb c) {
  for (int y = y0; y <= y1; ++y)
    for (int x = x0; x <= x1; ++x) set(x, y, c);
}

namespace {
void append(void* ctx, void* data, int size) {
  auto* v = static_cast<std::vector<uint8_t>*>(ctx);
  auto* p = static_cast<uint8_t*>(data);
  v->insert(v->end(), p, p + size);
}
}  // namespace

std::vector<uint8_t> Canvas::png() const {
  std::vector<uint8_t> out;
  if (!stbi_write_png_to_func(append, &out, width, height, 3, pixels.data(), width * 3))
    throw Error("PNG encoding failed");
  return out;
}

void Canvas::save(const std::string& path) const {
  auto b = png();
  atomic_write(path, b.data(), b.size());
}

Canvas plot_xy(const std::vector<double>& x, const std::vector<std::vector<double>>& ys, const std::vector<Rgb>& colors,
               bool log_x, double marker_x, int W, int H) {
  Canvas c(W, H);
  const int left = 40, right = W - 20, top = 20, bottom = H - 30;
  auto tx = [&](double v) { return log_x ? std::log10(v) : v; };
  double xmin = 1e300, xmax = -1e300, ymin = 1e300, ymax = -1e300;
  for (double v : x) xmin = std::min(xmin, tx(v)), xmax = std::max(xmax, tx(v));
  for (auto& y : ys)
    for (double v : y)
      if (std::isfinite(v)) ymin = std::min(ymin, v), ymax = std::max(ymax, v);
  if (!(xmax > xmin)) xmax = xmin + 1;
  if (!(ymax > ymin)) ymax = ymin + 1;
  auto px = [&](double v) { return left + (tx(v) - xmin) / (xmax - xmin) * (right - left); };
  auto py = [&](double v) { return bottom - (v - ymin) / (ymax - ymin) * (bottom - top); };
  Rgb grid{225, 225, 225}, axis{80, 80, 80};
  if (log_x)
    for (double d = std::ceil(xmin); d <= xmax; d += 1) {
      double X = left + (d - xmin) / (xmax - xmin) * (right - left);
      c.line(X, top, X, bottom, grid);
    }
  c.line(left, bottom, right, bottom, axis);
  c.line(left, top, left, bottom, axis);
  if (marker_x > 0) c.line(px(marker_x), top, px(marker_x), bottom, Rgb{220, 40, 40}, 2);
  for (size_t k = 0; k < ys.size(); ++k)
    for (size_t i = 1; i < x.size() && i < ys[k].size(); ++i)
      if (std::isfinite(ys[k][i - 1]) && std::isfinite(ys[k][i]))
        c.line(px(x[i - 1]), py(ys[k][i - 1]), px(x[i]), py(ys[k][i]), colors[k % colors.size()], 2);
  return c;
}

}  // namespace kiln
