#include "client/cli/commands.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <iterator>
#include <optional>
#include <span>
#include <sstream>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "client/cli/csv.h"
#include "client/cli/explain_output.h"
#include "client/cli/text.h"
#include "nlohmann/json.hpp"

namespace lstmserve::client::cli {
namespace {

using json = nlohmann::json;

constexpr char kSnapshotFormat[] = "lstmserve.snapshot/1";
constexpr char kStateFormat[] = "lstmserve.state/1";  // lstm-model run
constexpr char kStdin[] = "stdin";

// Left-aligned columns separated by two spaces.
void PrintTable(const std::vector<std::vector<std::string>>& rows,
                std::ostream& out) {
  std::vector<size_t> widths;
  for (const auto& row : rows) {
    widths.resize(std::max(widths.size(), row.size()), 0);
    for (size_t i = 0; i < row.size(); ++i) {
      widths[i] = std::max(widths[i], row[i].size());
    }
  }
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line.append(widths[i] - row[i].size() + 2, ' ');
    }
    out << line << '\n';
  }
}

std::string FormatUnixMs(int64_t ms) {
  if (ms <= 0) return "-";
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::FromUnixMillis(ms),
                          absl::UTCTimeZone());
}

json ModelJson(const ModelInfo& m) {
  return json{{"name", m.name},
              {"version", m.version},
              {"versions", m.versions},
              {"cell", m.cell},
              {"input_size", m.input_size},
              {"output_size", m.output_size},
              {"hidden_size", m.hidden_size},
              {"num_layers", m.num_layers},
              {"proj_size", m.proj_size},
              {"head_activation", m.head_activation},
              {"state_size", m.state_size},
              {"input_names", m.input_names},
              {"output_names", m.output_names},
              {"description", m.description}};
}

json SessionJson(const SessionInfo& s) {
  json j{{"session_id", s.session_id},
         {"model", s.model},
         {"version", s.version},
         {"next_step", s.next_step},
         {"state_size", s.state_size},
         {"created_unix_ms", s.created_unix_ms},
         {"last_used_unix_ms", s.last_used_unix_ms}};
  if (s.durable_step) j["durable_step"] = *s.durable_step;
  if (s.explained_steps > 0) j["gate_summary"] = GateSummaryJson(s);
  return j;
}

void PrintSession(const SessionInfo& s, bool as_json, std::ostream& out) {
  if (as_json) {
    out << SessionJson(s).dump() << '\n';
    return;
  }
  out << "session_id: " << s.session_id << '\n'
      << "model: " << s.model << '\n'
      << "version: " << s.version << '\n'
      << "next_step: " << s.next_step << '\n';
  if (s.durable_step) {
    // -1: not in a checkpoint yet.
    out << "durable_step: " << *s.durable_step << '\n';
  }
  out << "state_size: " << s.state_size << '\n'
      << "created: " << FormatUnixMs(s.created_unix_ms) << '\n'
      << "last_used: " << FormatUnixMs(s.last_used_unix_ms) << '\n';
  if (s.explained_steps > 0) WriteGateSummary(s, out);
}

// All CSV steps of `in`, checked against the model's input width; a bad
// line is an error naming it.
absl::Status ReadAllSteps(std::istream& in, int width,
                          const std::string& model_name,
                          std::vector<float>* inputs, int* steps) {
  std::string line;
  std::vector<float> row;
  *steps = 0;
  for (int64_t line_number = 1; std::getline(in, line); ++line_number) {
    bool skip = false;
    if (absl::Status s = ParseCsvLine(line, kStdin, line_number, &row, &skip);
        !s.ok()) {
      return s;
    }
    if (skip) continue;
    if (static_cast<int>(row.size()) != width) {
      return absl::InvalidArgumentError(
          absl::StrCat(kStdin, ":", line_number, ": row has ", row.size(),
                       " value", row.size() == 1 ? "" : "s", "; model \"",
                       model_name, "\" expects ", width));
    }
    inputs->insert(inputs->end(), row.begin(), row.end());
    ++*steps;
  }
  if (in.bad()) return absl::DataLossError("cannot read stdin");
  return absl::OkStatus();
}

