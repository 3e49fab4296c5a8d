#include "model/cli/commands.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <memory>
#include <random>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "model/convert.h"
#include "model/csv.h"
#include "model/explain.h"
#include "model/kernel_path.h"
#include "model/model.h"
#include "model/onnx/onnx_import.h"
#include "model/repository.h"
#include "model/state_file.h"
#include "model/status_macros.h"
#include "nlohmann/json.hpp"

namespace lstmserve::model::cli {
namespace {

struct LoadedModel {
  std::string version_dir;
  std::unique_ptr<Model> model;
};

absl::StatusOr<LoadedModel> LoadFromPath(
    const std::string& path, std::optional<WeightFormat> weights = {}) {
  ASSIGN_OR_RETURN(std::string dir, ResolveVersionDir(path));
  Model::Options options;
  options.weights = weights;
  ASSIGN_OR_RETURN(std::unique_ptr<Model> model, Model::Load(dir, options));
  return LoadedModel{dir, std::move(model)};
}

// The cell's ONNX-derived options in one line ("pytorch" when there are
// none): nonlinearity, reset-first GRU, peepholes, input_forget, clip.
std::string CellVariantText(const ModelConfig& c) {
  std::vector<std::string> parts;
  if (c.cell == CellType::kRnn) {
    std::string nl(NonlinearityName(c.nonlinearity));
    const int params = NonlinearityParams(c.nonlinearity);
    if (params == 1) absl::StrAppend(&nl, "(alpha=", c.nonlinearity_alpha, ")");
    if (params == 2) {
      absl::StrAppend(&nl, "(alpha=", c.nonlinearity_alpha,
                      ", beta=", c.nonlinearity_beta, ")");
    }
    parts.push_back(nl);
  }
  if (c.cell == CellType::kGru && !c.gru_linear_before_reset) {
    parts.push_back("linear_before_reset=false");
  }
  if (c.cell == CellType::kLstm && c.lstm_peepholes) {
    parts.push_back("peepholes");
  }
  if (c.cell == CellType::kLstm && c.lstm_input_forget) {
    parts.push_back("input_forget");
  }
  if (c.clip > 0) parts.push_back(absl::StrCat("clip=", c.clip));
  return parts.empty() ? "pytorch" : absl::StrJoin(parts, ", ");
}

std::string Names(const std::vector<std::string>& names) {
  return names.empty() ? "-" : absl::StrJoin(names, ", ");
}

// The kernel paths this CPU can run, and the products each weight format
// would get here (respecting $LSTMSERVE_ISA).
std::string CpuPaths() {
  std::vector<std::string> paths;
  for (KernelPath p : AllKernelPaths()) {
    if (KernelPathAvailable(p)) paths.push_back(std::string(KernelPathName(p)));
  }
  return absl::StrJoin(paths, ", ");
}

std::string PathsPerFormat() {
  std::vector<std::string> parts;
  const auto forced = KernelPathFromEnvironment();
  for (WeightFormat f :
       {WeightFormat::kF32, WeightFormat::kBF16, WeightFormat::kInt8}) {
    auto choice = ChooseKernels(f, forced.ok() ? *forced : std::nullopt);
    parts.push_back(absl::StrCat(
        std::string(WeightFormatName(f)), " ",
        choice.ok() ? std::string(KernelPathName(choice->products)) : "-"));
  }
  return absl::StrJoin(parts, ", ");
}

}  // namespace

absl::Status Info(const InfoOptions& options, std::ostream& out) {
  ASSIGN_OR_RETURN(LoadedModel loaded,
                   LoadFromPath(options.model_path, options.weights));
  const Model& m = *loaded.model;
  const ModelConfig& c = m.config();
  const int64_t state_bytes = int64_t{m.state_size()} * 4;
  if (options.json) {
    nlohmann::json j;
    j["path"] = loaded.version_dir;
    j["cell"] = std::string(CellTypeName(c.cell));
    j["input_size"] = c.input_size;
    j["hidden_size"] = c.hidden_size;
    j["num_layers"] = c.num_layers;
    j["proj_size"] = c.proj_size;
    j["bias"] = c.bias;
    j["variant"] = CellVariantText(c);
    if (c.cell == CellType::kRnn) {
      j["nonlinearity"] = std::string(NonlinearityName(c.nonlinearity));
      j["nonlinearity_alpha"] = ShortestDouble(c.nonlinearity_alpha);
      j["nonlinearity_beta"] = ShortestDouble(c.nonlinearity_beta);
    }
    if (c.cell == CellType::kGru) {
      j["gru_linear_before_reset"] = c.gru_linear_before_reset;
    }
    if (c.cell == CellType::kLstm) {
      j["lstm_peepholes"] = c.lstm_peepholes;
      j["lstm_input_forget"] = c.lstm_input_forget;
    }
    j["clip"] = ShortestDouble(c.clip);
    if (c.head) {
      j["head"] = {
          {"output_size", c.head->output_size},
          {"activation", std::string(ActivationName(c.head->activation))}};
    }
    j["normalization"] = c.normalization.has_value();
    j["output_size"] = m.output_size();
    j["parameters"] = m.parameter_count();
    j["state_floats"] = m.state_size();
    j["state_bytes"] = state_bytes;
    j["flops_per_step"] = m.flops_per_step();
    j["weights"] = std::string(WeightFormatName(m.weight_format()));
    j["weight_bytes"] = m.weight_bytes();
    j["kernels"] = KernelDescription(m.kernels());
    j["explain_floats"] = m.explain_size();
    j["cpu_kernel_paths"] = CpuPaths();
    j["kernels_per_format"] = PathsPerFormat();
    j["description"] = c.description;
    j["input_names"] = c.input_names;
    j["output_names"] = c.output_names;
    out << j.dump(2) << '\n';
    return absl::OkStatus();
  }
  out << "path:           " << loaded.version_dir << '\n'
      << "cell:           " << CellTypeName(c.cell) << '\n'
      << "input_size:     " << c.input_size << '\n'
      << "hidden_size:    " << c.hidden_size << '\n'
      << "num_layers:     " << c.num_layers << '\n'
      << "proj_size:      " << c.proj_size << '\n'
      << "bias:           " << (c.bias ? "true" : "false") << '\n'
      << "variant:        " << CellVariantText(c) << '\n'
      << "head:           "
      << (c.head ? absl::StrCat(c.head->output_size, " outputs, ",
                                std::string(ActivationName(c.head->activation)))
                 : std::string("none (outputs are the last layer's h)"))
      << '\n'
      << "normalization:  " << (c.normalization ? "yes" : "no") << '\n'
      << "output_size:    " << m.output_size() << '\n'
      << "parameters:     " << m.parameter_count() << '\n'
      << "state:          " << m.state_size() << " floats = " << state_bytes
      << " bytes per session\n"
      << "flops_per_step: " << m.flops_per_step() << '\n'
      << "weights:        " << WeightFormatName(m.weight_format()) << ", "
      << m.weight_bytes() << " bytes\n"
      << "kernels:        " << KernelDescription(m.kernels()) << '\n'
      << "explain:        " << m.explain_size() << " floats per step\n"
      << "cpu paths:      " << CpuPaths()
      << " (per format: " << PathsPerFormat() << ")\n"
      << "inputs:         " << Names(c.input_names) << '\n'
      << "outputs:        " << Names(c.output_names) << '\n';
  if (!c.description.empty()) {
    out << "description:    " << c.description << '\n';
  }
  return absl::OkStatus();
}

namespace {

// The explain CSV's header: step, then layer.field.unit for every float of
// a record.
void WriteExplainHeader(const Model& m, std::ostream& out) {
  out << "step";
  for (const ExplainField& f : m.explain_layout()) {
    for (int u = 0; u < f.size; ++u) {
      out << ",l" << f.layer << '.' << f.name << '.' << u;
    }
  }
  out << '\n';
}

void WriteGateSummary(const GateSummary& summary, std::ostream& log) {
  log << absl::StrFormat("gate summary over %d steps:\n", summary.steps());
  for (const GateSummary::Layer& l : summary.Layers()) {
    log << "  layer " << l.layer << ":";
    if (l.mean_forget) {
      log << absl::StrFormat(" mean forget %.4f, memory horizon %.1f steps;",
                             *l.mean_forget, *l.memory_horizon);
    }
    for (const GateSummary::Gate& g : l.gates) {
      log << absl::StrFormat(" %s mean %.3f saturated %.1f%%", g.name, g.mean,
                             100 * g.saturation);
    }
    if (l.gates.empty()) log << " no gates (RNN)";
    log << '\n';
  }
}

}  // namespace

absl::Status Run(const RunOptions& options, std::istream& in, std::ostream& out,
                 std::ostream& log) {
  if (options.max_chunk < 1) {
    return absl::InvalidArgumentError("--chunk must be at least 1");
  }
  ASSIGN_OR_RETURN(LoadedModel loaded,
                   LoadFromPath(options.model_path, options.weights));
  const Model& m = *loaded.model;
  SavedState saved;
  saved.state.assign(m.state_size(), 0.0f);
  if (!options.state_in.empty()) {
    ASSIGN_OR_RETURN(
        saved, ReadStateFile(options.state_in, m.config(), m.state_size()));
  }
  const bool explain = !options.explain_path.empty() || options.gate_summary;
  std::ofstream explain_out;
  if (!options.explain_path.empty()) {
    explain_out.open(options.explain_path);
    if (!explain_out) {
      return absl::PermissionDeniedError(
          absl::StrCat("cannot write ", options.explain_path));
    }
    WriteExplainHeader(m, explain_out);
  }
  GateSummary summary(m);
  CsvReader reader(in, "stdin", m.input_size());
  Workspace workspace;
  std::vector<float> inputs;
  std::vector<float> outputs;
  std::vector<float> records;
  bool more = true;
  while (more) {
    inputs.clear();
    int rows = 0;
    while (rows < options.max_chunk) {
      ASSIGN_OR_RETURN(more, reader.Next(inputs));
      if (!more) break;
      ++rows;
    }
    if (rows == 0) break;
    outputs.resize(static_cast<size_t>(rows) * m.output_size());
    if (explain) records.resize(static_cast<size_t>(rows) * m.explain_size());
    RETURN_IF_ERROR(m.RunChunk(inputs.data(), rows, saved.state.data(),
                               outputs.data(), workspace,
                               explain ? records.data() : nullptr));
    for (int r = 0; r < rows; ++r) {
      WriteCsvRow(out,
                  std::span<const float>(
                      outputs.data() + static_cast<size_t>(r) * m.output_size(),
                      m.output_size()));
      if (explain_out.is_open()) {
        explain_out << saved.steps + r << ',';
        WriteCsvRow(explain_out, std::span<const float>(
                                     records.data() + static_cast<size_t>(r) *
                                                          m.explain_size(),
                                     m.explain_size()));
      }
    }
    if (explain) summary.Add(records.data(), rows);
    saved.steps += rows;
    out.flush();
  }
  if (!out) return absl::DataLossError("cannot write to stdout");
  if (explain_out.is_open()) {
    explain_out.close();
    if (!explain_out) {
      return absl::DataLossError(
          absl::StrCat("cannot write ", options.explain_path));
    }
  }
  if (options.gate_summary) WriteGateSummary(summary, log);
  if (!options.state_out.empty()) {
    RETURN_IF_ERROR(WriteStateFile(options.state_out, m.config(), saved));
  }
  return absl::OkStatus();
}

namespace {

// Every output of the CSV steps in `rows`, run as one sequence from the
// zero state in chunks of at most max_chunk steps.
absl::StatusOr<std::vector<float>> RunAll(const Model& m,
                                          const std::vector<float>& inputs,
                                          int steps, int max_chunk) {
  std::vector<float> state(m.state_size(), 0.0f);
  std::vector<float> outputs(static_cast<size_t>(steps) * m.output_size());
  Workspace ws;
  for (int t = 0; t < steps; t += max_chunk) {
    const int n = std::min(max_chunk, steps - t);
    RETURN_IF_ERROR(m.RunChunk(
        inputs.data() + static_cast<size_t>(t) * m.input_size(), n,
        state.data(), outputs.data() + static_cast<size_t>(t) * m.output_size(),
        ws));
  }
  return outputs;
}

}  // namespace

absl::Status Eval(const EvalOptions& options, std::istream& in,
                  std::ostream& out) {
  if (options.max_chunk < 1) {
    return absl::InvalidArgumentError("--chunk must be at least 1");
  }
  ASSIGN_OR_RETURN(LoadedModel test,
                   LoadFromPath(options.model_path, options.weights));
  ASSIGN_OR_RETURN(LoadedModel reference,
                   LoadFromPath(options.model_path, WeightFormat::kF32));
  const Model& m = *test.model;
  CsvReader reader(in, "stdin", m.input_size());
  std::vector<float> inputs;
  int steps = 0;
  while (true) {
    ASSIGN_OR_RETURN(bool more, reader.Next(inputs));
    if (!more) break;
    ++steps;
  }
  if (steps == 0) {
    return absl::InvalidArgumentError(
        "stdin holds no steps; expected CSV rows");
  }
  ASSIGN_OR_RETURN(std::vector<float> got,
                   RunAll(m, inputs, steps, options.max_chunk));
  ASSIGN_OR_RETURN(std::vector<float> want,
                   RunAll(*reference.model, inputs, steps, options.max_chunk));
  double max_err = 0, sum_err = 0, max_ref = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double e = std::abs(static_cast<double>(got[i]) - want[i]);
    max_err = std::max(max_err, e);
    sum_err += e;
    max_ref = std::max(max_ref, std::abs(static_cast<double>(want[i])));
  }
  const double mean_err = sum_err / static_cast<double>(got.size());
  const std::string weights(WeightFormatName(m.weight_format()));
  if (options.json) {
    nlohmann::json j;
    j["model"] = test.version_dir;
    j["weights"] = weights;
    j["reference"] = "f32";
    j["kernels"] = KernelDescription(m.kernels());
    j["steps"] = steps;
    j["outputs"] = m.output_size();
    j["max_abs_error"] = max_err;
    j["mean_abs_error"] = mean_err;
    j["max_abs_reference"] = max_ref;
    out << j.dump() << '\n';
  } else {
    out << absl::StrFormat(
        "%s vs f32 over %d steps x %d outputs: max abs error %.3g, mean abs "
        "error %.3g (largest |output| %.3g; kernels %s)\n",
        weights, steps, m.output_size(), max_err, mean_err, max_ref,
        KernelDescription(m.kernels()));
  }
  return absl::OkStatus();
}

