#pragma once
// TokenSource: the bearer token, static or from a file that is re-read when it changes
// (projected service account tokens rotate about hourly). Thread-safe.

#include <sys/types.h>
#include <mutex>
#include <string>

#include "core/result.hpp"

namespace weft::kube {

class TokenSource {
 public:
  TokenSource(std::string static_token, std::string token_file);

  // The token to send ("" for none). Stats the file on each call (cheap) and re-reads it when
  // its inode, size or mtime changed; a read error keeps the last good token and says why.
  Result<std::string> current();
  // After a 401: the next current() re-reads the file even if it looks unchanged.
  void invalidate();
  const std::string& file() const { return file_; }

 private:
  std::mutex mu_;
  std::string static_token_;
  std::string file_;
  std::string token_;
  bool loaded_ = false;
  ino_t ino_ = 0;
  off_t size_ = -1;
  long long mtime_ns_ = -1;
};

}  // namespace weft::kube
