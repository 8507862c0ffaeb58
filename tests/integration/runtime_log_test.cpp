// runc's --log FILE --log-format json|text: the error that ends any runtime command is the last
// record of the log (podman and containerd read it to tell the user why the runtime failed), as
// well as a line on stderr; --debug records go to the log too.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <regex>

#include "integration/runtime_helpers.h"

using namespace rt_test;
using nlohmann::json;

namespace {

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream ss(text);
  std::string line;
  while (std::getline(ss, line)) out.push_back(line);
  return out;
}

// The message of stderr's "cidrun: error: MSG" line (the last one).
std::string stderr_error(const Result& r) {
  auto lines = lines_of(r.err);
  const std::string prefix = "cidrun: error: ";
  for (auto it = lines.rbegin(); it != lines.rend(); ++it)
    if (it->rfind(prefix, 0) == 0) return it->substr(prefix.size());
  return "(no error line on stderr: " + r.err + ")";
}

std::string log_file(const std::string& name) {
  return work_dir() + "/" + name + ".log";
}

// Runs `cidrun --log F --log-format FORMAT ARGS`, which must fail, and returns its result.
Result failing(const std::string& args, const std::string& log, const std::string& format,
               const std::string& extra = "") {
  Result r = sh(cidrun() + extra + " --log " + log + " --log-format=" + format + " " + args);
  EXPECT_NE(r.code, 0) << args << " succeeded";
  return r;
}

// The JSON log's last record: {"level":"error","msg":...,"time":RFC 3339} and nothing else, with
// the message stderr shows; every earlier line is a JSON record too.
std::string expect_json_error(const Result& r, const std::string& log) {
  auto lines = lines_of(slurp(log));
  if (lines.empty()) {
    ADD_FAILURE() << "empty log; stderr: " << r.err;
    return "";
  }
  for (const auto& l : lines) EXPECT_TRUE(json::accept(l)) << "not JSON: " << l;
  json last = json::parse(lines.back());
  EXPECT_EQ(last.size(), 3u) << last.dump();
  EXPECT_EQ(last.value("level", ""), "error") << last.dump();
  EXPECT_TRUE(std::regex_match(last.value("time", ""),
                               std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d))")))
      << last.dump();
  std::string msg = last.value("msg", "");
  EXPECT_EQ(msg, stderr_error(r));
  return msg;
}

// Undoes the quoting of a logrus text value ("..." with \" and \\ escapes).
std::string unquote(const std::string& v) {
  if (v.size() < 2 || v.front() != '"') return v;
  std::string out;
  for (size_t i = 1; i + 1 < v.size(); ++i) {
    if (v[i] == '\\' && i + 2 < v.size()) ++i;
    out += v[i];
  }
  return out;
}

// The text log's last line: time="..." level=error msg="..." with stderr's message.
std::string expect_text_error(const Result& r, const std::string& log) {
  auto lines = lines_of(slurp(log));
  if (lines.empty()) {
    ADD_FAILURE() << "empty log; stderr: " << r.err;
    return "";
  }
  std::smatch m;
  static const std::regex kRecord(
      R"re(time="(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)" level=(\w+) msg=("(?:[^"\\]|\\.)*"|\S*))re");
  const std::string& last = lines.back();
  EXPECT_TRUE(std::regex_match(last, m, kRecord)) << last;
  if (m.empty()) return "";
  EXPECT_EQ(m[2].str(), "error") << last;
  std::string msg = unquote(m[3].str());
  EXPECT_EQ(msg, stderr_error(r));
  return msg;
}

// A container whose init has exited: created, started, stopped.
void make_stopped(const std::string& id) {
  std::string b = make_bundle("b-" + id, {"true"});
  ASSERT_EQ(sh(cidrun() + " create -b " + b + " " + id).code, 0);
  ASSERT_EQ(sh(cidrun() + " start " + id).code, 0);
  ASSERT_TRUE(wait_status(id, "stopped")) << status_of(id);
}

// Each runtime command's failure, with what its message must say.
struct Case {
  std::string args, says;
};

std::vector<Case> failing_commands() {
  return {
      {"create --bundle /nonexistent/bundle c-bad", "/nonexistent/bundle"},
      {"start nosuch", "nosuch"},
      {"kill stopped-one KILL", "not running"},
      {"state nosuch", "nosuch"},
      {"delete nosuch", "nosuch"},
      {"exec nosuch /bin/true", "nosuch"},
      {"pause stopped-one", "stopped"},
      {"resume nosuch", "nosuch"},
      {"ps nosuch", "nosuch"},
      {"run /nonexistent/root", "/nonexistent/root"},
      {"start", "id is required"},
  };
}

}  // namespace

TEST(RuntimeLog, EveryCommandsErrorIsTheJsonLogsLastRecord) {
  make_stopped("stopped-one");
  int n = 0;
  for (const auto& c : failing_commands()) {
    std::string log = log_file("json-" + std::to_string(n++));
    Result r = failing(c.args, log, "json");
    std::string msg = expect_json_error(r, log);
    EXPECT_NE(msg.find(c.says), std::string::npos) << c.args << ": " << msg;
  }
  EXPECT_EQ(sh(cidrun() + " delete stopped-one").code, 0);
}

