// TensorBoard event files, written directly: the TFRecord framing (length, masked CRC-32C,
// data, masked CRC-32C) around hand-encoded Event protocol buffers (wall_time, step,
// file_version, Summary{Value{tag, simple_value | image}}). No protobuf library is involved
// because only these few fields are needed; tests read the files back with TensorBoard's own
// reader.
#pragma once
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

namespace kiln {

// CRC-32C (Castagnoli), and TFRecord's mask of it.
uint32_t crc32c(const uint8_t* data, size_t n);
uint32_t masked_crc32c(const uint8_t* data, size_t n);

class EventWriter {
 public:
  // Creates dir/events.out.tfevents.<unix time>.<host>.kiln and writes the file-version event.
  explicit EventWriter(const std::string& dir);
  ~EventWriter();
  EventWriter(const EventWriter&) = delete;
  EventWriter& operator=(const EventWriter&) = delete;

  void scalar(const std::string& tag, double value, int64_t step);
  // An encoded PNG of height x width x channels.
  void image(const std::string& tag, const std::vector<uint8_t>& png, int height, int width, int channels,
             int64_t step);
  void flush();
  const std::string& path() const { return path_; }

 private:
  void write_event(const std::string& event_bytes);
  std::string path_;
  FILE* f_ = nullptr;
};

}  // namespace kiln
