// The ONNX shape operators the importer evaluates on constants, against
// small cases worked out by hand from the operator specification.
#include <cstdint>
#include <limits>
#include <vector>

#include "gtest/gtest.h"
#include "model/onnx/const_tensor.h"
#include "onnx/onnx.pb.h"

namespace lstmserve::model::onnx_import {
namespace {

// 0, 1, 2, ... in the given dims.
ConstTensor Iota(std::vector<int64_t> dims) {
  ConstTensor t;
  t.dims = std::move(dims);
  for (int64_t i = 0; i < t.size(); ++i) t.floats.push_back(float(i));
  return t;
}

std::vector<float> Values(const ConstTensor& t) {
  std::vector<float> v;
  for (int64_t i = 0; i < t.size(); ++i) v.push_back(float(t.At(i)));
  return v;
}

ConstTensor Ints(std::vector<int64_t> v) {
  ConstTensor t;
  t.is_int = true;
  t.dims = {static_cast<int64_t>(v.size())};
  t.ints = std::move(v);
  return t;
}

TEST(OnnxConstTensorTest, TransposeThreeDimensions) {
  auto t = Transpose(Iota({2, 3, 2}), {2, 0, 1}, "t");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->dims, (std::vector<int64_t>{2, 2, 3}));
  // out[k][i][j] = in[i][j][k] = 6i + 2j + k
  EXPECT_EQ(Values(*t), (std::vector<float>{0, 2, 4, 6, 8, 10,  //
                                            1, 3, 5, 7, 9, 11}));
  EXPECT_FALSE(Transpose(Iota({2, 3}), {0, 0}, "t").ok());
}

TEST(OnnxConstTensorTest, SliceClampsAndStepsBackwards) {
  const int64_t kMax = std::numeric_limits<int64_t>::max();
  auto s = Slice(Iota({2, 5}), {1, -2}, {kMax, -100}, {0, 1}, {1, -2}, "s");
  ASSERT_TRUE(s.ok()) << s.status();
  // rows [1:], columns from 3 down by 2: 3, 1
  EXPECT_EQ(s->dims, (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(Values(*s), (std::vector<float>{8, 6}));
  auto last = Slice(Iota({4, 2}), {-1}, {kMax}, {}, {}, "s");
  ASSERT_TRUE(last.ok());
  EXPECT_EQ(Values(*last), (std::vector<float>{6, 7}));
  EXPECT_FALSE(Slice(Iota({4}), {0}, {1}, {}, {0}, "s").ok());
}

TEST(OnnxConstTensorTest, ConcatAlongAnInnerAxis) {
  const ConstTensor a = Iota({2, 1}), b = Iota({2, 2});
  auto c = Concat({&a, &b}, -1, "c");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->dims, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(Values(*c), (std::vector<float>{0, 0, 1, 1, 2, 3}));
  const ConstTensor bad = Iota({3, 2});
  EXPECT_FALSE(Concat({&a, &bad}, 1, "c").ok());
}

TEST(OnnxConstTensorTest, GatherScalarAndVectorIndices) {
  auto g = Gather(Iota({2, 3}), Ints({-1, 0}), 1, "g");
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_EQ(g->dims, (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(Values(*g), (std::vector<float>{2, 0, 5, 3}));
  ConstTensor scalar = Ints({1});
  scalar.dims = {};
  auto row = Gather(Iota({2, 3}), scalar, 0, "g");
  ASSERT_TRUE(row.ok());
  EXPECT_EQ(row->dims, (std::vector<int64_t>{3}));
  EXPECT_EQ(Values(*row), (std::vector<float>{3, 4, 5}));
  EXPECT_FALSE(Gather(Iota({2, 3}), Ints({3}), 1, "g").ok());
}

TEST(OnnxConstTensorTest, ReshapeCopiesZerosAndInfersMinusOne) {
  auto r = Reshape(Iota({2, 3, 4}), Ints({0, -1}), false, "r");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->dims, (std::vector<int64_t>{2, 12}));
  EXPECT_FALSE(Reshape(Iota({2, 3}), Ints({4, -1}), false, "r").ok());
  EXPECT_FALSE(Reshape(Iota({2, 3}), Ints({-1, -1}), false, "r").ok());
}

TEST(OnnxConstTensorTest, SqueezeAndUnsqueeze) {
  auto s = Squeeze(Iota({1, 3, 1}), {}, "s");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->dims, (std::vector<int64_t>{3}));
  EXPECT_FALSE(Squeeze(Iota({2, 3}), {0}, "s").ok());
  auto u = Unsqueeze(Iota({3}), {0, -1}, "u");
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_EQ(u->dims, (std::vector<int64_t>{1, 3, 1}));
  // -3 and 0 name the same axis of the rank-3 result.
  EXPECT_FALSE(Unsqueeze(Iota({3}), {0, -3}, "u").ok());
}

TEST(OnnxConstTensorTest, FromProtoTypedFieldsAndRawData) {
  onnx::TensorProto p;
  p.add_dims(2);
  p.set_data_type(onnx::TensorProto::DOUBLE);
  p.add_double_data(1.5);
  p.add_double_data(-2);
  auto d = FromProto(p, "d");
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(Values(*d), (std::vector<float>{1.5f, -2.0f}));

  onnx::TensorProto i;
  i.add_dims(3);
  i.set_data_type(onnx::TensorProto::INT32);
  const int32_t raw[3] = {7, -8, 9};
  i.set_raw_data(std::string(reinterpret_cast<const char*>(raw), sizeof(raw)));
  auto n = FromProto(i, "i");
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_TRUE(n->is_int);
  EXPECT_EQ(n->ints, (std::vector<int64_t>{7, -8, 9}));

  i.add_dims(2);  // 6 elements, 12 bytes
  auto short_data = FromProto(i, "initializer 'w'");
  ASSERT_FALSE(short_data.ok());
  EXPECT_NE(short_data.status().message().find(
                "initializer 'w' has 12 bytes of raw_data; expected 24"),
            std::string::npos)
      << short_data.status();

  onnx::TensorProto s;
  s.set_data_type(onnx::TensorProto::STRING);
  EXPECT_FALSE(FromProto(s, "s").ok());

  // Dims whose product overflows, or exceeds the limit, are refused before
  // anything is allocated.
  onnx::TensorProto huge;
  huge.set_data_type(onnx::TensorProto::FLOAT);
  for (int k = 0; k < 4; ++k) huge.add_dims(int64_t{1} << 20);
  auto too_big = FromProto(huge, "h");
  ASSERT_FALSE(too_big.ok());
  EXPECT_NE(too_big.status().message().find("more than"), std::string::npos)
      << too_big.status();
}

}  // namespace
}  // namespace lstmserve::model::onnx_import
