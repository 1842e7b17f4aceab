#include "kiln/report/tensorboard.h"

#include <unistd.h>

#include <array>
#include <chrono>
#include <cstring>

#include "kiln/core/error.h"
#include "kiln/core/fs.h"

namespace kiln {

namespace {
const std::array<uint32_t, 256>& crc_table() {
  static const auto table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;  // reflected Castagnoli
      t[i] = c;
    }
    return t;
  }();
  return table;
}

// Protocol-buffer encoding of the few fields used.
void varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out += static_cast<char>((v & 0x7f) | 0x80);
    v >>= 7;
  }
  out += static_cast<char>(v);
}
void key(std::string& out, int field, int wire) { varint(out, (static_cast<uint64_t>(field) << 3) | wire); }
void bytes_field(std::string& out, int field, const std::string& b) {
  key(out, field, 2);
  varint(out, b.size());
  out += b;
}
void double_field(std::string& out, int field, double v) {
  key(out, field, 1);
  char b[8];
  std::memcpy(b, &v, 8);  // little-endian host (x86-64, aarch64)
  out.append(b, 8);
}
void float_field(std::string& out, int field, float v) {
  key(out, field, 5);
  char b[4];
  std::memcpy(b, &v, 4);
  out.append(b, 4);
}
void int_field(std::string& out, int field, int64_t v) {
  key(out, field, 0);
  varint(out, static_cast<uint64_t>(v));
}

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// Event{wall_time = 1, step = 2, file_version = 3, summary = 5}
std::string event(int64_t step, const std::string* file_version, const std::string* summary) {
  std::string e;
  double_field(e, 1, now_seconds());
  int_field(e, 2, step);
  if (file_version) bytes_field(e, 3, *file_version);
  if (summary) bytes_field(e, 5, *summary);
  return e;
}
}  // namespace

uint32_t crc32c(const uint8_t* p, size_t n) {
  auto& t = crc_table();
  uint32_t c = 0xffffffffu;
  for (size_t i = 0; i < n; ++i) c = t[(c ^ p[i]) & 0xff] ^ (c >> 8);
  return c ^ 0xffffffffu;
}

uint32_t masked_crc32c(const uint8_t* p, size_t n) {
  uint32_t c = crc32c(p, n);
  return ((c >> 15) | (c << 17)) + 0xa282ead8u;
}

EventWriter::EventWriter(const std::string& dir) {
  make_dirs(dir);
  char host[128] = {0};
  gethostname(host, sizeof host - 1);
  path_ = dir + "/events.out.tfevents." + std::to_string(static_cast<int64_t>(now_seconds())) + "." + host + ".kiln";
  f_ = std::fopen(path_.c_str(), "ab");
  if (!f_) throw Error("cannot write TensorBoard events to '" + path_ + "'");
  std::string version = "brain.Event:2";
  write_event(event(0, &version, nullptr));
  flush();
}

EventWriter::~EventWriter() {
  if (f_) std::fclose(f_);
}

void EventWriter::write_event(const std::string& data) {
  uint8_t len[8];
  uint64_t n = data.size();
  for (int i = 0; i < 8; ++i) len[i] = static_cast<uint8_t>(n >> (8 * i));
  uint32_t lc = masked_crc32c(len, 8), dc = masked_crc32c(reinterpret_cast<const uint8_t*>(data.data()), data.size());
  uint8_t c[4];
  std::fwrite(len, 1, 8, f_);
  for (int i = 0; i < 4; ++i) c[i] = static_cast<uint8_t>(lc >> (8 * i));
  std::fwrite(c, 1, 4, f_);
  std::fwrite(data.data(), 1, data.size(), f_);
  for (int i = 0; i < 4; ++i) c[i] = static_cast<uint8_t>(dc >> (8 * i));
  std::fwrite(c, 1, 4, f_);
}

void EventWriter::scalar(const std::string& tag, double value, int64_t step) {
  std::string v, summary;
  bytes_field(v, 1, tag);                       // Value.tag
  float_field(v, 2, static_cast<float>(value));  // Value.simple_value
  bytes_field(summary, 1, v);                   // Summary.value
  write_event(event(step, nullptr, &summary));
}

void EventWriter::image(const std::string& tag, const std::vector<uint8_t>& png, int h, int w, int channels,
                        int64_t step) {
  std::string img, v, summary;
  int_field(img, 1, h);         // Image.height
  int_field(img, 2, w);         // Image.width
  int_field(img, 3, channels);  // Image.colorspace (1 gray, 3 RGB, 4 RGBA)
  bytes_field(img, 4, std::string(png.begin(), png.end()));  // Image.encoded_image_string
  bytes_field(v, 1, tag);
  bytes_field(v, 4, img);  // Value.image
  bytes_field(summary, 1, v);
  write_event(event(step, nullptr, &summary));
}

void EventWriter::flush() {
  if (f_) std::fflush(f_);
}

}  // namespace kiln