void PrintRows(const std::vector<float>& outputs, int output_size,
               int first_row, std::ostream& out) {
  const int rows =
      output_size > 0 ? static_cast<int>(outputs.size()) / output_size : 0;
  for (int r = first_row; r < rows; ++r) {
    out << FormatCsvRow(std::span<const float>(
               outputs.data() + static_cast<size_t>(r) * output_size,
               output_size))
        << '\n';
  }
}

absl::StatusOr<json> ParseJson(const std::string& text,
                               const std::string& source) {
  // A file nested deeper than any of ours is refused: what walks a parsed
  // value (dump() in error messages) recurses per level, and a file of a
  // million '[' would overflow the stack.
  constexpr int kMaxDepth = 64;
  bool too_deep = false;
  json j = json::parse(
      text,
      [&](int depth, json::parse_event_t event, json&) {
        if ((event == json::parse_event_t::object_start ||
             event == json::parse_event_t::array_start) &&
            depth > kMaxDepth) {
          too_deep = true;
          return false;  // not built
        }
        return true;
      },
      /*allow_exceptions=*/false);
  if (too_deep) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": arrays and objects are nested more than ",
                     kMaxDepth, " deep"));
  }
  if (j.is_discarded()) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": not valid JSON"));
  }
  if (!j.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": expected a JSON object"));
  }
  return j;
}

absl::StatusOr<std::vector<float>> FloatArray(const json& j,
                                              const std::string& where) {
  if (!j.is_array()) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": expected an array of numbers"));
  }
  std::vector<float> values;
  values.reserve(j.size());
  for (size_t i = 0; i < j.size(); ++i) {
    if (!j[i].is_number()) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, "[", i, "]: expected a number"));
    }
    const double v = j[i].get<double>();
    if (!std::isfinite(static_cast<float>(v))) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, "[", i, "]: expected a finite float"));
    }
    values.push_back(static_cast<float>(v));
  }
  return values;
}

absl::StatusOr<std::string> ReadTextFile(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) {
    return absl::NotFoundError(absl::StrCat(path, ": cannot open for reading"));
  }
  std::string text((std::istreambuf_iterator<char>(file)),
                   std::istreambuf_iterator<char>());
  if (file.bad())
    return absl::DataLossError(absl::StrCat(path, ": read failed"));
  return text;
}

// Characters read together (already in the input buffer) go out as one
// chunk of up to this many steps; a slow writer gets an answer per read.
constexpr size_t kMaxTextChunk = 256;

// Text mode: reads `in` one UTF-8 character at a time and calls
// send(one-hot inputs, steps, shown inputs) for each run of characters that
// arrived together. A character outside the alphabet of a model without
// "<unk>" stops the reading with INVALID_ARGUMENT after sending the ones
// before it.
absl::Status SendText(std::istream& in, const TextAlphabet& alphabet,
                      const std::string& model_name,
                      const std::function<void(std::vector<float>, int,
                                               std::vector<std::string>)>& send,
                      const std::function<bool()>& failed) {
  const size_t width = static_cast<size_t>(alphabet.input_size());
  std::string character;
  int64_t position = 0;  // characters read so far
  absl::Status status;
  while (status.ok() && !failed() && ReadUtf8Char(in, &character)) {
    std::vector<float> inputs;
    std::vector<std::string> shown;
    do {
      ++position;
      const std::optional<int> unit = alphabet.IndexOf(character);
      if (!unit) {
        status = absl::InvalidArgumentError(absl::StrCat(
            kStdin, ": character ", position, " ", QuoteCharacter(character),
            " is not in the alphabet of model \"", model_name,
            "\", which has no \"", kUnknownName, "\" input"));
        break;
      }
      inputs.resize(inputs.size() + width, 0.0f);
      inputs[inputs.size() - width + static_cast<size_t>(*unit)] = 1.0f;
      shown.push_back(QuoteCharacter(character));
      if (*unit == alphabet.unknown_index()) {
        absl::StrAppend(&shown.back(), "=", kUnknownName);
      }
    } while (shown.size() < kMaxTextChunk && in.rdbuf()->in_avail() > 0 &&
             ReadUtf8Char(in, &character));
    if (!shown.empty()) {
      const int steps = static_cast<int>(shown.size());
      send(std::move(inputs), steps, std::move(shown));
    }
  }
  return status;
}

}  // namespace

