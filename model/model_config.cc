#include "model/model_config.h"

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <optional>
#include <set>
#include <tuple>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "model/file_reader.h"
#include "model/status_macros.h"
#include "nlohmann/json.hpp"

namespace lstmserve::model {
namespace {

using json = nlohmann::json;

constexpr absl::string_view kCellChoices = R"("lstm", "gru" or "rnn")";
constexpr absl::string_view kNonlinearityChoices =
    R"("tanh", "relu", "sigmoid", "affine", "leaky_relu", )"
    R"("thresholded_relu", "scaled_tanh", "hard_sigmoid", "elu", "softsign" )"
    R"(or "softplus")";
constexpr Nonlinearity kAllNonlinearities[] = {
    Nonlinearity::kTanh,       Nonlinearity::kRelu,
    Nonlinearity::kSigmoid,    Nonlinearity::kAffine,
    Nonlinearity::kLeakyRelu,  Nonlinearity::kThresholdedRelu,
    Nonlinearity::kScaledTanh, Nonlinearity::kHardSigmoid,
    Nonlinearity::kElu,        Nonlinearity::kSoftsign,
    Nonlinearity::kSoftplus};
constexpr absl::string_view kActivationChoices =
    R"("identity", "softmax", "sigmoid" or "tanh")";
constexpr size_t kMaxQuotedChars = 80;

// A JSON value as it appeared in the file, shortened for an error message.
std::string Describe(const json& value) {
  std::string text = value.dump(-1, ' ', false, json::error_handler_t::replace);
  if (text.size() > kMaxQuotedChars) {
    text.resize(kMaxQuotedChars);
    text += "...";
  }
  return text;
}

// Debian's abseil has its own absl::string_view, distinct from
// std::string_view (ABSL_OPTION_USE_STD_STRING_VIEW is 0).
absl::string_view Av(std::string_view s) { return {s.data(), s.size()}; }

std::string Quote(std::string_view key) {
  return absl::StrCat("\"", absl::Utf8SafeCEscape(Av(key)), "\"");
}

std::optional<Activation> ParseActivation(std::string_view name) {
  for (Activation a : {Activation::kIdentity, Activation::kSoftmax,
                       Activation::kSigmoid, Activation::kTanh}) {
    if (ActivationName(a) == name) return a;
  }
  return std::nullopt;
}

// Validates one config object; every message names the file and the field.
class ConfigParser {
 public:
  ConfigParser(absl::string_view file_name, const ConfigLimits& limits)
      : file_name_(file_name), limits_(limits) {}

