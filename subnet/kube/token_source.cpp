#include "subnet/kube/token_source.hpp"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace weft::kube {

TokenSource::TokenSource(std::string static_token, std::string token_file)
    : static_token_(std::move(static_token)), file_(std::move(token_file)) {}

Result<std::string> TokenSource::current() {
  if (file_.empty()) return static_token_;
  std::lock_guard<std::mutex> lock(mu_);
  struct stat st {};
  if (::stat(file_.c_str(), &st) != 0) {
    if (loaded_) return token_;  // keep the last token while the file is being replaced
    return fail("cannot read token file " + file_ + ": " + std::strerror(errno));
  }
  long long mtime_ns = static_cast<long long>(st.st_mtim.tv_sec) * 1000000000LL + st.st_mtim.tv_nsec;
  if (loaded_ && st.st_ino == ino_ && st.st_size == size_ && mtime_ns == mtime_ns_) return token_;
  std::ifstream in(file_);
  if (!in) {
    if (loaded_) return token_;
    return fail("cannot read token file " + file_ + ": " + std::strerror(errno));
  }
  std::stringstream ss;
  ss << in.rdbuf();
  std::string t = ss.str();
  while (!t.empty() && (t.back() == '\n' || t.back() == '\r' || t.back() == ' ')) t.pop_back();
  if (t.empty() || t.size() > 64U * 1024U || t.find_first_of("\r\n") != std::string::npos) {
    if (loaded_) return token_;
    return fail("token file " + file_ + " does not hold a single-line token");
  }
  token_ = std::move(t);
  loaded_ = true;
  ino_ = st.st_ino;
  size_ = st.st_size;
  mtime_ns_ = mtime_ns;
  return token_;
}

void TokenSource::invalidate() {
  std::lock_guard<std::mutex> lock(mu_);
  mtime_ns_ = -1;
}

}  // namespace weft::kube
