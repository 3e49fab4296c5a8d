// Certificates for TLS tests, made by Debian's openssl command line in a
// directory the caller owns: CAs, and certificates they sign.
#pragma once

#include <string>

namespace lstmserve::testutil {

class Pki {
 public:
  explicit Pki(std::string dir) : dir_(std::move(dir)) {}

  // A self-signed CA `name`: files name.pem and name.key.
  void MakeCa(const std::string& name);
  // A certificate `name` (name.pem, name.key) for subject CN `cn` with
  // subjectAltName `san` (e.g. "DNS:localhost,IP:127.0.0.1"), signed by CA
  // `ca`.
  void MakeCert(const std::string& name, const std::string& ca,
                const std::string& cn, const std::string& san);

  std::string Path(const std::string& file) const { return dir_ + "/" + file; }
  std::string Read(const std::string& file) const;

 private:
  std::string dir_;
};

}  // namespace lstmserve::testutil
