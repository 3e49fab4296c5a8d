#include "model/onnx/const_tensor.h"

#include <cstring>
#include <numeric>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "model/tensor_file.h"
#include "onnx/onnx.pb.h"

namespace lstmserve::model::onnx_import {
namespace {

using onnx::TensorProto;

int64_t Product(absl::Span<const int64_t> dims) {
  return std::accumulate(dims.begin(), dims.end(), int64_t{1},
                         std::multiplies<int64_t>());
}

// Row-major strides of `dims`.
std::vector<int64_t> Strides(const std::vector<int64_t>& dims) {
  std::vector<int64_t> s(dims.size(), 1);
  for (int i = static_cast<int>(dims.size()) - 2; i >= 0; --i) {
    s[i] = s[i + 1] * dims[i + 1];
  }
  return s;
}

// A tensor of `dims` whose element k is t's element source[k].
ConstTensor Take(const ConstTensor& t, std::vector<int64_t> dims,
                 const std::vector<int64_t>& source) {
  ConstTensor out;
  out.dims = std::move(dims);
  out.is_int = t.is_int;
  if (t.is_int) {
    out.ints.reserve(source.size());
    for (int64_t i : source) out.ints.push_back(t.ints[i]);
  } else {
    out.floats.reserve(source.size());
    for (int64_t i : source) out.floats.push_back(t.floats[i]);
  }
  return out;
}

// Calls f(flat index, multi-index) for every element of `dims`, row-major.
template <typename F>
void ForEachIndex(const std::vector<int64_t>& dims, F f) {
  const int64_t n = Product(dims);
  std::vector<int64_t> idx(dims.size(), 0);
  for (int64_t k = 0; k < n; ++k) {
    f(k, idx);
    for (int d = static_cast<int>(dims.size()) - 1; d >= 0; --d) {
      if (++idx[d] < dims[d]) break;
      idx[d] = 0;
    }
  }
}

template <typename T>
void AppendRaw(const std::string& raw, std::vector<T>& out) {
  const size_t n = raw.size() / sizeof(T);
  const size_t start = out.size();
  out.resize(start + n);
  std::memcpy(out.data() + start, raw.data(), n * sizeof(T));
}

size_t ElementBytes(int type) {
  switch (type) {
    case TensorProto::FLOAT:
    case TensorProto::INT32:
    case TensorProto::UINT32:
      return 4;
    case TensorProto::DOUBLE:
    case TensorProto::INT64:
    case TensorProto::UINT64:
      return 8;
    case TensorProto::FLOAT16:
    case TensorProto::BFLOAT16:
    case TensorProto::INT16:
    case TensorProto::UINT16:
      return 2;
    case TensorProto::INT8:
    case TensorProto::UINT8:
    case TensorProto::BOOL:
      return 1;
    default:
      return 0;
  }
}

}  // namespace

int64_t ConstTensor::size() const { return Product(dims); }

bool DimsWithinLimit(const std::vector<int64_t>& dims) {
  int64_t n = 1;
  for (int64_t d : dims) {
    if (d < 0) return false;
    if (d == 0) return true;
    if (n > kMaxConstElements / d) return false;
    n *= d;
  }
  return true;
}

double ConstTensor::At(int64_t i) const {
  return is_int ? static_cast<double>(ints[i]) : floats[i];
}

int64_t ConstTensor::IntAt(int64_t i) const {
  return is_int ? ints[i] : static_cast<int64_t>(floats[i]);
}

bool ConstTensor::AllZero() const {
  for (int64_t i = 0; i < size(); ++i) {
    if (At(i) != 0) return false;
  }
  return true;
}

std::string ConstTensor::Describe() const {
  return absl::StrCat("[", absl::StrJoin(dims, ", "), "] ",
                      is_int ? "integer" : "float");
}

absl::StatusOr<ConstTensor> FromProto(const TensorProto& p,
                                      const std::string& what) {
  if (p.data_location() == TensorProto::EXTERNAL) {
    return absl::InvalidArgumentError(absl::StrCat(
        what,
        " keeps its data in an external file; expected the weights "
        "inside the .onnx file (export without external data)"));
  }
  ConstTensor t;
  for (int64_t d : p.dims()) {
    if (d < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, " has a negative dimension ", d));
    }
    t.dims.push_back(d);
  }
  if (!DimsWithinLimit(t.dims)) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " has dims [", absl::StrJoin(t.dims, ", "),
                     "]: more than ", kMaxConstElements, " elements"));
  }
  const int64_t n = t.size();
  const int type = p.data_type();
  const size_t bytes = ElementBytes(type);
  if (bytes == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, " has ONNX data type ", type,
        "; expected a float or integer type (FLOAT, DOUBLE, FLOAT16, "
        "BFLOAT16, INT*, UINT*, BOOL)"));
  }
  const bool raw = p.has_raw_data();
  if (raw && p.raw_data().size() != static_cast<size_t>(n) * bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " has ", p.raw_data().size(), " bytes of raw_data; ",
                     "expected ", n * static_cast<int64_t>(bytes),
                     " for dims [", absl::StrJoin(t.dims, ", "), "]"));
  }
  const std::string& r = p.raw_data();
  switch (type) {
    case TensorProto::FLOAT:
      if (raw) {
        AppendRaw(r, t.floats);
      } else {
        t.floats.assign(p.float_data().begin(), p.float_data().end());
      }
      break;
    case TensorProto::DOUBLE: {
      std::vector<double> d;
      if (raw) {
        AppendRaw(r, d);
      } else {
        d.assign(p.double_data().begin(), p.double_data().end());
      }
      t.floats.assign(d.begin(), d.end());
      break;
    }
    case TensorProto::FLOAT16:
    case TensorProto::BFLOAT16: {
      std::vector<uint16_t> bits;
      if (raw) {
        AppendRaw(r, bits);
      } else {  // stored one per int32_data element
        for (int32_t v : p.int32_data())
          bits.push_back(static_cast<uint16_t>(v));
      }
      for (uint16_t b : bits) {
        t.floats.push_back(type == TensorProto::FLOAT16 ? HalfToFloat(b)
                                                        : BFloat16ToFloat(b));
      }
      break;
    }
    case TensorProto::INT64:
      t.is_int = true;
      if (raw) {
        AppendRaw(r, t.ints);
      } else {
        t.ints.assign(p.int64_data().begin(), p.int64_data().end());
      }
      break;
    case TensorProto::UINT64: {
      t.is_int = true;
      std::vector<uint64_t> u;
      if (raw) {
        AppendRaw(r, u);
      } else {
        u.assign(p.uint64_data().begin(), p.uint64_data().end());
      }
      for (uint64_t v : u) t.ints.push_back(static_cast<int64_t>(v));
      break;
    }
    default: {  // the narrower integer types and bool
      t.is_int = true;
      if (!raw) {
        t.ints.assign(p.int32_data().begin(), p.int32_data().end());
        break;
      }
      for (int64_t i = 0; i < n; ++i) {
        const char* e = r.data() + i * bytes;
        int64_t v = 0;
        switch (type) {
          case TensorProto::INT32: {
            int32_t x;
            std::memcpy(&x, e, 4);
            v = x;
            break;
          }
          case TensorProto::UINT32: {
            uint32_t x;
            std::memcpy(&x, e, 4);
            v = x;
            break;
          }
          case TensorProto::INT16: {
            int16_t x;
            std::memcpy(&x, e, 2);
            v = x;
            break;
          }
          case TensorProto::UINT16: {
            uint16_t x;
            std::memcpy(&x, e, 2);
            v = x;
            break;
          }
          case TensorProto::INT8:
            v = static_cast<int8_t>(*e);
            break;
          default:  // UINT8, BOOL
            v = static_cast<uint8_t>(*e);
        }
        t.ints.push_back(v);
      }
    }
  }
  const int64_t got = t.is_int ? static_cast<int64_t>(t.ints.size())
                               : static_cast<int64_t>(t.floats.size());
  if (got != n) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " holds ", got, " values; expected ", n,
                     " for dims [", absl::StrJoin(t.dims, ", "), "]"));
  }
  return t;
}