  absl::StatusOr<ModelConfig> Parse(const json& root) {
    if (!root.is_object()) {
      return Error(absl::StrCat("top level is ", Describe(root),
                                "; expected a JSON object"));
    }
    ModelConfig config;

    auto cell = root.find("cell");
    if (cell == root.end()) {
      return Error(
          absl::StrCat("\"cell\" is missing; expected ", kCellChoices));
    }
    if (*cell == "lstm") {
      config.cell = CellType::kLstm;
    } else if (*cell == "gru") {
      config.cell = CellType::kGru;
    } else if (*cell == "rnn") {
      config.cell = CellType::kRnn;
    } else {
      return Error(absl::StrCat("\"cell\" is ", Describe(*cell), "; expected ",
                                kCellChoices));
    }

    ASSIGN_OR_RETURN(config.input_size,
                     Int(root, "input_size", 1, limits_.max_input_size));
    ASSIGN_OR_RETURN(config.hidden_size,
                     Int(root, "hidden_size", 1, limits_.max_hidden_size));
    ASSIGN_OR_RETURN(config.num_layers,
                     Int(root, "num_layers", 1, limits_.max_layers));

    if (auto proj = root.find("proj_size"); proj != root.end()) {
      if (config.cell != CellType::kLstm && proj->is_number_integer() &&
          *proj != 0) {
        return Error(absl::StrCat("\"proj_size\" is ", Describe(*proj),
                                  " but \"cell\" is \"",
                                  Av(CellTypeName(config.cell)),
                                  "\"; expected 0 or absent (projection is "
                                  "LSTM-only)"));
      }
      ASSIGN_OR_RETURN(
          config.proj_size,
          Int(root, "proj_size", 0, config.hidden_size - 1,
              " (0 = no projection; it must be less than hidden_size)"));
    }

    if (auto bias = root.find("bias"); bias != root.end()) {
      if (!bias->is_boolean()) {
        return Error(absl::StrCat("\"bias\" is ", Describe(*bias),
                                  "; expected true or false"));
      }
      config.bias = bias->get<bool>();
    }

    RETURN_IF_ERROR(CellVariant(root, config));

    if (auto weights = root.find("weights"); weights != root.end()) {
      std::optional<WeightFormat> format;
      if (weights->is_string()) {
        format = ParseWeightFormat(weights->get_ref<const std::string&>());
      }
      if (!format) {
        return Error(absl::StrCat("\"weights\" is ", Describe(*weights),
                                  R"(; expected "f32", "bf16" or "int8")"));
      }
      config.weights = *format;
    }

    if (auto head = root.find("head"); head != root.end()) {
      if (!head->is_object()) {
        return Error(
            absl::StrCat("\"head\" is ", Describe(*head),
                         R"(; expected an object like {"output_size": )"
                         R"(3, "activation": "identity"})"));
      }
      HeadConfig head_config;
      ASSIGN_OR_RETURN(head_config.output_size,
                       Int(*head, "head.output_size", 1,
                           limits_.max_output_size, "", "output_size"));
      if (auto act = head->find("activation"); act != head->end()) {
        std::optional<Activation> activation;
        if (act->is_string()) {
          activation = ParseActivation(act->get_ref<const std::string&>());
        }
        if (!activation) {
          return Error(absl::StrCat("\"head.activation\" is ", Describe(*act),
                                    "; expected ", kActivationChoices));
        }
        head_config.activation = *activation;
      }
      config.head = head_config;
    }

    if (auto norm = root.find("normalization"); norm != root.end()) {
      if (!norm->is_object()) {
        return Error(absl::StrCat(
            "\"normalization\" is ", Describe(*norm),
            "; expected an object with input_mean/input_std and/or "
            "output_mean/output_std arrays"));
      }
      Normalization normalization;
      RETURN_IF_ERROR(Pair(*norm, "input", config.input_size, "input_size",
                           normalization.input_mean, normalization.input_std));
      RETURN_IF_ERROR(Pair(*norm, "output", config.output_size(),
                           "the model's output size", normalization.output_mean,
                           normalization.output_std));
      config.normalization = std::move(normalization);
    }

    if (auto forecast = root.find("forecast"); forecast != root.end()) {
      ASSIGN_OR_RETURN(config.forecast, Forecast(*forecast, config));
    }

    if (auto description = root.find("description");
        description != root.end()) {
      if (!description->is_string()) {
        return Error(absl::StrCat("\"description\" is ", Describe(*description),
                                  "; expected a string"));
      }
      config.description = description->get<std::string>();
    }

    RETURN_IF_ERROR(Names(root, "input_names", config.input_size, "input_size",
                          config.input_names));
    RETURN_IF_ERROR(Names(root, "output_names", config.output_size(),
                          "the model's output size", config.output_names));
    return config;
  }