std::string ResolveTarget(const std::string& flag_value) {
  if (!flag_value.empty()) return flag_value;
  const char* env = std::getenv("LSTMSERVE_TARGET");
  if (env != nullptr && *env != '\0') return env;
  return "127.0.0.1:50051";
}

absl::StatusOr<std::string> ResolveToken(const std::string& token_file) {
  if (token_file.empty()) {
    const char* env = std::getenv("LSTMSERVE_TOKEN");
    return std::string(env == nullptr ? "" : env);
  }
  std::ifstream in(token_file);
  std::string line;
  if (!in || !std::getline(in, line)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--token-file ", token_file, ": cannot read the file"));
  }
  const std::string token(absl::StripAsciiWhitespace(line));
  if (token.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--token-file ", token_file, ": its first line holds no token"));
  }
  return token;
}

std::string FormatError(const absl::Status& status) {
  std::string message(status.message());
  // One line, whatever the message holds.
  std::replace(message.begin(), message.end(), '\n', ' ');
  return absl::StrCat(absl::StatusCodeToString(status.code()), ": ", message);
}

absl::Status ModelsCommand(Client& client, const ModelsOptions& options,
                           std::ostream& out) {
  absl::StatusOr<std::vector<ModelInfo>> models = client.ListModels();
  if (!models.ok()) return models.status();
  if (options.json) {
    json list = json::array();
    for (const ModelInfo& m : *models) list.push_back(ModelJson(m));
    out << list.dump(2) << '\n';
    return absl::OkStatus();
  }
  std::vector<std::vector<std::string>> rows = {{"NAME", "VERSIONS", "CELL",
                                                 "INPUT", "OUTPUT", "HIDDEN",
                                                 "LAYERS", "STATE"}};
  for (const ModelInfo& m : *models) {
    rows.push_back({m.name, absl::StrJoin(m.versions, ","), m.cell,
                    std::to_string(m.input_size), std::to_string(m.output_size),
                    std::to_string(m.hidden_size), std::to_string(m.num_layers),
                    std::to_string(m.state_size)});
  }
  PrintTable(rows, out);
  return absl::OkStatus();
}

absl::Status PredictCommand(Client& client, const PredictOptions& options,
                            std::istream& in, std::ostream& out) {
  if (options.max_chunk < 1) {
    return absl::InvalidArgumentError("--chunk must be at least 1");
  }
  if (options.create && options.session_id.empty()) {
    return absl::InvalidArgumentError("--create needs --session ID");
  }
  // The version whose input width applies: an existing session's own.
  int64_t version = options.version;
  if (!options.session_id.empty()) {
    absl::StatusOr<SessionInfo> existing =
        client.GetSession(options.session_id);
    if (existing.ok()) {
      if (existing->model != options.model) {
        return absl::FailedPreconditionError(
            absl::StrCat("session \"", options.session_id, "\" runs model \"",
                         existing->model, "\", not \"", options.model, "\""));
      }
      version = existing->version;
    } else if (!absl::IsNotFound(existing.status())) {
      return existing.status();
    } else if (!options.create) {
      return absl::NotFoundError(
          absl::StrCat("session \"", options.session_id,
                       "\" not found; pass --create to start it (at step 0)"));
    }
  }
  absl::StatusOr<ModelInfo> model = client.GetModel(options.model, version);
  if (!model.ok()) return model.status();

  // Everything is read and checked before anything is sent.
  std::vector<float> inputs;
  int steps = 0;
  if (absl::Status s =
          ReadAllSteps(in, model->input_size, model->name, &inputs, &steps);
      !s.ok()) {
    return s;
  }

  std::vector<float> last_outputs;
  int output_size = 0;
  auto print = [&](const std::vector<float>& outputs, int size) {
    if (options.all_steps) PrintRows(outputs, size, 0, out);
    last_outputs = outputs;
    output_size = size;
  };

  if (options.session_id.empty() && steps <= options.max_chunk) {
    if (steps == 0) return absl::OkStatus();
    PredictRequest request;
    request.model = model->name;
    request.version = model->version;
    request.inputs = std::move(inputs);
    request.steps = steps;
    absl::StatusOr<PredictResult> result = client.Predict(request);
    if (!result.ok()) return result.status();
    print(result->outputs, result->output_size);
  } else {
    // A session: the named one, or a temporary one when the input is
    // longer than one request.
    OpenSessionOptions open;
    open.model = model->name;
    open.version = options.session_id.empty() ? model->version : version;
    open.session_id = options.session_id;
    absl::StatusOr<std::unique_ptr<Session>> session = client.OpenSession(open);
    if (!session.ok()) return session.status();
    const size_t width = static_cast<size_t>(model->input_size);
    absl::Status status;
    for (int done = 0; done < steps && status.ok();) {
      const int n = std::min(options.max_chunk, steps - done);
      std::vector<float> chunk(inputs.begin() + done * width,
                               inputs.begin() + (done + n) * width);
      absl::StatusOr<StepResult> result = (*session)->Step(chunk, n);
      if (!result.ok()) {
        status = result.status();
        break;
      }
      print(result->outputs, result->output_size);
      done += n;
    }
    if (options.session_id.empty()) {
      absl::Status closed = (*session)->Close();
      if (status.ok()) status = closed;
    }
    if (!status.ok()) return status;
  }
  if (!options.all_steps && output_size > 0 &&
      last_outputs.size() >= static_cast<size_t>(output_size)) {
    PrintRows(last_outputs, output_size,
              static_cast<int>(last_outputs.size()) / output_size - 1, out);
  }
  out.flush();
  return absl::OkStatus();
}

