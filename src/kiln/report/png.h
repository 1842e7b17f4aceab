// Small raster drawing and PNG output (stb_image_write): plots and image grids for the run
// directory and TensorBoard.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace kiln {

struct Rgb {
  uint8_t r, g, b;
};

// An RGB canvas with (0, 0) at the top left.
struct Canvas {
  int width, height;
  std::vector<uint8_t> pixels;  // width * height * 3
  Canvas(int w, int h, Rgb background = {255, 255, 255});
  void set(int x, int y, Rgb c);
  void line(double x0, double y0, double x1, double y1, Rgb c, int thickness = 1);
  void rect(int x0, int y0, int x1, int y1, Rgb c);  // filled, inclusive
  // Text in kiln's 5x7 bitmap font (upper-case letters, digits, " -.%:/>=+"; lower case is
  // drawn as upper case, anything else as a space), `scale` pixels per font pixel.
  void text(int x, int y, const std::string& s, Rgb c, int scale = 1);
  // Pastes an RGB or grey image (channels 3 or 1, uint8 HWC) at (x, y), each pixel as scale x scale.
  void paste(int x, int y, const uint8_t* hwc, int h, int w, int channels, int scale = 1);
  std::vector<uint8_t> png() const;
  void save(const std::string& path) const;  // atomically
};

// Width in pixels of `s` drawn by Canvas::text at `scale`.
int text_width(const std::string& s, int scale = 1);

// A line plot of y against x (x on a log10 axis when log_x), with light grid lines at x's
// decades (log_x) and an optional vertical marker; no text (the numbers go to a CSV beside it).
Canvas plot_xy(const std::vector<double>& x, const std::vector<std::vector<double>>& ys, const std::vector<Rgb>& colors,
               bool log_x, double marker_x = -1, int width = 640, int height = 400);

}  // namespace kiln
