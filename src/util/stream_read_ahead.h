// A source read on its own thread: the inner source (an inflater, a file) fills a bounded ring of
// big buffers while the consumer works on the previous ones, so decompression runs on one core
// while parsing, hashing and storing run on another.
//
// - Memory: at most buffer_bytes of buffers, whatever the stream.
// - Order: bytes come out exactly as the inner source gave them; an error the inner source threw
//   on its thread is rethrown to the consumer after every byte read before it (and again on every
//   later read).
// - Destruction at any point stops the thread: it waits for an inner read in progress to return,
//   never for the consumer. An inner source that can block forever (a socket without a deadline)
//   must bring its own deadline; files, pipes that end and decompressors over them return.
#pragma once

#include <condition_variable>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "util/stream.h"

namespace cidrun {

class ReadAheadSource : public ByteSource {
 public:
  // buffer_bytes is split into four buffers; each inner read fills at most one.
  ReadAheadSource(std::unique_ptr<ByteSource> inner, size_t buffer_bytes);
  ~ReadAheadSource() override;
  ReadAheadSource(const ReadAheadSource&) = delete;
  ReadAheadSource& operator=(const ReadAheadSource&) = delete;
  size_t read(uint8_t* buf, size_t n) override;

 private:
  struct Buffer {
    Bytes data;
    size_t size = 0;
  };
  void produce();

  std::unique_ptr<ByteSource> inner_;
  std::vector<Buffer> ring_;
  std::mutex mu_;
  std::condition_variable cv_;
  uint64_t filled_ = 0;    // buffers the producer filled (guarded by mu_)
  uint64_t released_ = 0;  // buffers the consumer gave back (guarded by mu_)
  bool ended_ = false;     // the producer stopped: end of stream or error (guarded by mu_)
  bool stop_ = false;      // the destructor asks the producer to stop (guarded by mu_)
  std::exception_ptr error_;
  // The consumer's current buffer: ring_[released_ % size] while current_ is true.
  bool current_ = false;
  size_t pos_ = 0;
  std::thread thread_;
};

}  // namespace cidrun
