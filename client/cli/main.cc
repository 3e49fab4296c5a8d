// lstm-client: talk to an lstm-server from the shell. Flag parsing only;
// the commands live in commands.cc.
#include <chrono>
#include <iostream>
#include <string>

#include "CLI/CLI.hpp"
#include "client/cli/bench.h"
#include "client/cli/commands.h"
#include "lstmserve/client.h"

namespace cli = lstmserve::client::cli;

namespace {

constexpr int kUsageError = 2;
constexpr int kFailure = 1;

int Fail(const absl::Status& status) {
  std::cerr << "lstm-client: " << cli::FormatError(status) << std::endl;
  return kFailure;
}

}  // namespace

int main(int argc, char** argv) {
  std::ios::sync_with_stdio(false);
  CLI::App app{
      "lstm-client: talk to an lstm-server (lstmserve.v1.LstmServe).\n"
      "Inputs are CSV: one time step per line, comma-separated floats "
      "(blank lines and lines starting with # are skipped). Outputs are one "
      "CSV row per step, each float in its shortest exact form.\n"
      "Errors: one line on stderr naming the gRPC status code, exit code 1 "
      "(2 for usage errors)."};
  app.require_subcommand(1);
  app.footer(
      "Examples:\n"
      "  lstm-client --target host:50051 models\n"
      "  lstm-client --target host:50051 health\n"
      "  lstm-client predict --model sunspots < models/sunspots/data.csv\n"
      "  lstm-client predict --model sunspots --session s1 --create "
      "--all-steps < part1.csv\n"
      "  tail -f readings.csv | lstm-client stream --model sunspots\n"
      "  echo 'def f(x):' | lstm-client stream --model charlm --text\n"
      "  lstm-client session export s1 --out s1.json\n"
      "  lstm-client forecast --session s1 --horizon 11\n"
      "  lstm-client --target other:50051 session import --in s1.json\n"
      "Run `lstm-client COMMAND --help` for a command's flags; see "
      "docs/CLIENT.md.");
  std::string target_flag;
  double timeout_s = 10;
  app.add_option("--target", target_flag,
                 "Server address HOST:PORT (default: $LSTMSERVE_TARGET, else "
                 "127.0.0.1:50051)");
  app.add_option("--timeout", timeout_s,
                 "Seconds allowed for each call, retries included; for "
                 "streams, for each step's answer")
      ->capture_default_str()
      ->check(CLI::Range(0.001, 86400.0));
  bool tls = false;
  std::string tls_ca, tls_cert, tls_key, tls_server_name, token_file;
  app.add_flag("--tls", tls,
               "Connect with TLS, checking the server's certificate against "
               "the system's CAs (implied by any --tls-* option)");
  app.add_option("--tls-ca", tls_ca,
                 "PEM file of the CA(s) that signed the server's certificate");
  app.add_option("--tls-cert", tls_cert,
                 "PEM file of this client's certificate, for a server that "
                 "requires one (mutual TLS; with --tls-key)");
  app.add_option("--tls-key", tls_key, "PEM file of --tls-cert's private key");
  app.add_option("--tls-server-name", tls_server_name,
                 "Name the server's certificate must carry, when it is not "
                 "the --target host");
  app.add_option("--token-file", token_file,
                 "File holding the bearer token sent on every call (default: "
                 "$LSTMSERVE_TOKEN; a token is never taken as an argument, "
                 "where other users could read it in the process list)");
  bool session_affinity = false;
  app.add_flag("--session-affinity", session_affinity,
               "Give each streaming session a stream of its own carrying its "
               "id as x-session-id, for a front proxy that routes by it "
               "(docs/DEPLOY.md); `stream` always does");
  int streams = 1, inflight = 4;
  app.add_option("--streams", streams,
                 "Stream calls shared by all of this process's streaming "
                 "sessions")
      ->capture_default_str()
      ->check(CLI::Range(1, 1024));
  app.add_option("--inflight", inflight,
                 "Chunks one streaming session may have unanswered at once "
                 "(at most the server's --max-replay-chunks)")
      ->capture_default_str()
      ->check(CLI::Range(1, 1024));

  // models
  cli::ModelsOptions models;
  CLI::App* models_cmd = app.add_subcommand(
      "models",
      "List the server's models: name, versions, cell, input/output sizes, "
      "hidden size, layers and state floats per session.");
  models_cmd->add_flag("--json", models.json, "Print a JSON array instead");

  // health
  cli::HealthOptions health;
  CLI::App* health_cmd = app.add_subcommand(
      "health",
      "Standard gRPC health check (grpc.health.v1.Health/Check): print "
      "SERVING and exit 0, or NOT_SERVING and exit 1. Retried with backoff "
      "while the server cannot be reached, within --timeout.");
  health_cmd->add_option(
      "--service", health.service,
      "Check this service name (default: the server as a whole; NOT_FOUND "
      "if the server does not know it)");

  // predict
  cli::PredictOptions predict;
  CLI::App* predict_cmd = app.add_subcommand(
      "predict",
      "Read all CSV steps from stdin, run them and print the last step's "
      "output row (every row with --all-steps). Without --session the call "
      "is stateless (zero state, nothing kept). With --session ID the "
      "session keeps its state between invocations (--create starts it if "
      "it does not exist; without --create a missing session is an error, "
      "never a quiet restart at step 0); each chunk is sent exactly once. A "
      "bad input line is reported with its line number and nothing is "
      "sent.");
  predict_cmd->add_option("--model", predict.model, "Model name")->required();
  predict_cmd
      ->add_option("--version", predict.version,
                   "Model version (default: the highest)")
      ->check(CLI::NonNegativeNumber);
  predict_cmd->add_option("--session", predict.session_id,
                          "Continue this session (it must exist, unless "
                          "--create)");
  predict_cmd->add_flag("--create", predict.create,
                        "Create the --session if it does not exist");
  predict_cmd->add_flag("--all-steps", predict.all_steps,
                        "Print every step's output row, not just the last");
  predict_cmd
      ->add_option("--chunk", predict.max_chunk,
                   "Steps per request (longer inputs are sent in chunks on "
                   "one session)")
      ->capture_default_str()
      ->check(CLI::Range(1, 1 << 24));

  // stream
  cli::StreamOptions stream;
  CLI::App* stream_cmd = app.add_subcommand(
      "stream",
      "Read stdin line by line and send each step on one bidirectional "
      "stream as soon as it is read; print each output row as soon as it "
      "arrives (works with `tail -f data.csv | lstm-client stream ...`). "
      "Without --session a new session is used and closed at end of input; "
      "with --session ID the session is continued and kept (--create starts "
      "it if it does not exist). Reconnects and resends without losing or "
      "doubling a step if the server restarts with its sessions; a session "
      "the server lost is an error naming the step this client expected. "
      "With --text, stdin is text for a character-level model: one step per "
      "character, one line per step showing the character and the model's "
      "--top-k most likely next characters.");
  stream_cmd->add_option("--model", stream.model, "Model name")->required();
  stream_cmd
      ->add_option("--version", stream.version,
                   "Model version for a new session (default: the highest)")
      ->check(CLI::NonNegativeNumber);
  stream_cmd->add_option("--session", stream.session_id,
                         "Continue this session and keep it (it must exist, "
                         "unless --create)");
  stream_cmd->add_flag("--create", stream.create,
                       "Create the --session if it does not exist");
  stream_cmd->add_flag(
      "--text", stream.text,
      "Read stdin as UTF-8 text, one step per character, one-hot encoded "
      "over the model's input_names (other characters go to its \"<unk>\" "
      "input, or are an error if it has none); print one line per "
      "character: the character, then the top-k outputs (name and value), "
      "tab-separated");
  stream_cmd->add_flag(
      "--explain", stream.explain,
      "Run every step with explain (gates, cell and hidden state) and print "
      "the session's gate summary to stderr at the end "
      "(docs/INTERPRETABILITY.md)");
  stream_cmd->add_option(
      "--explain-csv", stream.explain_csv,
      "With explain: write each step's record to this CSV file (columns "
      "step,l<layer>.<field>.<unit>...; tools/plot_gates.py draws it); "
      "implies --explain");
  stream_cmd
      ->add_option("--top-k", stream.top_k,
                   "With --text: outputs shown per step, largest first")
      ->capture_default_str()
      ->check(CLI::Range(1, 1 << 20));

  // bench
  cli::BenchOptions bench;
  CLI::App* bench_cmd = app.add_subcommand(
      "bench",
      "Load generator: --sessions concurrent sessions each send chunks of "
      "--chunk steps, as fast as answers return or at --rate requests/s per "
      "session, over streams or unary calls, for --duration seconds. Prints "
      "steps/s, requests/s, latency percentiles, completed steps per session "
      "(min, median, max) and the sessions that completed nothing, errors by "
      "status code (also those after the window), the client's thread count "
      "and the server's batch sizes over the run (from its GetServerStats). "
      "Stream mode carries every session over the client's shared stream "
      "(--streams) with no thread per session.");
  bench_cmd->add_option("--model", bench.model, "Model name")->required();
  bench_cmd
      ->add_option("--version", bench.version, "Model version (0: highest)")
      ->check(CLI::NonNegativeNumber);
  bench_cmd->add_option("--sessions", bench.sessions, "Concurrent sessions")
      ->capture_default_str()
      ->check(CLI::Range(1, 100000));
  bench_cmd->add_option("--chunk", bench.chunk, "Steps per request")
      ->capture_default_str()
      ->check(CLI::Range(1, 1 << 20));
  bench_cmd
      ->add_option("--rate", bench.rate,
                   "Requests/s per session (0: as fast as answered)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1e6));
  bench_cmd->add_option("--duration", bench.duration_s, "Seconds to measure")
      ->capture_default_str()
      ->check(CLI::Range(0.01, 86400.0));
  bench_cmd->add_option("--mode", bench.mode, "stream or unary")
      ->capture_default_str()
      ->check(CLI::IsMember({"stream", "unary"}));
  bench_cmd->add_flag("--create-on-stream", bench.create_on_stream,
                      "Stream mode: create each session with its first stream "
                      "message (create_model) instead of CreateSession");
  bench_cmd
      ->add_option("--drain", bench.drain_s,
                   "Seconds chunks unanswered at the end of the window get "
                   "before they are cancelled")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 3600.0));
  bench_cmd->add_flag("--json", bench.json, "Print one JSON object");

  // session ...
  CLI::App* session_cmd = app.add_subcommand(
      "session",
      "Manage server-side sessions (create, info, reset, close, "
      "list, export, import).");
  session_cmd->require_subcommand(1);

  cli::SessionCreateOptions create;
  CLI::App* create_cmd = session_cmd->add_subcommand(
      "create", "Create a session and print its id.");
  create_cmd->add_option("--model", create.model, "Model name")->required();
  create_cmd
      ->add_option("--version", create.version,
                   "Model version (default: the highest)")
      ->check(CLI::NonNegativeNumber);
  create_cmd->add_option("--id", create.session_id,
                         "Session id ([A-Za-z0-9._:-], up to 128 characters; "
                         "default: server-made)");
  create_cmd->add_option(
      "--state-file", create.state_file,
      "Initial state: a JSON file with a \"state\" array, as written by "
      "`lstm-model run --state-out` or `lstm-client session export` "
      "(default: the zero state)");
  create_cmd->add_flag("--json", create.json,
                       "Print the session's info as JSON instead of its id");

  std::string session_id;
  bool info_json = false;
  CLI::App* info_cmd = session_cmd->add_subcommand(
      "info", "Print a session's model, version, next step and timestamps.");
  info_cmd->add_option("ID", session_id, "Session id")->required();
  info_cmd->add_flag("--json", info_json, "Print JSON");

  CLI::App* reset_cmd = session_cmd->add_subcommand(
      "reset", "Reset a session to the zero state and step 0; print its info.");
  reset_cmd->add_option("ID", session_id, "Session id")->required();
  reset_cmd->add_flag("--json", info_json, "Print JSON");

  CLI::App* close_cmd =
      session_cmd->add_subcommand("close", "Close (delete) a session.");
  close_cmd->add_option("ID", session_id, "Session id")->required();

  cli::SessionListOptions list;
  CLI::App* list_cmd = session_cmd->add_subcommand(
      "list",
      "List sessions, ordered by id: one page (the next page's token is "
      "printed on stderr), or all of them with --all.");
  list_cmd
      ->add_option("--page-size", list.page_size,
                   "Sessions per page (default: the server's, 100; at most "
                   "1000)")
      ->check(CLI::Range(0, 1000000));
  list_cmd->add_option("--page-token", list.page_token,
                       "Start at this page (from a previous listing)");
  list_cmd->add_flag("--all", list.all, "Fetch every page");
  list_cmd->add_flag("--json", list.json, "Print JSON");

  std::string export_file;
  CLI::App* export_cmd = session_cmd->add_subcommand(
      "export",
      "Write a session's snapshot (model, version, next step, state and "
      "last chunk) as JSON, to import on this or another server.");
  export_cmd->add_option("ID", session_id, "Session id")->required();
  export_cmd->add_option("--out", export_file,
                         "Write to FILE instead of stdout");

  // forecast
  cli::ForecastOptions forecast;
  CLI::App* forecast_cmd = app.add_subcommand(
      "forecast",
      "Run the session's model ahead of its current state on its own "
      "predictions (each step's output fed back as the next input), on a "
      "copy of the state: the session does not move. Prints one CSV row "
      "per step ahead: row 1 is the output of the session's last step, "
      "the value for its next input. With --samples K, each row also "
      "holds the K noisy sample paths' values, after the forecast's.");
  forecast_cmd->add_option("--session", forecast.session_id, "Session id")
      ->required();
  forecast_cmd
      ->add_option("--horizon", forecast.horizon,
                   "Steps ahead (rows) to forecast")
      ->required()
      ->check(CLI::Range(1, 1 << 30));
  forecast_cmd
      ->add_option("--samples", forecast.samples,
                   "Noisy sample paths besides the forecast (the model must "
                   "declare forecast.output_scale, or have a softmax head)")
      ->capture_default_str()
      ->check(CLI::Range(0, 1 << 30));
  forecast_cmd
      ->add_option("--seed", forecast.seed,
                   "Seed of the sample paths (the same seed, the same paths)")
      ->capture_default_str();
  forecast_cmd->add_flag("--json", forecast.json, "Print one JSON object");

  std::string import_file;
  CLI::App* import_cmd = session_cmd->add_subcommand(
      "import",
      "Create a session from a JSON snapshot (from `session export`); print "
      "its id. ALREADY_EXISTS if the id is taken.");
  import_cmd->add_option("--in", import_file, "Read FILE instead of stdin");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == static_cast<int>(CLI::ExitCodes::Success)) {
      return app.exit(e);  // --help
    }
    std::cerr << "lstm-client: usage: " << e.what()
              << " (see lstm-client --help)" << std::endl;
    return kUsageError;
  }

  lstmserve::client::ClientOptions options;
  options.target = cli::ResolveTarget(target_flag);
  // One session: its own stream, with x-session-id, costs nothing.
  options.session_affinity = session_affinity || *stream_cmd;
  options.tls = tls;
  options.tls_ca = tls_ca;
  options.tls_cert = tls_cert;
  options.tls_key = tls_key;
  options.tls_server_name = tls_server_name;
  absl::StatusOr<std::string> token = cli::ResolveToken(token_file);
  if (!token.ok()) return Fail(token.status());
  options.token = *std::move(token);
  options.streams = streams;
  options.max_inflight_chunks = inflight;
  options.deadline = std::chrono::milliseconds(
      std::max<int64_t>(1, static_cast<int64_t>(timeout_s * 1000)));
  auto client = lstmserve::client::Client::Connect(options);
  if (!client.ok()) return Fail(client.status());
  lstmserve::client::Client& c = **client;

  absl::Status status;
  int exit_code = 0;
  if (*models_cmd) {
    status = cli::ModelsCommand(c, models, std::cout);
  } else if (*health_cmd) {
    absl::StatusOr<bool> serving = cli::HealthCommand(c, health, std::cout);
    if (!serving.ok()) {
      status = serving.status();
    } else if (!*serving) {
      exit_code = kFailure;  // NOT_SERVING was printed; not an error line
    }
  } else if (*predict_cmd) {
    status = cli::PredictCommand(c, predict, std::cin, std::cout);
  } else if (*stream_cmd) {
    status = cli::StreamCommand(c, stream, std::cin, std::cout, std::cerr);
  } else if (*bench_cmd) {
    status = cli::BenchCommand(c, bench, std::cout, std::cerr);
  } else if (*create_cmd) {
    status = cli::SessionCreateCommand(c, create, std::cout);
  } else if (*info_cmd) {
    status = cli::SessionInfoCommand(c, session_id, info_json, std::cout);
  } else if (*reset_cmd) {
    status = cli::SessionResetCommand(c, session_id, info_json, std::cout);
  } else if (*close_cmd) {
    status = cli::SessionCloseCommand(c, session_id);
  } else if (*list_cmd) {
    status = cli::SessionListCommand(c, list, std::cout, std::cerr);
  } else if (*export_cmd) {
    status = cli::SessionExportCommand(c, session_id, export_file, std::cout);
  } else if (*forecast_cmd) {
    status = cli::ForecastCommand(c, forecast, std::cout);
  } else if (*import_cmd) {
    status = cli::SessionImportCommand(c, import_file, std::cin, std::cout);
  }
  std::cout.flush();
  if (!status.ok()) return Fail(status);
  return exit_code;
}