absl::Status StreamCommand(Client& client, const StreamOptions& options,
                           std::istream& in, std::ostream& out,
                           std::ostream& err) {
  const bool explain = options.explain || !options.explain_csv.empty();
  std::ofstream explain_csv;
  if (!options.explain_csv.empty()) {
    explain_csv.open(options.explain_csv, std::ios::trunc);
    if (!explain_csv) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--explain-csv ", options.explain_csv, ": cannot write the file"));
    }
  }
  if (options.create && options.session_id.empty()) {
    return absl::InvalidArgumentError("--create needs --session ID");
  }
  if (options.top_k < 1) {
    return absl::InvalidArgumentError("--top-k must be at least 1");
  }
  if (options.text && options.session_id.empty()) {
    // Refuse a model that is not a text model before a session is made.
    absl::StatusOr<ModelInfo> model =
        client.GetModel(options.model, options.version);
    if (!model.ok()) return model.status();
    if (absl::StatusOr<TextAlphabet> a = TextAlphabet::Create(*model);
        !a.ok()) {
      return a.status();
    }
  }
  OpenSessionOptions open;
  open.model = options.model;
  open.version = options.version;
  open.session_id = options.session_id;
  open.create_if_missing = options.create;
  open.explain = explain;
  absl::StatusOr<std::unique_ptr<StreamingSession>> stream =
      client.OpenStream(open);
  if (absl::IsNotFound(stream.status()) && !options.session_id.empty() &&
      !options.create) {
    return absl::NotFoundError(absl::StrCat(
        stream.status().message(), "; pass --create to start it (at step 0)"));
  }
  if (!stream.ok()) return stream.status();
  // Without --session the session is ours to close at the end.
  auto close_session = [&](absl::Status status) {
    absl::Status closed = (*stream)->Close();
    if (options.session_id.empty()) {
      absl::Status gone = client.CloseSession((*stream)->id());
      if (closed.ok()) closed = gone;
    }
    return status.ok() ? closed : status;
  };

  absl::StatusOr<ModelInfo> model =
      client.GetModel((*stream)->model(), (*stream)->version());
  if (!model.ok()) return close_session(model.status());
  std::optional<TextAlphabet> alphabet;
  if (options.text) {
    absl::StatusOr<TextAlphabet> a = TextAlphabet::Create(*model);
    if (!a.ok()) return close_session(a.status());
    alphabet = *std::move(a);
  }
  if (explain_csv.is_open())
    WriteExplainHeader(model->explain_fields, explain_csv);

  // Rows are printed by the stream's callbacks while this thread reads. A
  // stream tied to `out` (std::cin is tied to std::cout) would flush `out`
  // from this thread before every read, racing with the callbacks: untie.
  std::ostream* const tied = in.tie(nullptr);
  absl::Mutex mu;
  absl::Status first_error;  // of a step; guarded by mu
  auto failed = [&]() {
    absl::MutexLock lock(&mu);
    return !first_error.ok();
  };
  // Sends `steps` steps; their results are printed as CSV rows, or in text
  // mode as one top-k line per step, `shown` holding each step's input.
  auto send = [&](std::vector<float> inputs, int steps,
                  std::vector<std::string> shown) {
    // Callbacks run one at a time, in order, so they may write to `out`.
    (*stream)->Send(
        std::move(inputs), steps,
        [&, shown = std::move(shown)](absl::StatusOr<StepResult> result) {
          if (!result.ok()) {
            absl::MutexLock lock(&mu);
            if (first_error.ok()) first_error = result.status();
            return;
          }
          if (failed()) return;  // print nothing after a failed step
          if (explain_csv.is_open()) WriteExplainRows(*result, explain_csv);
          if (!alphabet) {
            PrintRows(result->outputs, result->output_size, 0, out);
          } else {
            const size_t width = static_cast<size_t>(result->output_size);
            for (size_t i = 0; i < shown.size(); ++i) {
              if ((i + 1) * width > result->outputs.size()) break;
              out << FormatTopK(shown[i],
                                std::span<const float>(
                                    result->outputs.data() + i * width, width),
                                alphabet->output_names(), options.top_k)
                  << '\n';
            }
          }
          out.flush();
        });
  };

  absl::Status status;
  if (alphabet) {
    status = SendText(in, *alphabet, model->name, send, failed);
  } else {
    std::string line;
    std::vector<float> row;
    for (int64_t line_number = 1; !failed() && std::getline(in, line);
         ++line_number) {
      bool skip = false;
      status = ParseCsvLine(line, kStdin, line_number, &row, &skip);
      if (!status.ok()) break;
      if (skip) continue;
      if (static_cast<int>(row.size()) != model->input_size) {
        status = absl::InvalidArgumentError(
            absl::StrCat(kStdin, ":", line_number, ": row has ", row.size(),
                         " value", row.size() == 1 ? "" : "s", "; model \"",
                         model->name, "\" expects ", model->input_size));
        break;
      }
      send(row, 1, {});
    }
  }
  if (status.ok() && in.bad())
    status = absl::DataLossError("cannot read stdin");
  (*stream)->Flush();
  {
    absl::MutexLock lock(&mu);
    if (!first_error.ok()) status = first_error;
  }
  in.tie(tied);
  if (explain_csv.is_open()) {
    explain_csv.close();
    if (!explain_csv && status.ok()) {
      status = absl::DataLossError(absl::StrCat(
          "--explain-csv ", options.explain_csv, ": writing the file failed"));
    }
  }
  if (explain && status.ok()) {
    absl::StatusOr<SessionInfo> info = client.GetSession((*stream)->id());
    if (!info.ok()) return close_session(info.status());
    WriteGateSummary(*info, err);
  }
  return close_session(status);
}