absl::Status Convert(const ConvertOptions& options, std::ostream& out) {
  ASSIGN_OR_RETURN(std::string dir, ResolveVersionDir(options.model_path));
  RETURN_IF_ERROR(ConvertVersionDir(dir, options.weights, options.out_dir));
  out << "wrote " << options.out_dir << "/config.json and " << options.out_dir
      << "/model.safetensors\n";
  InfoOptions info;
  info.model_path = options.out_dir;
  return Info(info, out);
}

namespace {

struct WorkerResult {
  int64_t calls = 0;
  std::vector<double> call_us;  // a sample of per-call latencies
};

void BenchWorker(const Model& m, const BenchOptions& o, uint32_t seed,
                 std::chrono::steady_clock::time_point deadline,
                 WorkerResult& result) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  const size_t in_floats = static_cast<size_t>(o.chunk) * m.input_size();
  std::vector<float> inputs(in_floats * o.batch);
  for (float& x : inputs) x = normal(rng);
  std::vector<float> states(static_cast<size_t>(m.state_size()) * o.batch,
                            0.0f);
  std::vector<float> outputs(static_cast<size_t>(o.chunk) * m.output_size() *
                             o.batch);
  std::vector<float> explain(o.explain ? static_cast<size_t>(o.chunk) *
                                             m.explain_size() * o.batch
                                       : 0);
  std::vector<SequenceRef> refs;
  for (int b = 0; b < o.batch; ++b) {
    refs.push_back(SequenceRef{
        inputs.data() + in_floats * b, o.chunk,
        states.data() + static_cast<size_t>(m.state_size()) * b,
        outputs.data() + static_cast<size_t>(o.chunk) * m.output_size() * b,
        o.explain ? explain.data() +
                        static_cast<size_t>(o.chunk) * m.explain_size() * b
                  : nullptr});
  }
  Workspace workspace;
  (void)m.RunBatch(refs, workspace);  // warm-up: sizes the workspace
  result.call_us.reserve(1 << 16);
  while (true) {
    const auto start = std::chrono::steady_clock::now();
    if (start >= deadline) break;
    (void)m.RunBatch(refs, workspace);
    const auto end = std::chrono::steady_clock::now();
    ++result.calls;
    if (result.call_us.size() < result.call_us.capacity()) {
      result.call_us.push_back(
          std::chrono::duration<double, std::micro>(end - start).count());
    }
  }
}

