// `add`: files on disk -> chunks -> layout -> encoded blocks -> block store, with kubo's rules
// for directories, hidden files, symlinks, special files and UnixFS 1.5 metadata.
#pragma once

#include <functional>
#include <optional>
#include <string>

#include "unixfs/dag_builder.h"
#include "unixfs/directory.h"

namespace cidrun::unixfs {

struct ImportOptions {
  LayoutParams layout;
  std::string chunker = "size-262144";
  DirParams dir;
  bool recursive = false;
  bool hidden = false;
  bool preserve_mode = false;
  bool preserve_mtime = false;
  std::optional<uint32_t> mode;              // --mode: overrides preserve
  std::optional<unixfs_pb::UnixTime> mtime;  // --mtime/--mtime-nsecs: overrides preserve
};

struct AddedEntry {
  std::string path;  // display path ("dir/sub/file"), as kubo prints it
  Cid cid;
  uint64_t size;  // cumulative DAG size
  bool is_dir;
};

class Importer {
 public:
  using OnAdded = std::function<void(const AddedEntry&)>;
  using OnBytes = std::function<void(uint64_t)>;

  Importer(BlockStore& store, ImportOptions opts, OnAdded on_added, OnBytes on_bytes = nullptr);

  // Adds a file, symlink or (with recursive) directory tree found at fs_path, reported under
  // display_name. Throws cidrun::Error naming the path on any problem.
  NodeInfo add_path(const std::string& fs_path, const std::string& display_name);
  // Adds the bytes read from fd as one file (stdin).
  NodeInfo add_stream(int fd, const std::string& display_name);

 private:
  NodeInfo add_at(int dirfd, const std::string& name, const std::string& fs_path,
                  const std::string& display, bool top);
  NodeInfo add_file_fd(int fd, const std::string& fs_path, const Metadata& meta,
                       std::optional<uint64_t> expected_size = std::nullopt);
  Metadata metadata_for(unsigned mode, const struct timespec& mtime, bool is_symlink) const;

  BlockStore& store_;
  ImportOptions opts_;
  OnAdded on_added_;
  OnBytes on_bytes_;
  std::vector<AddedEntry> pending_dirs_;
};

}  // namespace cidrun::unixfs
