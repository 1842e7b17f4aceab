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
struct Glyph {
  char c;
  uint8_t rows[7];  // 5 bits each, most significant = leftmost
};
// kiln's own 5x7 font.
const Glyph kFont[] = {
    {' ', {0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00}},
    {'%', {0x18, 0x19, 0x02, 0x04, 0x08, 0x13, 0x03}},
    {'+', {0x00, 0x04, 0x04, 0x1f, 0x04, 0x04, 0x00}},
    {'-', {0x00, 0x00, 0x00, 0x1f, 0x00, 0x00, 0x00}},
    {'.', {0x00, 0x00, 0x00, 0x00, 0x00, 0x0c, 0x0c}},
    {'/', {0x00, 0x01, 0x02, 0x04, 0x08, 0x10, 0x00}},
    {'0', {0x0e, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0e}},
    {'1', {0x04, 0x0c, 0x04, 0x04, 0x04, 0x04, 0x0e}},
    {'2', {0x0e, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1f}},
    {'3', {0x1f, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0e}},
    {'4', {0x02, 0x06, 0x0a, 0x12, 0x1f, 0x02, 0x02}},
    {'5', {0x1f, 0x10, 0x1e, 0x01, 0x01, 0x11, 0x0e}},
    {'6', {0x06, 0x08, 0x10, 0x1e, 0x11, 0x11, 0x0e}},
    {'7', {0x1f, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08}},
    {'8', {0x0e, 0x11, 0x11, 0x0e, 0x11, 0x11, 0x0e}},
    {'9', {0x0e, 0x11, 0x11, 0x0f, 0x01, 0x02, 0x0c}},
    {':', {0x00, 0x0c, 0x0c, 0x00, 0x0c, 0x0c, 0x00}},
    {'=', {0x00, 0x00, 0x1f, 0x00, 0x1f, 0x00, 0x00}},
    {'>', {0x08, 0x04, 0x02, 0x01, 0x02, 0x04, 0x08}},
    {'A', {0x0e, 0x11, 0x11, 0x1f, 0x11, 0x11, 0x11}},
    {'B', {0x1e, 0x11, 0x11, 0x1e, 0x11, 0x11, 0x1e}},
    {'C', {0x0e, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0e}},
    {'D', {0x1e, 0x11, 0x11, 0x11, 0x11, 0x11, 0x1e}},
    {'E', {0x1f, 0x10, 0x10, 0x1e, 0x10, 0x10, 0x1f}},
    {'F', {0x1f, 0x10, 0x10, 0x1e, 0x10, 0x10, 0x10}},
    {'G', {0x0e, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0f}},
    {'H', {0x11, 0x11, 0x11, 0x1f, 0x11, 0x11, 0x11}},
    {'I', {0x0e, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0e}},
    {'J', {0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0c}},
    {'K', {0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11}},
    {'L', {0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1f}},
    {'M', {0x11, 0x1b, 0x15, 0x15, 0x11, 0x11, 0x11}},
    {'N', {0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11}},
    {'O', {0x0e, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0e}},
    {'P', {0x1e, 0x11, 0x11, 0x1e, 0x10, 0x10, 0x10}},
    {'Q', {0x0e, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0d}},
    {'R', {0x1e, 0x11, 0x11, 0x1e, 0x14, 0x12, 0x11}},
    {'S', {0x0f, 0x10, 0x10, 0x0e, 0x01, 0x01, 0x1e}},
    {'T', {0x1f, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04}},
    {'U', {0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0e}},
    {'V', {0x11, 0x11, 0x11, 0x11, 0x11, 0x0a, 0x04}},
    {'W', {0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0a}},
    {'X', {0x11, 0x11, 0x0a, 0x04, 0x0a, 0x11, 0x11}},
    {'Y', {0x11, 0x11, 0x0a, 0x04, 0x04, 0x04, 0x04}},
    {'Z', {0x1f, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1f}},
};

const Glyph* glyph(char c) {
  if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  for (auto& g : kFont)
    if (g.c == c) return &g;
  return &kFont[0];  // space
}

void append(void* ctx, void* data, int size) {
  auto* v = static_cast<std::vector<uint8_t>*>(ctx);
  auto* p = static_cast<uint8_t*>(data);
  v->insert(v->end(), p, p + size);
}
}  // namespace

int text_width(const std::string& s, int scale) { return static_cast<int>(s.size()) * 6 * scale; }

void Canvas::text(int x, int y, const std::string& s, Rgb c, int scale) {
  for (size_t i = 0; i < s.size(); ++i) {
    const Glyph* g = glyph(s[i]);
    for (int r = 0; r < 7; ++r)
      for (int b = 0; b < 5; ++b)
        if (g->rows[r] & (0x10 >> b))
          rect(x + static_cast<int>(i) * 6 * scale + b * scale, y + r * scale,
               x + static_cast<int>(i) * 6 * scale + b * scale + scale - 1, y + r * scale + scale - 1, c);
  }
}

void Canvas::paste(int x, int y, const uint8_t* hwc, int h, int w, int ch, int scale) {
  for (int r = 0; r < h; ++r)
    for (int q = 0; q < w; ++q) {
      const uint8_t* p = hwc + (static_cast<size_t>(r) * w + q) * ch;
      Rgb c = ch >= 3 ? Rgb{p[0], p[1], p[2]} : Rgb{p[0], p[0], p[0]};
      rect(x + q * scale, y + r * scale, x + q * scale + scale - 1, y + r * scale + scale - 1, c);
    }
}

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