double Percentile(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  const size_t k = std::min(
      v.size() - 1, static_cast<size_t>(p / 100.0 * (v.size() - 1) + 0.5));
  std::nth_element(v.begin(), v.begin() + k, v.end());
  return v[k];
}

}  // namespace

absl::Status Bench(const BenchOptions& o, std::ostream& out,
                   std::ostream& progress) {
  if (o.batch < 1 || o.chunk < 1 || o.threads < 1 || !(o.seconds > 0)) {
    return absl::InvalidArgumentError(
        "--batch, --chunk and --threads must be at least 1 and --seconds "
        "positive");
  }
  ASSIGN_OR_RETURN(LoadedModel loaded, LoadFromPath(o.model_path, o.weights));
  const Model& m = *loaded.model;
  const auto start = std::chrono::steady_clock::now();
  const auto deadline =
      start + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                  std::chrono::duration<double>(o.seconds));
  std::vector<WorkerResult> results(o.threads);
  std::vector<std::thread> workers;
  for (int t = 0; t < o.threads; ++t) {
    workers.emplace_back(BenchWorker, std::cref(m), std::cref(o), 1234u + t,
                         deadline, std::ref(results[t]));
  }
  if (o.seconds > 3) {
    // Progress for long runs, on stderr so --json output stays clean.
    while (std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::seconds(1));
      const double elapsed = std::chrono::duration<double>(
                                 std::chrono::steady_clock::now() - start)
                                 .count();
      progress << absl::StrFormat("\rbench: %.0f/%.0f s",
                                  std::min(elapsed, o.seconds), o.seconds)
               << std::flush;
    }
    progress << '\n';
  }
  for (std::thread& w : workers) w.join();
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  int64_t calls = 0;
  std::vector<double> call_us;
  for (WorkerResult& r : results) {
    calls += r.calls;
    call_us.insert(call_us.end(), r.call_us.begin(), r.call_us.end());
  }
  const double steps = static_cast<double>(calls) * o.batch * o.chunk;
  const double steps_per_s = steps / elapsed;
  const double p50 = Percentile(call_us, 50);
  const double p99 = Percentile(call_us, 99);
  double mean = 0;
  for (double v : call_us) mean += v;
  mean = call_us.empty() ? 0 : mean / call_us.size();
  const double gflops = steps_per_s * m.flops_per_step() / 1e9;
  if (o.json) {
    nlohmann::json j;
    j["model"] = loaded.version_dir;
    j["batch"] = o.batch;
    j["chunk"] = o.chunk;
    j["threads"] = o.threads;
    j["seconds"] = elapsed;
    j["calls"] = calls;
    j["steps_per_s"] = steps_per_s;
    j["us_per_call"] = mean;
    j["us_per_call_p50"] = p50;
    j["us_per_call_p99"] = p99;
    j["gflops"] = gflops;
    j["weights"] = std::string(WeightFormatName(m.weight_format()));
    j["kernels"] = KernelDescription(m.kernels());
    j["explain"] = o.explain;
    out << j.dump() << '\n';
  } else {
    out << absl::StrFormat(
        "model %s, batch %d, chunk %d, threads %d, %.1f s\n"
        "weights:     %s, kernels %s%s\n"
        "steps/s:     %.0f\n"
        "us per call: mean %.1f, p50 %.1f, p99 %.1f\n"
        "GFLOP/s:     %.2f\n",
        loaded.version_dir, o.batch, o.chunk, o.threads, elapsed,
        std::string(WeightFormatName(m.weight_format())),
        KernelDescription(m.kernels()), o.explain ? ", explain on" : "",
        steps_per_s, mean, p50, p99, gflops);
  }
  return absl::OkStatus();
}

absl::Status ImportOnnx(const ImportOnnxOptions& options, std::ostream& out) {
  ASSIGN_OR_RETURN(
      onnx_import::ImportedModel imported,
      onnx_import::ImportOnnxFile(options.onnx_path, options.out_dir));
  out << "wrote " << options.out_dir << "/config.json and " << options.out_dir
      << "/model.safetensors\n";
  for (const std::string& note : imported.notes)
    out << "note: " << note << '\n';
  InfoOptions info;
  info.model_path = options.out_dir;
  return Info(info, out);
}

}  // namespace lstmserve::model::cli