 private:
  // The ONNX-derived cell variants: each key belongs to one cell type (clip
  // to all) and is an error on the others, so a misplaced key is not
  // silently ignored.
  absl::Status CellVariant(const json& root, ModelConfig& config) const {
    auto only_for = [&](std::string_view key, CellType cell) -> absl::Status {
      if (root.contains(key) && config.cell != cell) {
        return Error(absl::StrCat(Quote(key), " is given but \"cell\" is \"",
                                  Av(CellTypeName(config.cell)),
                                  "\"; expected it only with \"cell\": \"",
                                  Av(CellTypeName(cell)), "\""));
      }
      return absl::OkStatus();
    };
    RETURN_IF_ERROR(only_for("nonlinearity", CellType::kRnn));
    RETURN_IF_ERROR(only_for("nonlinearity_alpha", CellType::kRnn));
    RETURN_IF_ERROR(only_for("nonlinearity_beta", CellType::kRnn));
    RETURN_IF_ERROR(only_for("gru_linear_before_reset", CellType::kGru));
    RETURN_IF_ERROR(only_for("lstm_peepholes", CellType::kLstm));
    RETURN_IF_ERROR(only_for("lstm_input_forget", CellType::kLstm));
    ASSIGN_OR_RETURN(config.gru_linear_before_reset,
                     Bool(root, "gru_linear_before_reset", true));
    ASSIGN_OR_RETURN(config.lstm_peepholes,
                     Bool(root, "lstm_peepholes", false));
    ASSIGN_OR_RETURN(config.lstm_input_forget,
                     Bool(root, "lstm_input_forget", false));
    if (auto clip = root.find("clip"); clip != root.end()) {
      const double v = clip->is_number() ? clip->get<double>() : -1;
      if (!clip->is_number() || !(v > 0) ||
          !std::isfinite(static_cast<float>(v))) {
        return Error(absl::StrCat("\"clip\" is ", Describe(*clip),
                                  "; expected a finite number > 0 (absent = "
                                  "no clipping)"));
      }
      config.clip = static_cast<float>(v);
    }
    if (config.cell != CellType::kRnn) return absl::OkStatus();

    if (auto nl = root.find("nonlinearity"); nl != root.end()) {
      std::optional<Nonlinearity> parsed;
      if (nl->is_string()) {
        parsed = ParseNonlinearity(nl->get_ref<const std::string&>());
      }
      if (!parsed) {
        return Error(absl::StrCat("\"nonlinearity\" is ", Describe(*nl),
                                  "; expected ", kNonlinearityChoices));
      }
      config.nonlinearity = *parsed;
    }
    const int params = NonlinearityParams(config.nonlinearity);
    const std::string name(NonlinearityName(config.nonlinearity));
    for (auto [key, index, out, fallback] :
         {std::tuple{"nonlinearity_alpha", 1, &config.nonlinearity_alpha,
                     NonlinearityDefaultAlpha(config.nonlinearity)},
          std::tuple{"nonlinearity_beta", 2, &config.nonlinearity_beta,
                     NonlinearityDefaultBeta(config.nonlinearity)}}) {
      auto it = root.find(key);
      if (index > params) {
        if (it != root.end()) {
          return Error(absl::StrCat(
              Quote(key), " is given but nonlinearity \"", name, "\" takes ",
              params == 0 ? "no parameters" : "only alpha",
              "; expected it absent"));
        }
        *out = 0.0f;
        continue;
      }
      if (it == root.end()) {
        if (std::isnan(fallback)) {
          return Error(absl::StrCat(Quote(key), " is missing; nonlinearity \"",
                                    name, "\" needs it (a finite number)"));
        }
        *out = fallback;
        continue;
      }
      const float v = it->is_number() ? static_cast<float>(it->get<double>())
                                      : std::nanf("");
      if (!std::isfinite(v)) {
        return Error(absl::StrCat(Quote(key), " is ", Describe(*it),
                                  "; expected a finite number"));
      }
      *out = v;
    }
    return absl::OkStatus();
  }

  // "forecast": {"feedback": [...], "output_scale": [...]}, both optional.
  absl::StatusOr<ForecastConfig> Forecast(const json& value,
                                          const ModelConfig& config) const {
    if (!value.is_object()) {
      return Error(absl::StrCat(
          "\"forecast\" is ", Describe(value),
          R"(; expected an object like {"feedback": [0], "output_scale": )"
          R"([1.5]})"));
    }
    ForecastConfig forecast;
    const int outputs = config.output_size();
    if (auto feedback = value.find("feedback"); feedback != value.end()) {
      if (!feedback->is_array()) {
        return Error(absl::StrCat("\"forecast.feedback\" is ",
                                  Describe(*feedback),
                                  "; expected an array of output indices"));
      }
      if (feedback->size() != static_cast<size_t>(config.input_size)) {
        return Error(
            absl::StrCat("\"forecast.feedback\" has ", feedback->size(),
                         " indices; expected ", config.input_size,
                         " (input_size: input j takes output feedback[j])"));
      }
      for (size_t j = 0; j < feedback->size(); ++j) {
        const json& e = (*feedback)[j];
        const bool ok = (e.is_number_unsigned() &&
                         e.get<uint64_t>() < static_cast<uint64_t>(outputs)) ||
                        (e.is_number_integer() && e.get<int64_t>() >= 0 &&
                         e.get<int64_t>() < outputs);
        if (!ok) {
          return Error(absl::StrCat(
              "\"forecast.feedback\"[", j, "] is ", Describe(e),
              "; expected an output index "
              "in [0, ",
              outputs - 1, "] (the model's output size is ", outputs, ")"));
        }
        forecast.feedback.push_back(static_cast<int>(e.get<int64_t>()));
      }
    }
    if (auto scale = value.find("output_scale"); scale != value.end()) {
      if (config.head && config.head->activation == Activation::kSoftmax) {
        return Error(
            "\"forecast.output_scale\" is given but the head is softmax; "
            "expected it absent (a softmax model's sample paths draw each "
            "step from its probabilities)");
      }
      RETURN_IF_ERROR(
          Floats(*scale, "forecast.output_scale", forecast.output_scale));
      if (forecast.output_scale.size() != static_cast<size_t>(outputs)) {
        return Error(absl::StrCat(
            "\"forecast.output_scale\" has ", forecast.output_scale.size(),
            " values; expected ", outputs, " (the model's output size)"));
      }
      for (size_t k = 0; k < forecast.output_scale.size(); ++k) {
        if (!(forecast.output_scale[k] > 0)) {
          return Error(absl::StrCat("\"forecast.output_scale\"[", k, "] is ",
                                    forecast.output_scale[k],
                                    "; expected a finite number > 0 (the "
                                    "noise's standard deviation)"));
        }
      }
    }
    return forecast;
  }

