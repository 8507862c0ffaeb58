#include "runtime/mount_options.h"

#include <sys/mount.h>

#include <map>

namespace cidrun::runtime {
namespace {

struct FlagEffect {
  bool clear;
  unsigned long flag;
};

const std::map<std::string, FlagEffect>& flag_words() {
  static const std::map<std::string, FlagEffect> m{
      {"ro", {false, MS_RDONLY}},
      {"rw", {true, MS_RDONLY}},
      {"nosuid", {false, MS_NOSUID}},
      {"suid", {true, MS_NOSUID}},
      {"nodev", {false, MS_NODEV}},
      {"dev", {true, MS_NODEV}},
      {"noexec", {false, MS_NOEXEC}},
      {"exec", {true, MS_NOEXEC}},
      {"sync", {false, MS_SYNCHRONOUS}},
      {"async", {true, MS_SYNCHRONOUS}},
      {"dirsync", {false, MS_DIRSYNC}},
      {"remount", {false, MS_REMOUNT}},
      {"mand", {false, MS_MANDLOCK}},
      {"nomand", {true, MS_MANDLOCK}},
      {"noatime", {false, MS_NOATIME}},
      {"atime", {true, MS_NOATIME}},
      {"nodiratime", {false, MS_NODIRATIME}},
      {"diratime", {true, MS_NODIRATIME}},
      {"relatime", {false, MS_RELATIME}},
      {"norelatime", {true, MS_RELATIME}},
      {"strictatime", {false, MS_STRICTATIME}},
      {"nostrictatime", {true, MS_STRICTATIME}},
      {"bind", {false, MS_BIND}},
      {"rbind", {false, MS_BIND | MS_REC}},
  };
  return m;
}

}  // namespace

bool MountOptions::is_bind() const {
  return (flags & MS_BIND) != 0;
}

unsigned long propagation_flag(const std::string& word) {
  static const std::map<std::string, unsigned long> m{
      {"private", MS_PRIVATE},       {"rprivate", MS_PRIVATE | MS_REC},
      {"shared", MS_SHARED},         {"rshared", MS_SHARED | MS_REC},
      {"slave", MS_SLAVE},           {"rslave", MS_SLAVE | MS_REC},
      {"unbindable", MS_UNBINDABLE}, {"runbindable", MS_UNBINDABLE | MS_REC},
  };
  auto it = m.find(word);
  return it == m.end() ? 0 : it->second;
}

MountOptions parse_mount_options(const std::vector<std::string>& options) {
  MountOptions out;
  for (const auto& o : options) {
    if (auto it = flag_words().find(o); it != flag_words().end()) {
      if (it->second.clear)
        out.flags &= ~it->second.flag;
      else
        out.flags |= it->second.flag;
    } else if (unsigned long p = propagation_flag(o)) {
      out.propagation = p;
    } else if (o == "tmpcopyup" || o == "idmap" || o == "ridmap" || o == "rro" || o == "rrw" ||
               o == "copy-symlink" || o == "z" || o == "Z" || o == "notmpcopyup") {
      // Accepted and ignored: container-engine hints that carry no mount(2) meaning here.
    } else if (!o.empty()) {
      if (!out.data.empty()) out.data += ',';
      out.data += o;
    }
  }
  return out;
}

}  // namespace cidrun::runtime
