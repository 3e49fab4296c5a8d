// Early-return helpers for absl::Status / absl::StatusOr, in the style of
// TF Serving's TF_RETURN_IF_ERROR. Header-only; usable from any layer.
#pragma once

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define LSTMSERVE_CONCAT_INNER_(a, b) a##b
#define LSTMSERVE_CONCAT_(a, b) LSTMSERVE_CONCAT_INNER_(a, b)

// Evaluates `expr` (an absl::Status) and returns it from the enclosing
// function if it is not OK.
#define RETURN_IF_ERROR(expr)                           \
  do {                                                  \
    if (absl::Status status_ = (expr); !status_.ok()) { \
      return status_;                                   \
    }                                                   \
  } while (false)

// `ASSIGN_OR_RETURN(auto x, StatusOrExpr());` declares x from the value or
// returns the error.
#define ASSIGN_OR_RETURN(lhs, expr) \
  ASSIGN_OR_RETURN_IMPL_(LSTMSERVE_CONCAT_(status_or_, __LINE__), lhs, expr)
#define ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr)   \
  auto tmp = (expr);                             \
  if (!tmp.ok()) return std::move(tmp).status(); \
  lhs = std::move(tmp).value()