  absl::StatusOr<bool> Bool(const json& root, std::string_view key,
                            bool fallback) const {
    auto it = root.find(key);
    if (it == root.end()) return fallback;
    if (!it->is_boolean()) {
      return Error(absl::StrCat(Quote(key), " is ", Describe(*it),
                                "; expected true or false"));
    }
    return it->get<bool>();
  }

  absl::Status Error(absl::string_view message) const {
    return absl::InvalidArgumentError(absl::StrCat(file_name_, ": ", message));
  }

  // A required integer field in [min, max]. `path` names the field in
  // messages; `key` is its key in `object` (defaults to `path`); `note` is
  // appended to the expectation.
  absl::StatusOr<int> Int(const json& object, std::string_view path, int min,
                          int max, absl::string_view note = "",
                          std::string_view key = "") const {
    if (key.empty()) key = path;
    const std::string expected =
        absl::StrCat("expected an integer in [", min, ", ", max, "]", note);
    auto it = object.find(key);
    if (it == object.end()) {
      return Error(absl::StrCat(Quote(path), " is missing; ", expected));
    }
    bool in_range = false;
    if (it->is_number_unsigned()) {
      const uint64_t v = it->get<uint64_t>();
      in_range = max >= 0 && v <= static_cast<uint64_t>(max) &&
                 (min <= 0 || v >= static_cast<uint64_t>(min));
    } else if (it->is_number_integer()) {
      const int64_t v = it->get<int64_t>();
      in_range = v >= min && v <= max;
    }
    if (!in_range) {
      return Error(
          absl::StrCat(Quote(path), " is ", Describe(*it), "; ", expected));
    }
    return static_cast<int>(it->get<int64_t>());
  }

  // An array of numbers that are finite as float32, e.g. input_mean.
  absl::Status Floats(const json& value, std::string_view path,
                      std::vector<float>& out) const {
    if (!value.is_array()) {
      return Error(absl::StrCat(Quote(path), " is ", Describe(value),
                                "; expected an array of numbers"));
    }
    out.clear();
    out.reserve(value.size());
    for (size_t i = 0; i < value.size(); ++i) {
      const json& element = value[i];
      const float f =
          element.is_number() ? static_cast<float>(element.get<double>()) : 0;
      if (!element.is_number() || !std::isfinite(f)) {
        return Error(absl::StrCat(Quote(path), "[", i, "] is ",
                                  Describe(element),
                                  "; expected a finite (float32) number"));
      }
      out.push_back(f);
    }
    return absl::OkStatus();
  }

