// Network namespaces that outlive every process in them: a new namespace is pinned by a bind
// mount of its nsfs file onto a file of ours (as `ip netns add` does), so the CNI plugins can set
// it up before the container exists and tear it down after the container is gone.
#pragma once

#include <string>

namespace cidrun::cli {

// Creates a new network namespace, brings its loopback up and pins it at `path` (a new file).
// Throws cidrun::Error; nothing is left behind on failure.
void create_pinned_netns(const std::string& path);

// Unpins the namespace at `path` and removes the file; nothing to do when it is absent. The
// namespace itself goes once no process is left in it.
void remove_pinned_netns(const std::string& path);

}  // namespace cidrun::cli