absl::Status SessionCreateCommand(Client& client,
                                  const SessionCreateOptions& options,
                                  std::ostream& out) {
  CreateSessionRequest request;
  request.session_id = options.session_id;
  request.model = options.model;
  request.version = options.version;
  if (!options.state_file.empty()) {
    absl::StatusOr<std::string> text = ReadTextFile(options.state_file);
    if (!text.ok()) return text.status();
    absl::StatusOr<json> j = ParseJson(*text, options.state_file);
    if (!j.ok()) return j.status();
    if (j->contains("format")) {
      const json& format = (*j)["format"];
      if (!format.is_string() ||
          (format.get<std::string>() != kStateFormat &&
           format.get<std::string>() != kSnapshotFormat)) {
        return absl::InvalidArgumentError(absl::StrCat(
            options.state_file, ": format is ", format.dump(), "; expected \"",
            kStateFormat, "\" (lstm-model run --state-out) or \"",
            kSnapshotFormat, "\" (lstm-client session export)"));
      }
    }
    if (!j->contains("state")) {
      return absl::InvalidArgumentError(
          absl::StrCat(options.state_file,
                       ": no \"state\" array; expected a state file "
                       "(lstm-model run --state-out) or a snapshot"));
    }
    absl::StatusOr<std::vector<float>> state =
        FloatArray((*j)["state"], options.state_file + ": state");
    if (!state.ok()) return state.status();
    request.initial_state = *std::move(state);
  }
  absl::StatusOr<SessionInfo> info = client.CreateSession(request);
  if (!info.ok()) return info.status();
  if (options.json) {
    out << SessionJson(*info).dump() << '\n';
  } else {
    out << info->session_id << '\n';
  }
  return absl::OkStatus();
}

