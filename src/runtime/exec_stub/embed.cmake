# Turns the built exec stub (IN) into a C++ source (OUT) holding its bytes, so that the runtime
# carries it inside its own binary. Run with cmake -P.
file(READ "${IN}" hex HEX)
string(LENGTH "${hex}" digits)
math(EXPR size "${digits} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
file(WRITE "${OUT}.tmp"
     "// Generated at build time from runtime/exec_stub/exec_stub.cpp: do not edit.\n"
     "#include \"runtime/exec_stub.h\"\n"
     "namespace cidrun::runtime {\n"
     "const unsigned char kExecStub[] = {${bytes}};\n"
     "const unsigned long kExecStubSize = ${size};\n"
     "}  // namespace cidrun::runtime\n")
file(RENAME "${OUT}.tmp" "${OUT}")