absl::StatusOr<int> NormalizeAxis(int64_t axis, int rank,
                                  const std::string& what) {
  if (axis < -rank || axis >= rank) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, ": axis ", axis, " is out of range for rank ", rank));
  }
  return static_cast<int>(axis < 0 ? axis + rank : axis);
}

ConstTensor Reshaped(const ConstTensor& t, std::vector<int64_t> dims) {
  ConstTensor out = t;
  out.dims = std::move(dims);
  return out;
}

absl::StatusOr<ConstTensor> Reshape(const ConstTensor& t,
                                    const ConstTensor& shape, bool allowzero,
                                    const std::string& what) {
  std::vector<int64_t> dims;
  int infer = -1;
  int64_t known = 1;
  for (int64_t i = 0; i < shape.size(); ++i) {
    int64_t d = shape.IntAt(i);
    if (d == 0 && !allowzero) {
      if (i >= t.rank()) {
        return absl::InvalidArgumentError(absl::StrCat(
            what, ": shape entry ", i, " is 0 (copy) past rank ", t.rank()));
      }
      d = t.dims[i];
    }
    if (d == -1) {
      if (infer >= 0) {
        return absl::InvalidArgumentError(
            absl::StrCat(what, ": more than one -1 in the shape"));
      }
      infer = static_cast<int>(i);
    } else if (d < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": shape entry ", d, " is negative"));
    } else {
      known *= d;
    }
    dims.push_back(d);
  }
  if (infer >= 0) dims[infer] = known ? t.size() / known : 0;
  if (Product(dims) != t.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": cannot reshape ", t.Describe(), " to [",
                     absl::StrJoin(dims, ", "), "]"));
  }
  return Reshaped(t, dims);
}

