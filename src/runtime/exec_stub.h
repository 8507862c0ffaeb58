// The bytes of the exec stub (runtime/exec_stub/exec_stub.cpp), generated at build time.
#pragma once

namespace cidrun::runtime {

extern const unsigned char kExecStub[];
extern const unsigned long kExecStubSize;

}  // namespace cidrun::runtime
