// An OCI config.json as `create` and `run` read it from a bundle (runtime::parse_spec_text: JSON
// limits, then every field's type and range), its seccomp profile compiled to BPF with libseccomp
// (validate_seccomp, export_seccomp_bpf: what load_seccomp loads, without loading it) and its
// sysctls checked. The same text is also read as `exec --process FILE` reads a process.
#include "fuzz.h"
#include "runtime/seccomp.h"
#include "runtime/spec.h"
#include "runtime/sysctl.h"
#include "util/error.h"

using namespace cidrun;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(fuzz::text_of(data, size));
  nlohmann::json j;
  try {
    j = runtime::parse_json(text, "config.json");
  } catch (const Error&) {
    return 0;
  }
  try {
    runtime::Spec s = runtime::parse_spec(j, "config.json");
    if (!s.seccomp.is_null()) {
      runtime::validate_seccomp(s.seccomp);
      (void)runtime::export_seccomp_bpf(s.seccomp);
    }
    if (!s.sysctl.is_null()) {
      runtime::validate_sysctl(s.sysctl, {.ipc = s.has_namespace("ipc"),
                                          .net = s.has_namespace("network"),
                                          .uts = s.has_namespace("uts")});
    }
  } catch (const Error&) {
  }
  // The same JSON as a bare seccomp profile (run --seccomp FILE) and as a process (exec).
  try {
    runtime::validate_seccomp(j);
    (void)runtime::export_seccomp_bpf(j);
  } catch (const Error&) {
  }
  try {
    (void)runtime::parse_process(j, "process.json");
  } catch (const Error&) {
  }
  return 0;
}
