// cidrun-exec: the program a container's init becomes just before the container's own program.
// It is built static, without libc, into a few KiB that cidrun embeds and runs from a sealed
// memfd (see runtime/self_protect.h). Its only job is the final execve, so that a container
// program starting with "#!/proc/self/exe" names this sealed stub and not cidrun's binary.
//
//   argv: "cidrun-exec" PATH ARG0 ARGS...   environment: the container process's
//
// Anything else (as when a script's interpreter is /proc/self/exe) is refused with status 126.
#include <asm/unistd.h>
#include <linux/errno.h>

namespace {

long raw_syscall(long nr, long a, long b, long c) {
#if defined(__x86_64__)
  long ret;
  __asm__ volatile("syscall"
                   : "=a"(ret)
                   : "a"(nr), "D"(a), "S"(b), "d"(c)
                   : "rcx", "r11", "memory");
  return ret;
#elif defined(__aarch64__)
  register long x8 __asm__("x8") = nr;
  register long x0 __asm__("x0") = a;
  register long x1 __asm__("x1") = b;
  register long x2 __asm__("x2") = c;
  __asm__ volatile("svc 0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2) : "memory");
  return x0;
#else
#error "cidrun-exec: add the syscall convention of this architecture"
#endif
}

template <typename T>
long as_arg(T* p) {
  return reinterpret_cast<long>(p);
}

[[noreturn]] void exit_with(int code) {
  for (;;) raw_syscall(__NR_exit_group, code, 0, 0);
}

// The messages glibc's strerror gives for what execve can fail with.
const char* describe(long err) {
  switch (err) {
    case ENOENT:
      return "No such file or directory";
    case EACCES:
      return "Permission denied";
    case ENOEXEC:
      return "Exec format error";
    case ENOTDIR:
      return "Not a directory";
    case ELOOP:
      return "Too many levels of symbolic links";
    case E2BIG:
      return "Argument list too long";
    case ENOMEM:
      return "Cannot allocate memory";
    case ETXTBSY:
      return "Text file busy";
    case EPERM:
      return "Operation not permitted";
    case EISDIR:
      return "Is a directory";
    case ENAMETOOLONG:
      return "File name too long";
    case EINVAL:
      return "Invalid argument";
    case EIO:
      return "Input/output error";
    case ELIBBAD:
      return "Accessing a corrupted shared library";
    case EMFILE:
      return "Too many open files";
    case EAGAIN:
      return "Resource temporarily unavailable";
    default:
      return "Unknown error";
  }
}

struct Message {
  char text[1024];
  unsigned long len = 0;
  Message& operator<<(const char* s) {
    while (*s && len < sizeof text - 1) text[len++] = *s++;
    return *this;
  }
  void write_to_stderr() const { raw_syscall(__NR_write, 2, as_arg(text), static_cast<long>(len)); }
};

bool same(const char* a, const char* b) {
  while (*a && *a == *b) ++a, ++b;
  return *a == *b;
}

}  // namespace

extern "C" [[noreturn]] void cidrun_exec_main(long* stack) {
  long argc = stack[0];
  char** argv = reinterpret_cast<char**>(stack + 1);
  char** envp = argv + argc + 1;
  if (argc < 3 || !same(argv[0], "cidrun-exec")) {
    Message m;
    m << "cidrun-exec: runs a container's program for cidrun; not a program to call\n";
    m.write_to_stderr();
    exit_with(126);
  }
  long rc = raw_syscall(__NR_execve, as_arg(argv[1]), as_arg(argv + 2), as_arg(envp));
  Message m;
  m << "cidrun: error: exec " << argv[1] << ": " << describe(-rc) << "\n";
  m.write_to_stderr();
  exit_with(-rc == ENOENT ? 127 : 126);
}

// The kernel enters here with argc, argv and envp on the stack; the C++ code wants them as a
// pointer and a 16-byte aligned stack.
#if defined(__x86_64__)
__asm__(
    ".text\n"
    ".global _start\n"
    "_start:\n"
    "  xor %rbp, %rbp\n"
    "  mov %rsp, %rdi\n"
    "  and $-16, %rsp\n"
    "  call cidrun_exec_main\n"
    "  hlt\n");
#elif defined(__aarch64__)
__asm__(
    ".text\n"
    ".global _start\n"
    "_start:\n"
    "  mov x29, #0\n"
    "  mov x30, #0\n"
    "  mov x0, sp\n"
    "  bl cidrun_exec_main\n");
#endif
