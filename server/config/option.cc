#include "server/config/option.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_replace.h"

namespace lstmserve::config {

std::string Option::Flag() const {
  return "--" + absl::StrReplaceAll(key, {{"_", "-"}});
}

std::string Option::EnvVar() const {
  return "LSTMSERVE_" + absl::AsciiStrToUpper(key);
}

}  // namespace lstmserve::config
