// Turns an OCI mount's options ("ro", "nosuid", "rbind", "rslave", "size=64k", ...) into what
// mount(2) takes: flags, a propagation change to apply afterwards, and the filesystem data string.
#pragma once

#include <string>
#include <vector>

namespace cidrun::runtime {

struct MountOptions {
  unsigned long flags = 0;        // MS_RDONLY, MS_NOSUID, ... and MS_BIND/MS_REC for (r)bind
  unsigned long propagation = 0;  // MS_PRIVATE/MS_SLAVE/MS_SHARED/MS_UNBINDABLE (| MS_REC)
  std::string data;               // the rest, comma-joined, for the filesystem
  bool is_bind() const;
};

MountOptions parse_mount_options(const std::vector<std::string>& options);

// "rslave" -> MS_SLAVE|MS_REC; 0 when the word is not a propagation.
unsigned long propagation_flag(const std::string& word);

}  // namespace cidrun::runtime