absl::StatusOr<ConstTensor> Transpose(const ConstTensor& t,
                                      std::vector<int64_t> perm,
                                      const std::string& what) {
  const int r = t.rank();
  if (perm.empty()) {
    for (int i = r - 1; i >= 0; --i) perm.push_back(i);
  }
  if (static_cast<int>(perm.size()) != r) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, ": perm has ", perm.size(), " entries for rank ", r));
  }
  std::vector<int64_t> dims(r);
  std::vector<bool> seen(r, false);
  for (int i = 0; i < r; ++i) {
    if (perm[i] < 0 || perm[i] >= r || seen[perm[i]]) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": perm [", absl::StrJoin(perm, ", "),
                       "] is not a permutation of 0..", r - 1));
    }
    seen[perm[i]] = true;
    dims[i] = t.dims[perm[i]];
  }
  const std::vector<int64_t> in_strides = Strides(t.dims);
  std::vector<int64_t> source;
  source.reserve(t.size());
  ForEachIndex(dims, [&](int64_t, const std::vector<int64_t>& idx) {
    int64_t s = 0;
    for (int i = 0; i < r; ++i) s += idx[i] * in_strides[perm[i]];
    source.push_back(s);
  });
  return Take(t, dims, source);
}

absl::StatusOr<ConstTensor> Squeeze(const ConstTensor& t,
                                    const std::vector<int64_t>& axes,
                                    const std::string& what) {
  std::vector<bool> drop(t.rank(), false);
  if (axes.empty()) {
    for (int i = 0; i < t.rank(); ++i) drop[i] = t.dims[i] == 1;
  }
  for (int64_t a : axes) {
    absl::StatusOr<int> axis = NormalizeAxis(a, t.rank(), what);
    if (!axis.ok()) return axis.status();
    if (t.dims[*axis] != 1) {
      return absl::InvalidArgumentError(absl::StrCat(
          what, ": cannot squeeze axis ", a, " of size ", t.dims[*axis]));
    }
    drop[*axis] = true;
  }
  std::vector<int64_t> dims;
  for (int i = 0; i < t.rank(); ++i) {
    if (!drop[i]) dims.push_back(t.dims[i]);
  }
  return Reshaped(t, dims);
}

absl::StatusOr<ConstTensor> Unsqueeze(const ConstTensor& t,
                                      const std::vector<int64_t>& axes,
                                      const std::string& what) {
  const int r = t.rank() + static_cast<int>(axes.size());
  std::vector<bool> inserted(r, false);
  for (int64_t a : axes) {
    absl::StatusOr<int> axis = NormalizeAxis(a, r, what);
    if (!axis.ok()) return axis.status();
    if (inserted[*axis]) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": axis ", a, " appears twice"));
    }
    inserted[*axis] = true;
  }
  std::vector<int64_t> dims;
  int next = 0;
  for (int i = 0; i < r; ++i) dims.push_back(inserted[i] ? 1 : t.dims[next++]);
  return Reshaped(t, dims);
}

absl::StatusOr<ConstTensor> Concat(absl::Span<const ConstTensor* const> parts,
                                   int64_t axis_in, const std::string& what) {
  if (parts.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": no inputs"));
  }
  const ConstTensor& first = *parts[0];
  absl::StatusOr<int> axis = NormalizeAxis(axis_in, first.rank(), what);
  if (!axis.ok()) return axis.status();
  ConstTensor out;
  out.dims = first.dims;
  out.dims[*axis] = 0;
  out.is_int = first.is_int;
  for (const ConstTensor* p : parts) {
    bool same = p->rank() == first.rank();
    for (int i = 0; same && i < first.rank(); ++i) {
      same = i == *axis || p->dims[i] == first.dims[i];
    }
    if (!same) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": inputs ", first.Describe(), " and ",
                       p->Describe(), " do not match off axis ", axis_in));
    }
    out.is_int = out.is_int && p->is_int;
    out.dims[*axis] += p->dims[*axis];
  }
  // Blocks: for each index of the axes before `axis`, each part's slab.
  const int64_t outer = Product(absl::MakeSpan(first.dims).subspan(0, *axis));
  for (int64_t o = 0; o < outer; ++o) {
    for (const ConstTensor* p : parts) {
      const int64_t slab =
          Product(absl::MakeSpan(p->dims).subspan(*axis, p->rank() - *axis));
      for (int64_t k = o * slab; k < (o + 1) * slab; ++k) {
        if (out.is_int) {
          out.ints.push_back(p->IntAt(k));
        } else {
          out.floats.push_back(static_cast<float>(p->At(k)));
        }
      }
    }
  }
  return out;
}