  // normalization.{prefix}_mean / {prefix}_std: both or neither, each of
  // `size` elements, std > 0.
  absl::Status Pair(const json& norm, absl::string_view prefix, int size,
                    absl::string_view size_name, std::vector<float>& mean,
                    std::vector<float>& std_dev) const {
    const std::string mean_key = absl::StrCat(prefix, "_mean");
    const std::string std_key = absl::StrCat(prefix, "_std");
    auto mean_it = norm.find(mean_key);
    auto std_it = norm.find(std_key);
    if (mean_it == norm.end() && std_it == norm.end()) return absl::OkStatus();
    if (mean_it == norm.end() || std_it == norm.end()) {
      const std::string& present = mean_it == norm.end() ? std_key : mean_key;
      const std::string& absent = mean_it == norm.end() ? mean_key : std_key;
      return Error(absl::StrCat("\"normalization\" has \"", present,
                                "\" but not \"", absent,
                                "\"; expected both or neither"));
    }
    for (auto [it, key, out] : {std::tuple{mean_it, &mean_key, &mean},
                                std::tuple{std_it, &std_key, &std_dev}}) {
      const std::string path = absl::StrCat("normalization.", *key);
      RETURN_IF_ERROR(Floats(*it, path, *out));
      if (out->size() != static_cast<size_t>(size)) {
        return Error(absl::StrCat(Quote(path), " has ", out->size(),
                                  " values; expected ", size, " (", size_name,
                                  ")"));
      }
    }
    for (size_t i = 0; i < std_dev.size(); ++i) {
      if (!(std_dev[i] > 0)) {
        return Error(absl::StrCat("\"normalization.", std_key, "\"[", i,
                                  "] is ", std_dev[i],
                                  "; expected a finite number > 0"));
      }
    }
    return absl::OkStatus();
  }

  // Optional array of `size` strings (input_names / output_names).
  absl::Status Names(const json& root, std::string_view key, int size,
                     absl::string_view size_name,
                     std::vector<std::string>& out) const {
    auto it = root.find(key);
    if (it == root.end()) return absl::OkStatus();
    if (!it->is_array()) {
      return Error(absl::StrCat(Quote(key), " is ", Describe(*it),
                                "; expected an array of strings"));
    }
    for (size_t i = 0; i < it->size(); ++i) {
      if (!(*it)[i].is_string()) {
        return Error(absl::StrCat(Quote(key), "[", i, "] is ",
                                  Describe((*it)[i]), "; expected a string"));
      }
    }
    if (it->size() != static_cast<size_t>(size)) {
      return Error(absl::StrCat(Quote(key), " has ", it->size(),
                                " names; expected ", size, " (", size_name,
                                ")"));
    }
    out = it->get<std::vector<std::string>>();
    return absl::OkStatus();
  }

  absl::string_view file_name_;
  const ConfigLimits& limits_;
};

// The deepest nesting of arrays and objects in `text`, stopping as soon as
// it passes `limit` (strings are skipped, so brackets inside them do not
// count). Iterative: this is what guards the recursive parser.
int NestingDepth(std::string_view text, int limit, size_t& where) {
  int depth = 0, deepest = 0;
  bool in_string = false, escaped = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > deepest) deepest = depth;
      if (deepest > limit) {
        where = i;
        return deepest;
      }
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return deepest;
}

absl::StatusOr<ModelConfig> ParseImpl(std::string_view json_text,
                                      absl::string_view file_name,
                                      const ConfigLimits& limits) {
  if (json_text.size() > limits.max_config_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat(file_name, ": config is ", json_text.size(),
                     " bytes; expected at most ", limits.max_config_bytes,
                     " (max_config_bytes)"));
  }
  // nlohmann's lexer takes a NUL byte for the end of the input, which would
  // silently ignore whatever follows it. JSON never contains a raw NUL.
  if (const size_t nul = json_text.find('\0'); nul != json_text.npos) {
    return absl::InvalidArgumentError(absl::StrCat(
        file_name, ": not valid JSON (at byte ", nul, "): NUL byte"));
  }
  if (size_t where = 0; NestingDepth(json_text, limits.max_json_depth, where) >
                        limits.max_json_depth) {
    return absl::InvalidArgumentError(
        absl::StrCat(file_name, ": arrays and objects are nested more than ",
                     limits.max_json_depth, " deep (at byte ", where,
                     "); a config.json needs a few levels"));
  }
  // Duplicate keys are an error (nlohmann would silently keep the last one):
  // a config with two "hidden_size" entries is ambiguous.
  std::vector<std::set<std::string>> open_objects;
  std::string duplicate;
  auto callback = [&](int /*depth*/, json::parse_event_t event, json& parsed) {
    switch (event) {
      case json::parse_event_t::object_start:
        open_objects.emplace_back();
        break;
      case json::parse_event_t::object_end:
        if (!open_objects.empty()) open_objects.pop_back();
        break;
      case json::parse_event_t::key:
        if (!open_objects.empty() && duplicate.empty() &&
            !open_objects.back().insert(parsed.get<std::string>()).second) {
          duplicate = parsed.get<std::string>();
        }
        break;
      default:
        break;
    }
    return true;
  };
  json root;
  try {
    root = json::parse(json_text.begin(), json_text.end(), callback);
  } catch (const json::parse_error& e) {
    std::string what = e.what();
    if (what.size() > 300) what = absl::StrCat(what.substr(0, 300), "...");
    return absl::InvalidArgumentError(absl::StrCat(
        file_name, ": not valid JSON (at byte ", e.byte, "): ", what));
  }
  if (!duplicate.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        file_name, ": key ", Quote(duplicate),
        " appears more than once in one object; expected unique keys"));
  }
  return ConfigParser(file_name, limits).Parse(root);
}

}  // namespace

