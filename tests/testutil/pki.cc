#include "testutil/pki.h"

#include <fstream>
#include <iterator>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "testutil/testutil.h"

namespace lstmserve::testutil {
namespace {

constexpr char kEcKey[] =
    "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";

void Openssl(const std::string& args) {
  const CommandResult r = RunCommand("openssl " + args);
  ASSERT_EQ(r.exit_code, 0) << "openssl " << args << " failed (is Debian's "
                            << "openssl installed?): " << r.stderr_text;
}

}  // namespace

void Pki::MakeCa(const std::string& name) {
  Openssl(absl::StrCat("req -x509 ", kEcKey, " -days 2 -subj /CN=", name,
                       " -keyout ", Path(name + ".key"), " -out ",
                       Path(name + ".pem")));
}

void Pki::MakeCert(const std::string& name, const std::string& ca,
                   const std::string& cn, const std::string& san) {
  std::ofstream(Path(name + ".ext")) << "subjectAltName=" << san << "\n";
  Openssl(absl::StrCat("req ", kEcKey, " -subj /CN=", cn, " -keyout ",
                       Path(name + ".key"), " -out ", Path(name + ".csr")));
  Openssl(absl::StrCat("x509 -req -days 2 -in ", Path(name + ".csr"), " -CA ",
                       Path(ca + ".pem"), " -CAkey ", Path(ca + ".key"),
                       " -CAcreateserial -extfile ", Path(name + ".ext"),
                       " -out ", Path(name + ".pem")));
}

std::string Pki::Read(const std::string& file) const {
  std::ifstream in(Path(file));
  return std::string(std::istreambuf_iterator<char>(in), {});
}

}  // namespace lstmserve::testutil
