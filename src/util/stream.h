// Byte streams: pull-style sources and push-style sinks, and the small wrappers every consumer of
// a stream wants (hashing, counting, a digest check). Compression lives in
// util/stream_compression.h, the read-ahead thread in util/stream_read_ahead.h. Nothing here
// knows what the bytes are (image layers, HTTP bodies, CAR files).
//
// Ownership: a wrapper holds a reference to the stream it wraps, which must outlive it (the one
// exception is ReadAheadSource, which owns its inner source because its thread reads it).
// Errors: every failure throws cidrun::Error with a one-line message; a source that threw is not
// read again.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "util/bytes.h"
#include "util/sha256.h"

namespace cidrun {

class ByteSource {
 public:
  virtual ~ByteSource() = default;
  // Reads up to n (> 0) bytes into buf: returns how many were read, at least 1, or 0 at the end of
  // the stream (and 0 on every later call). May return fewer than n without being at the end:
  // a source returns what it has rather than block for more.
  virtual size_t read(uint8_t* buf, size_t n) = 0;
};

class ByteSink {
 public:
  virtual ~ByteSink() = default;
  virtual void write(ByteView data) = 0;
  // No more data: flushes whatever the sink holds back (a compressor's last block and trailer)
  // and finishes the sink it writes into, if any. Writing after finish() is an error.
  virtual void finish() {}
};

// Reads until buf is full or the source ends; returns the count (< n only at the end).
size_t read_fill(ByteSource& source, uint8_t* buf, size_t n);
// Reads the source to its end and returns how many bytes it gave: how a caller makes a
// decompressor check its trailer, or a HashingSource see every byte, after a parser stopped early.
uint64_t drain(ByteSource& source);
// Copies the source to its end into the sink (without finish()); returns the count.
uint64_t copy(ByteSource& source, ByteSink& sink);

// A file descriptor the caller keeps open (not owned). `what` names it in error messages.
class FdSource : public ByteSource {
 public:
  FdSource(int fd, std::string what) : fd_(fd), what_(std::move(what)) {}
  size_t read(uint8_t* buf, size_t n) override;

 private:
  int fd_;
  std::string what_;
};

// Writes straight through (no buffering: sinks above it write big pieces).
class FdSink : public ByteSink {
 public:
  FdSink(int fd, std::string what) : fd_(fd), what_(std::move(what)) {}
  void write(ByteView data) override;

 private:
  int fd_;
  std::string what_;
};

// Small reads (a tar parser's 512-byte headers) served from a buffer filled by large reads of the
// inner source; a read at least as large as the buffer, when the buffer is empty, goes straight
// to the inner source, so big content is not copied twice.
class BufferedSource : public ByteSource {
 public:
  explicit BufferedSource(ByteSource& inner, size_t buffer_bytes = 64 * 1024)
      : inner_(inner), buf_(buffer_bytes) {}
  size_t read(uint8_t* buf, size_t n) override;

 private:
  ByteSource& inner_;
  Bytes buf_;
  size_t pos_ = 0;
  size_t end_ = 0;
};

// Bytes in memory, which the caller keeps alive.
class MemorySource : public ByteSource {
 public:
  explicit MemorySource(ByteView data) : data_(data) {}
  size_t read(uint8_t* buf, size_t n) override;

 private:
  ByteView data_;
  size_t pos_ = 0;
};

class MemorySink : public ByteSink {
 public:
  void write(ByteView data) override;
  void finish() override { finished_ = true; }
  const Bytes& data() const { return data_; }
  bool finished() const { return finished_; }

 private:
  Bytes data_;
  bool finished_ = false;
};

// SHA-256 of everything read through it.
class HashingSource : public ByteSource {
 public:
  explicit HashingSource(ByteSource& inner) : inner_(inner) {}
  size_t read(uint8_t* buf, size_t n) override;
  // The digest of what has passed so far; ends the hashing (call it once, after the end).
  Sha256Digest digest() { return hash_.finish(); }

 private:
  ByteSource& inner_;
  Sha256 hash_;
};

class HashingSink : public ByteSink {
 public:
  explicit HashingSink(ByteSink& inner) : inner_(inner) {}
  void write(ByteView data) override;
  void finish() override { inner_.finish(); }
  Sha256Digest digest() { return hash_.finish(); }

 private:
  ByteSink& inner_;
  Sha256 hash_;
};

class CountingSource : public ByteSource {
 public:
  explicit CountingSource(ByteSource& inner) : inner_(inner) {}
  size_t read(uint8_t* buf, size_t n) override;
  uint64_t count() const { return count_; }

 private:
  ByteSource& inner_;
  uint64_t count_ = 0;
};

class CountingSink : public ByteSink {
 public:
  explicit CountingSink(ByteSink& inner) : inner_(inner) {}
  void write(ByteView data) override;
  void finish() override { inner_.finish(); }
  uint64_t count() const { return count_; }

 private:
  ByteSink& inner_;
  uint64_t count_ = 0;
};

// A blob that must have a known size and SHA-256 (an OCI descriptor, a pinned download): throws as
// soon as more bytes arrive than expected, and at the end when the size or the digest differs, so
// a consumer that reads to the end (drain) never accepts bytes that were not the blob. Bytes
// already handed out before that error are the caller's to discard (staging).
struct ExpectedBlob {
  uint64_t size = 0;
  Sha256Digest sha256{};
  std::string what;  // names the blob in error messages, e.g. "layer sha256:ab12..."
};

class VerifyingSource : public ByteSource {
 public:
  VerifyingSource(ByteSource& inner, ExpectedBlob expected)
      : inner_(inner), expected_(std::move(expected)) {}
  size_t read(uint8_t* buf, size_t n) override;
  bool verified() const { return verified_; }

 private:
  ByteSource& inner_;
  ExpectedBlob expected_;
  Sha256 hash_;
  uint64_t count_ = 0;
  bool verified_ = false;
};

}  // namespace cidrun