std::string_view CellTypeName(CellType cell) {
  switch (cell) {
    case CellType::kLstm:
      return "lstm";
    case CellType::kGru:
      return "gru";
    case CellType::kRnn:
      return "rnn";
  }
  return "unknown";
}

std::string_view NonlinearityName(Nonlinearity nonlinearity) {
  switch (nonlinearity) {
    case Nonlinearity::kTanh:
      return "tanh";
    case Nonlinearity::kRelu:
      return "relu";
    case Nonlinearity::kSigmoid:
      return "sigmoid";
    case Nonlinearity::kAffine:
      return "affine";
    case Nonlinearity::kLeakyRelu:
      return "leaky_relu";
    case Nonlinearity::kThresholdedRelu:
      return "thresholded_relu";
    case Nonlinearity::kScaledTanh:
      return "scaled_tanh";
    case Nonlinearity::kHardSigmoid:
      return "hard_sigmoid";
    case Nonlinearity::kElu:
      return "elu";
    case Nonlinearity::kSoftsign:
      return "softsign";
    case Nonlinearity::kSoftplus:
      return "softplus";
  }
  return "unknown";
}

std::optional<Nonlinearity> ParseNonlinearity(std::string_view name) {
  for (Nonlinearity n : kAllNonlinearities) {
    if (NonlinearityName(n) == name) return n;
  }
  return std::nullopt;
}

int NonlinearityParams(Nonlinearity n) {
  switch (n) {
    case Nonlinearity::kAffine:
    case Nonlinearity::kScaledTanh:
    case Nonlinearity::kHardSigmoid:
      return 2;
    case Nonlinearity::kLeakyRelu:
    case Nonlinearity::kThresholdedRelu:
    case Nonlinearity::kElu:
      return 1;
    default:
      return 0;
  }
}

// ONNX's own operators' defaults (LeakyRelu 0.01, ThresholdedRelu 1, Elu 1,
// HardSigmoid 0.2/0.5); Affine and ScaledTanh have none, so they must be
// given.
float NonlinearityDefaultAlpha(Nonlinearity n) {
  switch (n) {
    case Nonlinearity::kLeakyRelu:
      return 0.01f;
    case Nonlinearity::kThresholdedRelu:
    case Nonlinearity::kElu:
      return 1.0f;
    case Nonlinearity::kHardSigmoid:
      return 0.2f;
    default:
      return std::nanf("");
  }
}

float NonlinearityDefaultBeta(Nonlinearity n) {
  return n == Nonlinearity::kHardSigmoid ? 0.5f : std::nanf("");
}

std::string_view ActivationName(Activation activation) {
  switch (activation) {
    case Activation::kIdentity:
      return "identity";
    case Activation::kSoftmax:
      return "softmax";
    case Activation::kSigmoid:
      return "sigmoid";
    case Activation::kTanh:
      return "tanh";
  }
  return "unknown";
}