absl::StatusOr<ConstTensor> Slice(const ConstTensor& t,
                                  const std::vector<int64_t>& starts,
                                  const std::vector<int64_t>& ends,
                                  std::vector<int64_t> axes,
                                  std::vector<int64_t> steps,
                                  const std::string& what) {
  if (axes.empty()) {
    for (size_t i = 0; i < starts.size(); ++i) axes.push_back(i);
  }
  if (steps.empty()) steps.assign(starts.size(), 1);
  if (ends.size() != starts.size() || axes.size() != starts.size() ||
      steps.size() != starts.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": starts, ends, axes and steps differ in length"));
  }
  const int r = t.rank();
  std::vector<int64_t> begin(r, 0), step(r, 1), count(t.dims);
  for (size_t i = 0; i < starts.size(); ++i) {
    absl::StatusOr<int> axis = NormalizeAxis(axes[i], r, what);
    if (!axis.ok()) return axis.status();
    const int64_t dim = t.dims[*axis];
    const int64_t s = steps[i];
    if (s == 0) {
      return absl::InvalidArgumentError(absl::StrCat(what, ": step 0"));
    }
    auto clamp = [&](int64_t v, int64_t lo, int64_t hi) {
      if (v < 0) v += dim;
      return v < lo ? lo : v > hi ? hi : v;
    };
    const int64_t b =
        s > 0 ? clamp(starts[i], 0, dim) : clamp(starts[i], 0, dim - 1);
    const int64_t e =
        s > 0 ? clamp(ends[i], 0, dim) : clamp(ends[i], -1, dim - 1);
    begin[*axis] = b;
    step[*axis] = s;
    const int64_t n = s > 0 ? (e - b + s - 1) / s : (b - e - s - 1) / (-s);
    count[*axis] = n > 0 ? n : 0;
  }
  const std::vector<int64_t> strides = Strides(t.dims);
  std::vector<int64_t> source;
  ForEachIndex(count, [&](int64_t, const std::vector<int64_t>& idx) {
    int64_t k = 0;
    for (int i = 0; i < r; ++i) k += (begin[i] + idx[i] * step[i]) * strides[i];
    source.push_back(k);
  });
  return Take(t, count, source);
}

absl::StatusOr<ConstTensor> Gather(const ConstTensor& t,
                                   const ConstTensor& indices, int64_t axis_in,
                                   const std::string& what) {
  absl::StatusOr<int> axis = NormalizeAxis(axis_in, t.rank(), what);
  if (!axis.ok()) return axis.status();
  const int64_t dim = t.dims[*axis];
  std::vector<int64_t> dims(t.dims.begin(), t.dims.begin() + *axis);
  dims.insert(dims.end(), indices.dims.begin(), indices.dims.end());
  dims.insert(dims.end(), t.dims.begin() + *axis + 1, t.dims.end());
  const int64_t outer = Product(absl::MakeSpan(t.dims).subspan(0, *axis));
  const int64_t inner =
      Product(absl::MakeSpan(t.dims).subspan(*axis + 1, t.rank() - *axis - 1));
  std::vector<int64_t> source;
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t j = 0; j < indices.size(); ++j) {
      int64_t k = indices.IntAt(j);
      if (k < 0) k += dim;
      if (k < 0 || k >= dim) {
        return absl::InvalidArgumentError(
            absl::StrCat(what, ": index ", indices.IntAt(j),
                         " is out of range for an axis of size ", dim));
      }
      for (int64_t i = 0; i < inner; ++i) {
        source.push_back((o * dim + k) * inner + i);
      }
    }
  }
  return Take(t, dims, source);
}

ConstTensor Cast(const ConstTensor& t, bool to_float) {
  ConstTensor out;
  out.dims = t.dims;
  out.is_int = !to_float;
  for (int64_t i = 0; i < t.size(); ++i) {
    if (to_float) {
      out.floats.push_back(static_cast<float>(t.At(i)));
    } else {
      out.ints.push_back(t.IntAt(i));
    }
  }
  return out;
}

}  // namespace lstmserve::model::onnx_import
