// Brace expansion for shard lists, as bash and Python's `braceexpand` (the
// package WebDataset uses for its URLs) do it:
//
//   expand_braces("data-{00000..00002}.tar")  // data-00000.tar data-00001.tar data-00002.tar
//   expand_braces("{a,b}/x{1..5..2}")         // a/x1 a/x3 a/x5 b/x1 b/x3 b/x5
//   expand_braces("{a,b{0..1}}")              // a b0 b1
//
// Lists {a,b,...}, numeric ranges {M..N} and {M..N..STEP} (zero padding kept
// when either end is written with a leading zero: {8..010} gives 008 009 010),
// and one-letter ranges {a..e}; groups nest, several in one pattern expand
// left to right, outer loop first. A brace pair with neither a comma nor a
// range is kept literally ("{x}"), as in bash. A backslash escapes the next
// character ("\{" is a literal brace). Throws dsvl2::Error on unbalanced
// braces, a zero step, a range bound too large, or more than 1'000'000 names.
#pragma once
#include <string>
#include <vector>

namespace dsvl2::dataset {

inline constexpr size_t kMaxBraceExpansion = 1'000'000;

std::vector<std::string> expand_braces(const std::string& pattern);

}  // namespace dsvl2::dataset