absl::Status SessionInfoCommand(Client& client, const std::string& session_id,
                                bool json_output, std::ostream& out) {
  absl::StatusOr<SessionInfo> info = client.GetSession(session_id);
  if (!info.ok()) return info.status();
  PrintSession(*info, json_output, out);
  return absl::OkStatus();
}

absl::Status SessionResetCommand(Client& client, const std::string& session_id,
                                 bool json_output, std::ostream& out) {
  absl::StatusOr<SessionInfo> info = client.ResetSession(session_id);
  if (!info.ok()) return info.status();
  PrintSession(*info, json_output, out);
  return absl::OkStatus();
}

absl::Status ForecastCommand(Client& client, const ForecastOptions& options,
                             std::ostream& out) {
  ForecastRequest request;
  request.session_id = options.session_id;
  request.horizon = options.horizon;
  request.samples = options.samples;
  request.seed = options.seed;
  absl::StatusOr<ForecastResult> r = client.Forecast(request);
  if (!r.ok()) return r.status();
  const size_t width = static_cast<size_t>(r->output_size);
  auto row = [&](const std::vector<float>& path, int i) {
    return std::span<const float>(path).subspan(i * width, width);
  };
  if (options.json) {
    auto rows = [&](const std::vector<float>& path) {
      json list = json::array();
      for (int i = 0; i < r->horizon; ++i) {
        auto v = row(path, i);
        list.push_back(std::vector<float>(v.begin(), v.end()));
      }
      return list;
    };
    json samples = json::array();
    for (const std::vector<float>& path : r->samples) {
      samples.push_back(rows(path));
    }
    json j = {{"session_id", r->session_id},   {"model", r->model},
              {"version", r->version},         {"from_step", r->from_step},
              {"horizon", r->horizon},         {"output_size", r->output_size},
              {"forecast", rows(r->forecast)}, {"samples", std::move(samples)}};
    out << j.dump() << '\n';
    return absl::OkStatus();
  }
  std::vector<float> line;
  for (int i = 0; i < r->horizon; ++i) {
    line.clear();
    auto f = row(r->forecast, i);
    line.insert(line.end(), f.begin(), f.end());
    for (const std::vector<float>& path : r->samples) {
      auto v = row(path, i);
      line.insert(line.end(), v.begin(), v.end());
    }
    out << FormatCsvRow(line) << '\n';
  }
  return absl::OkStatus();
}

absl::StatusOr<bool> HealthCommand(Client& client, const HealthOptions& options,
                                   std::ostream& out) {
  absl::StatusOr<bool> serving = client.CheckHealth(options.service);
  if (!serving.ok()) return serving.status();
  out << (*serving ? "SERVING" : "NOT_SERVING") << '\n';
  return *serving;
}

absl::Status SessionCloseCommand(Client& client,
                                 const std::string& session_id) {
  return client.CloseSession(session_id);
}

absl::Status SessionListCommand(Client& client,
                                const SessionListOptions& options,
                                std::ostream& out, std::ostream& err) {
  std::vector<SessionInfo> sessions;
  std::string token = options.page_token;
  do {
    absl::StatusOr<SessionPage> page =
        client.ListSessions(options.page_size, token);
    if (!page.ok()) return page.status();
    sessions.insert(sessions.end(), page->sessions.begin(),
                    page->sessions.end());
    token = page->next_page_token;
  } while (options.all && !token.empty());

  if (options.json) {
    json list = json::array();
    for (const SessionInfo& s : sessions) list.push_back(SessionJson(s));
    out << json{{"sessions", list}, {"next_page_token", token}}.dump(2) << '\n';
  } else {
    std::vector<std::vector<std::string>> rows = {
        {"SESSION", "MODEL", "VERSION", "NEXT_STEP", "LAST_USED"}};
    for (const SessionInfo& s : sessions) {
      rows.push_back({s.session_id, s.model, std::to_string(s.version),
                      std::to_string(s.next_step),
                      FormatUnixMs(s.last_used_unix_ms)});
    }
    PrintTable(rows, out);
  }
  if (!token.empty() && !options.json) {
    err << "more sessions: --page-token " << token << " (or --all)\n";
  }
  return absl::OkStatus();
}

