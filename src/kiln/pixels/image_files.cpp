#include "kiln/pixels/image_files.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <set>
#include <system_error>
#include <utility>

#include "kiln/core/error.h"
#include "kiln/pixels/pixels.h"

namespace kiln::px {
namespace fs = std::filesystem;

bool is_hidden(const std::string& path) { return fs::path(path).filename().string().rfind('.', 0) == 0; }

std::string PassedOver::text() const {
  std::vector<std::string> parts;
  if (!files.empty()) {
    std::vector<std::pair<int64_t, std::string>> kinds;
    int64_t n = 0;
    for (const auto& [ext, count] : files) kinds.emplace_back(-count, ext.empty() ? "without an extension" : ext), n += count;
    std::sort(kinds.begin(), kinds.end());
    std::string list;
    for (size_t i = 0; i < kinds.size() && i < 5; ++i) list += (i ? ", " : "") + std::to_string(-kinds[i].first) + " " + kinds[i].second;
    if (kinds.size() > 5) list += ", " + std::to_string(kinds.size() - 5) + " more kinds";
    parts.push_back(std::to_string(n) + (n == 1 ? " file" : " files") + " of a format kiln does not read (" + list + "; kiln reads " +
                    kImageExtensions + ")");
  }
  if (loose_images)
    parts.push_back(std::to_string(loose_images) + (loose_images == 1 ? " image" : " images") +
                    " outside any class folder (kiln reads root/<class>/<image>, at any depth below <class>)");
  if (repeated_folders)
    parts.push_back(std::to_string(repeated_folders) + (repeated_folders == 1 ? " link" : " links") +
                    " to a folder already walked (a second path to it, or a cycle), not followed again");
  if (!hidden_folders.empty()) {
    std::string names;
    for (size_t i = 0; i < hidden_folders.size(); ++i) names += (i ? ", " : "") + hidden_folders[i];
    parts.push_back(std::to_string(hidden_folders.size()) + (hidden_folders.size() == 1 ? " hidden folder" : " hidden folders") + " (" + names +
                    "), not read");
  }
  std::string t;
  for (size_t i = 0; i < parts.size(); ++i) t += (i == 0 ? "passed over " : i + 1 == parts.size() ? " and " : ", ") + parts[i];
  return t;
}

void PassedOver::add(const PassedOver& other) {
  for (const auto& [ext, n] : other.files) files[ext] += n;
  loose_images += other.loose_images, repeated_folders += other.repeated_folders;
  hidden_folders.insert(hidden_folders.end(), other.hidden_folders.begin(), other.hidden_folders.end());
}

namespace {
// One folder's entries in name order, then each subfolder's, depth first: the walk, and so which
// of two paths to one folder is followed, does not depend on the order the file system lists them.
void walk(const fs::path& dir, const fs::path& base, std::set<std::string>& walked, std::vector<std::string>& names, PassedOver& po) {
  std::error_code ec, ignored;
  std::vector<fs::directory_entry> entries;
  for (auto it = fs::directory_iterator(dir, ec); !ec && it != fs::directory_iterator(); it.increment(ec)) entries.push_back(*it);
  if (ec) throw Error("cannot read folder '" + dir.string() + "': " + ec.message());
  std::sort(entries.begin(), entries.end(), [](const auto& x, const auto& y) { return x.path().filename() < y.path().filename(); });
  for (const auto& e : entries) {
    const std::string path = e.path().string();
    const bool folder = e.is_directory(ignored);  // a link to a folder counts as one
    if (is_hidden(path)) {  // .DS_Store, macOS's ._x.png beside x.png, .ipynb_checkpoints/: never the data
      if (folder) po.hidden_folders.push_back((base.empty() ? e.path() : e.path().lexically_relative(base)).string());
      continue;
    }
    if (folder) {
      const auto real = fs::canonical(e.path(), ignored);
      if (ignored || !walked.insert(real.string()).second) ++po.repeated_folders;
      else walk(e.path(), base, walked, names, po);
    } else if (e.is_regular_file(ignored)) {
      if (is_image_file(path)) {
        names.push_back(path);
      } else {
        std::string ext = e.path().extension().string();
        std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
        ++po.files[ext];
      }
    }
  }
}
}  // namespace

std::vector<std::string> images_under(const std::string& dir, const std::string& base, PassedOver& po) {
  std::error_code ignored;
  std::set<std::string> walked{fs::canonical(dir, ignored).string()};
  std::vector<std::string> names;
  walk(dir, base, walked, names, po);
  std::sort(names.begin(), names.end());
  return names;
}

std::vector<std::string> expand_folders(const std::vector<std::string>& args, PassedOver& po) {
  std::vector<std::string> out;
  for (const auto& a : args) {
    std::error_code ec;
    if (!fs::is_directory(a, ec)) {
      out.push_back(a);
      continue;
    }
    PassedOver here;
    const auto names = images_under(a, "", here);
    if (names.empty()) throw Error("folder '" + a + "' has no " + kImageExtensions + " images (at any depth)" + here.said(": "));
    out.insert(out.end(), names.begin(), names.end());
    po.add(here);
  }
  return out;
}

}  // namespace kiln::px
