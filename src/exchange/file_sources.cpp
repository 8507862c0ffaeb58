// Sources on the local filesystem: a CAR file (v1, or v2 with its v1 payload) and a flatfs
// block directory (cidrun's or kubo's). Local files are still untrusted input: every block is
// hash-checked like a network answer.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <unordered_map>

#include "exchange/car_stream.h"
#include "exchange/sources.h"
#include "store/flatfs.h"
#include "util/fd.h"
#include "util/varint.h"

namespace cidrun::exchange {
namespace {

// CARv2 starts with this fixed pragma (a CARv1-style header whose version is 2).
constexpr uint8_t kCarV2Pragma[] = {0x0a, 0xa1, 0x67, 0x76, 0x65, 0x72,
                                    0x73, 0x69, 0x6f, 0x6e, 0x02};

uint64_t le64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = v << 8 | p[i];
  return v;
}

class CarFileSource : public BlockSource {
 public:
  CarFileSource(std::string url, const std::string& path) : url_(std::move(url)), path_(path) {
    fd_.reset(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd_.valid()) throw_errno("open CAR " + path);
    struct stat st {};
    if (::fstat(fd_.get(), &st) != 0) throw_errno("stat " + path);
    uint64_t begin = 0;
    uint64_t end = static_cast<uint64_t>(st.st_size);
    uint8_t head[51] = {};
    size_t n = pread_some(head, sizeof head, 0);
    if (n >= sizeof head && std::memcmp(head, kCarV2Pragma, sizeof kCarV2Pragma) == 0) {
      // CARv2: 16-byte characteristics, then data offset and size of the inner CARv1.
      begin = le64(head + 11 + 16);
      uint64_t size = le64(head + 11 + 24);
      if (begin > end || size > end - begin)
        throw Error(path + ": CARv2 header points outside the file");
      end = begin + size;
    }
    index(begin, end);
  }

  const std::string& url() const override { return url_; }

  std::optional<Bytes> get(const Cid& cid) override {
    auto mh = cid.multihash();
    auto it = index_.find(std::string(as_string(mh)));
    if (it == index_.end()) return std::nullopt;
    Bytes data(it->second.size);
    if (pread_some(data.data(), data.size(), it->second.offset) != data.size()) {
      throw SourceError(url_ + ": truncated block " + cid.str());
    }
    verify_block(url_, cid, data);
    return data;
  }

 private:
  struct Where {
    uint64_t offset;
    uint32_t size;
  };

  size_t pread_some(uint8_t* buf, size_t len, uint64_t off) {
    size_t got = 0;
    while (got < len) {
      ssize_t r = ::pread(fd_.get(), buf + got, len - got, static_cast<off_t>(off + got));
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) throw_errno("read " + path_);
      if (r == 0) break;
      got += static_cast<size_t>(r);
    }
    return got;
  }

  // Records where each block's bytes are, reading only the section heads: opening a big CAR
  // costs one small read per block, and the data is read (and hashed) when asked for.
  void index(uint64_t pos, uint64_t end) {
    bool header = true;
    while (pos < end) {
      uint8_t head[128];
      size_t n = pread_some(head, std::min<uint64_t>(sizeof head, end - pos), pos);
      size_t p = 0;
      auto len = get_varint(ByteView(head, n), p);
      if (!len || *len == 0 || *len > end - pos - p)
        throw Error(path_ + ": malformed or truncated CAR");
      if (header) {
        header = false;
      } else {
        if (*len > kMaxBlockSize + 256) throw Error(path_ + ": CAR section over the block limit");
        size_t cp = p;
        Cid cid = Cid::read(ByteView(head, std::min<size_t>(n, p + *len)), cp);
        auto mh = cid.multihash();
        index_.emplace(std::string(as_string(mh)),
                       Where{pos + cp, static_cast<uint32_t>(*len - (cp - p))});
      }
      pos += p + *len;
    }
  }

  std::string url_;
  std::string path_;
  UniqueFd fd_;
  std::unordered_map<std::string, Where> index_;
};

class FlatfsSource : public BlockSource {
 public:
  FlatfsSource(std::string url, const std::string& dir) : url_(std::move(url)) {
    // Accept the blocks directory itself or a repository holding one (cidrun's or kubo's).
    struct stat st {};
    std::string blocks = dir;
    if (::stat((dir + "/blocks/SHARDING").c_str(), &st) == 0) blocks = dir + "/blocks";
    store_ = std::make_unique<FlatfsStore>(blocks, /*create=*/false);
  }

  const std::string& url() const override { return url_; }

  std::optional<Bytes> get(const Cid& cid) override {
    auto data = store_->get(cid);
    if (!data) return std::nullopt;
    verify_block(url_, cid, *data);
    return data;
  }

 private:
  std::string url_;
  std::unique_ptr<FlatfsStore> store_;
};

}  // namespace

std::unique_ptr<BlockSource> make_car_source(std::string url, const std::string& path) {
  return std::make_unique<CarFileSource>(std::move(url), path);
}

std::unique_ptr<BlockSource> make_flatfs_source(std::string url, const std::string& dir) {
  return std::make_unique<FlatfsSource>(std::move(url), dir);
}

}  // namespace cidrun::exchange