std::string SnapshotToJson(const Snapshot& s) {
  json j = {{"format", kSnapshotFormat},
            {"session_id", s.session_id},
            {"model", s.model},
            {"version", s.version},
            {"next_step", s.next_step},
            {"state", s.state},
            {"last_first_step", s.last_first_step},
            {"last_inputs",
             {{"shape", s.last_inputs_shape}, {"values", s.last_inputs}}},
            {"last_outputs",
             {{"shape", s.last_outputs_shape}, {"values", s.last_outputs}}}};
  json replay = json::array();
  for (const SnapshotChunk& c : s.replay) {
    replay.push_back(
        {{"first_step", c.first_step},
         {"inputs", {{"shape", c.inputs_shape}, {"values", c.inputs}}},
         {"outputs", {{"shape", c.outputs_shape}, {"values", c.outputs}}}});
  }
  j["replay"] = std::move(replay);
  return j.dump() + "\n";
}

absl::StatusOr<Snapshot> SnapshotFromJson(const std::string& text,
                                          const std::string& source) {
  absl::StatusOr<json> parsed = ParseJson(text, source);
  if (!parsed.ok()) return parsed.status();
  const json& j = *parsed;
  auto field = [&](const char* name) -> const json* {
    auto it = j.find(name);
    return it == j.end() ? nullptr : &*it;
  };
  const json* format = field("format");
  if (format == nullptr || !format->is_string() ||
      format->get<std::string>() != kSnapshotFormat) {
    return absl::InvalidArgumentError(absl::StrCat(
        source, ": format is ", format ? format->dump() : "missing",
        "; expected \"", kSnapshotFormat,
        "\" (written by lstm-client session export)"));
  }
  Snapshot s;
  auto get_string = [&](const char* name, std::string* out) -> absl::Status {
    const json* f = field(name);
    if (f == nullptr || !f->is_string()) {
      return absl::InvalidArgumentError(
          absl::StrCat(source, ": ", name, ": expected a string"));
    }
    *out = f->get<std::string>();
    return absl::OkStatus();
  };
  auto get_int = [&](const char* name, int64_t* out) -> absl::Status {
    const json* f = field(name);
    if (f == nullptr) return absl::OkStatus();  // optional, 0
    if (!f->is_number_integer()) {
      return absl::InvalidArgumentError(
          absl::StrCat(source, ": ", name, ": expected an integer"));
    }
    *out = f->get<int64_t>();
    return absl::OkStatus();
  };
  auto tensor = [&](const json* f, const std::string& where,
                    std::vector<int64_t>* shape,
                    std::vector<float>* values) -> absl::Status {
    if (f == nullptr) return absl::OkStatus();  // no such chunk
    if (!f->is_object()) {
      return absl::InvalidArgumentError(
          absl::StrCat(where,
                       ": expected {\"shape\": [...], \"values\": "
                       "[...]}"));
    }
    if (auto it = f->find("shape"); it != f->end()) {
      if (!it->is_array()) {
        return absl::InvalidArgumentError(
            absl::StrCat(where, ".shape: expected an array of integers"));
      }
      for (const json& d : *it) {
        if (!d.is_number_integer()) {
          return absl::InvalidArgumentError(
              absl::StrCat(where, ".shape: expected an array of integers"));
        }
        shape->push_back(d.get<int64_t>());
      }
    }
    if (auto it = f->find("values"); it != f->end()) {
      absl::StatusOr<std::vector<float>> v =
          FloatArray(*it, absl::StrCat(where, ".values"));
      if (!v.ok()) return v.status();
      *values = *std::move(v);
    }
    return absl::OkStatus();
  };
  auto get_tensor = [&](const char* name, std::vector<int64_t>* shape,
                        std::vector<float>* values) {
    return tensor(field(name), absl::StrCat(source, ": ", name), shape, values);
  };
  if (const json* replay = field("replay")) {
    if (!replay->is_array()) {
      return absl::InvalidArgumentError(
          absl::StrCat(source, ": replay: expected an array of chunks"));
    }
    for (size_t i = 0; i < replay->size(); ++i) {
      const json& r = (*replay)[i];
      const std::string where = absl::StrCat(source, ": replay[", i, "]");
      if (!r.is_object() || !r.contains("first_step") ||
          !r["first_step"].is_number_integer()) {
        return absl::InvalidArgumentError(
            absl::StrCat(where,
                         ": expected {\"first_step\": N, \"inputs\": {...}, "
                         "\"outputs\": {...}}"));
      }
      SnapshotChunk& c = s.replay.emplace_back();
      c.first_step = r["first_step"].get<int64_t>();
      auto find = [&](const char* key) -> const json* {
        auto it = r.find(key);
        return it == r.end() ? nullptr : &*it;
      };
      for (absl::Status status : {tensor(find("inputs"), where + ".inputs",
                                         &c.inputs_shape, &c.inputs),
                                  tensor(find("outputs"), where + ".outputs",
                                         &c.outputs_shape, &c.outputs)}) {
        if (!status.ok()) return status;
      }
    }
  }
  for (absl::Status status :
       {get_string("session_id", &s.session_id), get_string("model", &s.model),
        get_int("version", &s.version), get_int("next_step", &s.next_step),
        get_int("last_first_step", &s.last_first_step),
        get_tensor("last_inputs", &s.last_inputs_shape, &s.last_inputs),
        get_tensor("last_outputs", &s.last_outputs_shape, &s.last_outputs)}) {
    if (!status.ok()) return status;
  }
  const json* state = field("state");
  if (state == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": state: expected an array of numbers"));
  }
  absl::StatusOr<std::vector<float>> values =
      FloatArray(*state, absl::StrCat(source, ": state"));
  if (!values.ok()) return values.status();
  s.state = *std::move(values);
  return s;
}

