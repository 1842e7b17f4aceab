// Which files under a folder are images kiln reads, and what else is there: the one walk of the
// folder loaders (root/<class>/..., selftrain.unlabeled_folder) and of `kiln predict` and
// `kiln-classify` given a folder. No LibTorch.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace kiln::px {

// What a walk left unread, so that no image goes missing without a word: files of formats kiln
// does not read (by extension, lower case, "" for none), images lying in a folder loader's root
// outside any class folder, and hidden folders (a name starting with '.', such as
// .ipynb_checkpoints: not entered; by their path from the walk's base, or as found), and links to a folder
// already walked (a second path to it, or a link back up: not followed again, so no image is
// read twice and a cycle ends). Hidden files (.DS_Store, macOS's ._x.png beside x.png) are passed
// over without a word.
struct PassedOver {
  std::map<std::string, int64_t> files;
  int64_t loose_images = 0, repeated_folders = 0;
  std::vector<std::string> hidden_folders;
  bool empty() const { return files.empty() && loose_images == 0 && repeated_folders == 0 && hidden_folders.empty(); }
  // "passed over 8 files of a format kiln does not read (6 .heic, 2 .gif; kiln reads ...), ..."; "" when nothing was.
  std::string text() const;
  // `lead` + text(), or "" when nothing was passed over: the tail of a message or a report line.
  std::string said(const char* lead) const { return empty() ? "" : lead + text(); }
  // Another walk's counts added to these.
  void add(const PassedOver& other);
};

// Whether a name is hidden (starts with '.').
bool is_hidden(const std::string& path);

// The image files (is_image_file) under `dir` at any depth, sorted by path; symbolic links to
// folders are followed (as torchvision's ImageFolder follows them), each folder once by its real
// path, hidden entries are not read (hidden folders noted by their path from `base`, or as found
// where `base` is ""), other files are counted. Throws when a folder cannot be read.
std::vector<std::string> images_under(const std::string& dir, const std::string& base, PassedOver& po);

// Command-line arguments with each folder replaced by the images under it (images_under); a
// folder that holds none is refused, naming it and what it does hold. Other arguments as given.
std::vector<std::string> expand_folders(const std::vector<std::string>& args, PassedOver& po);

}  // namespace kiln::px
