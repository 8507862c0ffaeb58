// The hook between `cidrun run` and the content layers: turns a ROOT that is not a directory on
// disk (a CID) into a checked-out, read-only directory. The runtime then runs it as the lower
// layer of a per-container overlay, so the checkout itself is never written.
#pragma once

#include <sys/types.h>

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "cli/command.h"

namespace cidrun::cli {

// Returns the directory holding the root: a bundle ({rootfs/, config.json}; is_bundle = true) or
// a bare root filesystem (is_bundle = false). ROOT is an image name or a CID (with a path); for
// an image, image_config receives its OCI config. Throws cidrun::Error when ROOT cannot be
// resolved.
std::string resolve_image_root(const Globals& g, const std::string& root, bool& is_bundle,
                               std::optional<nlohmann::json>& image_config);

// A fresh checkout's last step (waiting until its files are on disk, then letting the block
// store hold their leaves as references to them: image::Checkout::finish) is left to these, so
// that the container's start never waits for the disk. finish_image_root_in_background starts
// it on a thread of its own (`run` calls it once the program runs); finish_image_root waits for
// that thread, or runs the step here when it never started. release_image_root calls
// finish_image_root first.
void finish_image_root_in_background();
void finish_image_root();

// When a run's root is mounted: only while blocks of it are missing (`run --lazy`; a complete
// root is checked out, which reads faster), or always (`run --no-checkout`: the files are on disk
// once, as blocks).
enum class MountWhen { kIfMissing, kAlways };

// `run --lazy` / `run --no-checkout`: a mount of ROOT (shared by every container of the root)
// with this process registered as a user; returns its mountpoint, or "" when `when` says a
// checkout (resolve_image_root) is better. image_config as above. With record set (cidrun trace):
// a mount of this process's own, even when the root is complete here, whose server notes every
// block read in that file.
std::string resolve_lazy_root(const Globals& g, const std::string& root, bool fill,
                              std::optional<nlohmann::json>& image_config,
                              const std::string& record = "",
                              MountWhen when = MountWhen::kIfMissing);
// Unregisters this process from the lazy mount (after its container ended); with stop, also
// stops its holder and waits for the mount to go (a trace's mount is of no use to anyone).
void release_lazy_root(bool stop = false);

// Drops the lease resolve_image_root took (before this process re-executes itself: its
// destructor would not run, and the new image of the process takes its own).
void release_image_root();

// `run -d`: leases the image to `pid` (the container's init) for the rest of that process's
// life, so `repo gc` keeps it after `run` exits. Nothing to do when ROOT was a directory.
void hand_image_root_to(pid_t pid);

}  // namespace cidrun::cli