absl::Status SessionExportCommand(Client& client, const std::string& session_id,
                                  const std::string& out_file,
                                  std::ostream& out) {
  absl::StatusOr<Snapshot> snapshot = client.ExportSession(session_id);
  if (!snapshot.ok()) return snapshot.status();
  const std::string text = SnapshotToJson(*snapshot);
  if (out_file.empty() || out_file == "-") {
    out << text;
    out.flush();
    return absl::OkStatus();
  }
  const std::string tmp = out_file + ".tmp";
  {
    std::ofstream file(tmp, std::ios::binary | std::ios::trunc);
    if (!file) {
      return absl::PermissionDeniedError(
          absl::StrCat(out_file, ": cannot open for writing"));
    }
    file << text;
    file.close();
    if (!file) {
      std::remove(tmp.c_str());
      return absl::DataLossError(absl::StrCat(out_file, ": write failed"));
    }
  }
  if (std::rename(tmp.c_str(), out_file.c_str()) != 0) {
    std::remove(tmp.c_str());
    return absl::PermissionDeniedError(
        absl::StrCat(out_file, ": cannot replace the file"));
  }
  return absl::OkStatus();
}

absl::Status SessionImportCommand(Client& client, const std::string& in_file,
                                  std::istream& in, std::ostream& out) {
  std::string text;
  std::string source = in_file;
  if (in_file.empty() || in_file == "-") {
    source = kStdin;
    text.assign(std::istreambuf_iterator<char>(in),
                std::istreambuf_iterator<char>());
  } else {
    absl::StatusOr<std::string> read = ReadTextFile(in_file);
    if (!read.ok()) return read.status();
    text = *std::move(read);
  }
  absl::StatusOr<Snapshot> snapshot = SnapshotFromJson(text, source);
  if (!snapshot.ok()) return snapshot.status();
  absl::StatusOr<SessionInfo> info = client.ImportSession(*snapshot);
  if (!info.ok()) return info.status();
  out << info->session_id << '\n';
  return absl::OkStatus();
}

}  // namespace lstmserve::client::cli
