#include "util/stream.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "util/error.h"
#include "util/fd.h"

namespace cidrun {

size_t read_fill(ByteSource& source, uint8_t* buf, size_t n) {
  size_t got = 0;
  while (got < n) {
    size_t r = source.read(buf + got, n - got);
    if (r == 0) break;
    got += r;
  }
  return got;
}

uint64_t drain(ByteSource& source) {
  Bytes buf(256 * 1024);
  uint64_t total = 0;
  while (size_t n = source.read(buf.data(), buf.size())) total += n;
  return total;
}

uint64_t copy(ByteSource& source, ByteSink& sink) {
  Bytes buf(256 * 1024);
  uint64_t total = 0;
  while (size_t n = source.read(buf.data(), buf.size())) {
    sink.write(ByteView(buf.data(), n));
    total += n;
  }
  return total;
}

size_t FdSource::read(uint8_t* buf, size_t n) {
  for (;;) {
    ssize_t r = ::read(fd_, buf, n);
    if (r >= 0) return static_cast<size_t>(r);
    if (errno != EINTR) throw_errno("read " + what_);
  }
}

void FdSink::write(ByteView data) {
  write_full(fd_, data.data(), data.size(), what_);
}

size_t BufferedSource::read(uint8_t* buf, size_t n) {
  if (pos_ == end_) {
    if (n >= buf_.size()) return inner_.read(buf, n);
    pos_ = 0;
    end_ = inner_.read(buf_.data(), buf_.size());
    if (end_ == 0) return 0;
  }
  size_t take = std::min(n, end_ - pos_);
  std::memcpy(buf, buf_.data() + pos_, take);
  pos_ += take;
  return take;
}

size_t MemorySource::read(uint8_t* buf, size_t n) {
  size_t take = std::min(n, data_.size() - pos_);
  if (take > 0) std::memcpy(buf, data_.data() + pos_, take);
  pos_ += take;
  return take;
}

void MemorySink::write(ByteView data) {
  if (finished_) throw Error("memory sink: write after finish");
  data_.insert(data_.end(), data.begin(), data.end());
}

size_t HashingSource::read(uint8_t* buf, size_t n) {
  size_t r = inner_.read(buf, n);
  hash_.update(ByteView(buf, r));
  return r;
}

void HashingSink::write(ByteView data) {
  hash_.update(data);
  inner_.write(data);
}

size_t CountingSource::read(uint8_t* buf, size_t n) {
  size_t r = inner_.read(buf, n);
  count_ += r;
  return r;
}

void CountingSink::write(ByteView data) {
  count_ += data.size();
  inner_.write(data);
}

size_t VerifyingSource::read(uint8_t* buf, size_t n) {
  if (verified_) return 0;
  size_t r = inner_.read(buf, n);
  if (r > 0) {
    count_ += r;
    if (count_ > expected_.size) {
      throw Error(expected_.what + ": more than the " + std::to_string(expected_.size) +
                  " bytes expected");
    }
    hash_.update(ByteView(buf, r));
    return r;
  }
  if (count_ != expected_.size) {
    throw Error(expected_.what + ": ends after " + std::to_string(count_) + " bytes, expected " +
                std::to_string(expected_.size));
  }
  Sha256Digest got = hash_.finish();
  if (got != expected_.sha256) {
    throw Error(expected_.what + ": digest mismatch: the bytes hash to sha256:" + to_hex(got) +
                ", expected sha256:" + to_hex(expected_.sha256));
  }
  verified_ = true;
  return 0;
}

}  // namespace cidrun