TEST(RuntimeLog, EveryCommandsErrorIsTheTextLogsLastLine) {
  make_stopped("stopped-one");
  int n = 0;
  for (const auto& c : failing_commands()) {
    std::string log = log_file("text-" + std::to_string(n++));
    Result r = failing(c.args, log, "text");
    std::string msg = expect_text_error(r, log);
    EXPECT_NE(msg.find(c.says), std::string::npos) << c.args << ": " << msg;
  }
  EXPECT_EQ(sh(cidrun() + " delete stopped-one").code, 0);
}

TEST(RuntimeLog, RecordsAppendAndDebugRecordsComeBeforeTheError) {
  std::string log = log_file("debug");
  for (int i = 0; i < 2; ++i) {
    Result r = failing("start nosuch", log, "json", " --debug");
    expect_json_error(r, log);
  }
  auto lines = lines_of(slurp(log));
  int debug = 0, errors = 0;
  for (const auto& l : lines) {
    std::string level = json::parse(l).value("level", "");
    debug += level == "debug";
    errors += level == "error";
  }
  EXPECT_GE(debug, 2) << slurp(log);
  EXPECT_EQ(errors, 2) << slurp(log);
  // Without --debug no debug record is written.
  std::string quiet = log_file("quiet");
  Result r = failing("start nosuch", quiet, "json");
  EXPECT_EQ(lines_of(slurp(quiet)).size(), 1u) << slurp(quiet);

  std::string text = log_file("debug-text");
  r = failing("start nosuch", text, "text", " --debug");
  expect_text_error(r, text);
  EXPECT_NE(slurp(text).find(" level=debug msg="), std::string::npos) << slurp(text);
}

TEST(RuntimeLog, MessagesAreEscapedForTheirFormat) {
  // A quote, a backslash, a control character and a byte that is not UTF-8 in the id, which the
  // error repeats.
  const std::string id = "'we\"ird\\id\x01\xff'";
  std::string log = log_file("escape");
  Result r = failing("state " + id, log, "json");
  auto lines = lines_of(slurp(log));
  ASSERT_EQ(lines.size(), 1u);
  ASSERT_TRUE(json::accept(lines[0])) << lines[0];
  std::string msg = json::parse(lines[0])["msg"];
  EXPECT_NE(msg.find("we\"ird\\id\x01\xef\xbf\xbd"), std::string::npos) << msg;  // U+FFFD

  std::string text = log_file("escape-text");
  r = failing("state " + id, text, "text");
  EXPECT_NE(slurp(text).find(R"(we\"ird\\id\x01\xff)"), std::string::npos) << slurp(text);
}

TEST(RuntimeLog, AMissingProgramFailsCreateAndIsTheLogsError) {
  // runc reports a program that is not there at create, and podman shows that record.
  std::string b = make_bundle("missing", {"/nonexistent-cmd"});
  std::string log = log_file("missing");
  Result r = failing("create -b " + b + " missing", log, "json");
  EXPECT_EQ(expect_json_error(r, log),
            "exec: \"/nonexistent-cmd\": stat /nonexistent-cmd: No such file or directory");
  EXPECT_NE(status_of("missing").find("does not exist"), std::string::npos);

  std::string b2 = make_bundle("missing2", {"nonexistent-cmd"});
  r = failing("create -b " + b2 + " missing2", log, "json");
  EXPECT_EQ(expect_json_error(r, log),
            "exec: \"nonexistent-cmd\": executable file not found in $PATH");
  EXPECT_NE(status_of("missing2").find("does not exist"), std::string::npos);

  // A program that is there is found the same way (PATH search, relative to cwd).
  std::string b3 = make_bundle("present", {"sh", "-c", "exit 0"});
  ASSERT_EQ(sh(cidrun() + " create -b " + b3 + " present").code, 0);
  EXPECT_EQ(sh(cidrun() + " delete --force present").code, 0);
  std::string b4 =
      make_bundle("relative", {"./busybox", "true"}, [](json& c) { c["process"]["cwd"] = "/bin"; });
  Result rel = sh(cidrun() + " create -b " + b4 + " relative");
  EXPECT_EQ(rel.code, 0) << rel.err;
  EXPECT_EQ(sh(cidrun() + " delete --force relative").code, 0);
}

TEST(RuntimeLog, JsonWithoutAFileGoesToStderrBesideTheMessage) {
  Result r = sh(cidrun() + " --log-format json start nosuch");
  EXPECT_NE(r.code, 0);
  auto lines = lines_of(r.err);
  ASSERT_EQ(lines.size(), 2u) << r.err;
  ASSERT_TRUE(json::accept(lines[0])) << lines[0];
  EXPECT_EQ("cidrun: error: " + json::parse(lines[0])["msg"].get<std::string>(), lines[1]);
}