absl::StatusOr<ModelConfig> ParseModelConfig(std::string_view json_text,
                                             std::string_view file_name,
                                             const ConfigLimits& limits) {
  const absl::string_view file = Av(file_name);
  try {
    return ParseImpl(json_text, file, limits);
  } catch (const std::bad_alloc&) {
    return absl::ResourceExhaustedError(
        absl::StrCat(file, ": out of memory while parsing the config"));
  } catch (const std::exception& e) {
    return absl::InternalError(
        absl::StrCat(file, ": unexpected error: ", e.what()));
  }
}

absl::StatusOr<ModelConfig> ReadModelConfig(const std::string& path,
                                            const ConfigLimits& limits) {
  ASSIGN_OR_RETURN(
      std::string text,
      ReadWholeFile(path, limits.max_config_bytes,
                    {"config", "a config.json", "max_config_bytes"}));
  return ParseModelConfig(text, path, limits);
}

double ShortestDouble(float v) {
  for (int digits = 6; digits < 9; ++digits) {
    char text[32];
    std::snprintf(text, sizeof(text), "%.*g", digits, static_cast<double>(v));
    const double d = std::strtod(text, nullptr);
    if (static_cast<float>(d) == v) return d;
  }
  return v;
}

std::string ModelConfigToJson(const ModelConfig& config) {
  nlohmann::ordered_json out;
  out["cell"] = std::string(CellTypeName(config.cell));
  out["input_size"] = config.input_size;
  out["hidden_size"] = config.hidden_size;
  out["num_layers"] = config.num_layers;
  if (config.proj_size != 0) out["proj_size"] = config.proj_size;
  out["bias"] = config.bias;
  if (config.cell == CellType::kRnn) {
    out["nonlinearity"] = std::string(NonlinearityName(config.nonlinearity));
    const int params = NonlinearityParams(config.nonlinearity);
    if (params >= 1) {
      out["nonlinearity_alpha"] = ShortestDouble(config.nonlinearity_alpha);
    }
    if (params >= 2) {
      out["nonlinearity_beta"] = ShortestDouble(config.nonlinearity_beta);
    }
  }
  if (config.cell == CellType::kGru && !config.gru_linear_before_reset) {
    out["gru_linear_before_reset"] = false;
  }
  if (config.cell == CellType::kLstm && config.lstm_peepholes) {
    out["lstm_peepholes"] = true;
  }
  if (config.cell == CellType::kLstm && config.lstm_input_forget) {
    out["lstm_input_forget"] = true;
  }
  if (config.clip > 0) out["clip"] = ShortestDouble(config.clip);
  if (config.weights != WeightFormat::kF32) {
    out["weights"] = std::string(WeightFormatName(config.weights));
  }
  if (config.head) {
    out["head"] = {
        {"output_size", config.head->output_size},
        {"activation", std::string(ActivationName(config.head->activation))}};
  }
  if (config.normalization) {
    const Normalization& n = *config.normalization;
    nlohmann::ordered_json norm = nlohmann::ordered_json::object();
    if (!n.input_mean.empty() || !n.input_std.empty()) {
      norm["input_mean"] = n.input_mean;
      norm["input_std"] = n.input_std;
    }
    if (!n.output_mean.empty() || !n.output_std.empty()) {
      norm["output_mean"] = n.output_mean;
      norm["output_std"] = n.output_std;
    }
    out["normalization"] = std::move(norm);
  }
  if (config.forecast) {
    nlohmann::ordered_json forecast = nlohmann::ordered_json::object();
    if (!config.forecast->feedback.empty()) {
      forecast["feedback"] = config.forecast->feedback;
    }
    if (!config.forecast->output_scale.empty()) {
      nlohmann::ordered_json scale = nlohmann::ordered_json::array();
      for (float s : config.forecast->output_scale) {
        scale.push_back(ShortestDouble(s));
      }
      forecast["output_scale"] = std::move(scale);
    }
    out["forecast"] = std::move(forecast);
  }
  if (!config.description.empty()) out["description"] = config.description;
  if (!config.input_names.empty()) out["input_names"] = config.input_names;
  if (!config.output_names.empty()) out["output_names"] = config.output_names;
  // Invalid UTF-8 in strings is replaced (U+FFFD) rather than throwing.
  return out.dump(2, ' ', false,
                  nlohmann::ordered_json::error_handler_t::replace) +
         "\n";
}

}  // namespace lstmserve::model
